#!/usr/bin/env python3
"""An independent PyTorch TransNetV2, with the parameter names of the PyTorch port
(soCzech/TransNetV2 inference-pytorch/transnetv2_pytorch.py), so its state dict is exactly the
`transnetv2-pytorch-weights.pth` that the port's convert_weights.py writes.

Written from the architecture facts (paper, configs/transnetv2.gin), not from the port's code:
the similarity band is taken by shifting rows, the histograms by bincount, BatchNorm is applied
by hand from its running statistics.

  # seeded weights (random BN statistics too, so the folding is exercised), saved with torch.save:
  transnetv2_reference.py weights --seed 7 --out w.pth [--small]
  # the state dict's names and shapes as JSON:
  transnetv2_reference.py shapes [--small]
  # logits of both heads for raw uint8 frames [B, 100, 27, 48, 3]:
  transnetv2_reference.py forward --weights w.pth --input x.u8 --batch 2 --out y.f32 [--small]
  # TransNetV2's whole-video prediction (windows of 100, stride 50, 25 frames of context) and
  # its predictions-to-scenes rule, for frames [N, 27, 48, 3]:
  transnetv2_reference.py predict --weights w.pth --frames v.u8 --count 180 --out p.json [--small]
  # not in CI: this module against the port's own module, same weights, same random input:
  transnetv2_reference.py port --weights w.pth --port-dir .../TransNetV2/inference-pytorch
"""

import argparse
import json
import sys

import numpy as np
import torch
import torch.nn as nn

FRAMES, HEIGHT, WIDTH = 100, 27, 48
HALF = 50  # frames either side in the similarity lookup (window 101)
BN_EPS = 1e-3


class Sep(nn.Module):
    """Conv3DConfigurable: `layers.0` spatial 1x3x3 to 2F, `layers.1` temporal 3x1x1, dilated in time."""

    def __init__(self, cin, f, dilation):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv3d(cin, 2 * f, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.Conv3d(2 * f, f, (3, 1, 1), padding=(dilation, 0, 0), dilation=(dilation, 1, 1), bias=False),
        ])

    def forward(self, x):
        return self.layers[1](self.layers[0](x))


class Cell(nn.Module):
    """DilatedDCNNV2: four Sep branches (dilations 1, 2, 4, 8), concat, BN."""

    def __init__(self, cin, f, relu):
        super().__init__()
        self.Conv3D_1 = Sep(cin, f, 1)
        self.Conv3D_2 = Sep(cin, f, 2)
        self.Conv3D_4 = Sep(cin, f, 4)
        self.Conv3D_8 = Sep(cin, f, 8)
        self.bn = nn.BatchNorm3d(4 * f, eps=BN_EPS)
        self.relu = relu

    def forward(self, x):
        y = torch.cat([self.Conv3D_1(x), self.Conv3D_2(x), self.Conv3D_4(x), self.Conv3D_8(x)], 1)
        bn = self.bn
        shape = (1, -1, 1, 1, 1)
        y = (y - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + BN_EPS) * bn.weight.view(shape) + bn.bias.view(shape)
        return torch.clamp(y, min=0) if self.relu else y


class Stack(nn.Module):
    """StackedDDCNNV2: cells, relu(last) + first cell's output, 2x2 spatial average pool."""

    def __init__(self, cin, cells, f):
        super().__init__()
        self.DDCNN = nn.ModuleList([Cell(cin if i == 0 else 4 * f, f, i < cells - 1) for i in range(cells)])

    def forward(self, x):
        first = None
        for c in self.DDCNN:
            x = c(x)
            first = x if first is None else first
        x = torch.clamp(x, min=0) + first
        b, ch, t, h, w = x.shape
        h2, w2 = h // 2, w // 2
        x = x[:, :, :, :2 * h2, :2 * w2].reshape(b, ch, t, h2, 2, w2, 2)
        return x.mean(dim=(4, 6))


def band(rows):
    """[B, T, C] unit rows -> [B, T, 101]: entry k is the dot product of frame t with frame t+k-50, 0 outside."""
    b, t, _ = rows.shape
    out = rows.new_zeros(b, t, 2 * HALF + 1)
    for k in range(2 * HALF + 1):
        d = k - HALF
        lo, hi = max(0, -d), min(t, t - d)
        if lo < hi:
            out[:, lo:hi, k] = (rows[:, lo:hi] * rows[:, lo + d:hi + d]).sum(-1)
    return out


def unit_rows(x):
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


class FrameSim(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.projection = nn.Linear(cin, 128)
        self.fc = nn.Linear(2 * HALF + 1, 128)

    def forward(self, maps):
        feats = torch.cat([m.mean(dim=(3, 4)) for m in maps], 1).transpose(1, 2)
        return torch.relu(self.fc(band(unit_rows(self.projection(feats)))))


class ColorHist(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2 * HALF + 1, 128)

    def forward(self, frames_u8):
        b, t = frames_u8.shape[:2]
        q = (frames_u8.long() // 32).reshape(b * t, -1, 3)
        ids = q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]
        hist = torch.stack([torch.bincount(row, minlength=512) for row in ids]).float().reshape(b, t, 512)
        return torch.relu(self.fc(band(unit_rows(hist))))


class TransNetV2Ref(nn.Module):
    def __init__(self, F=16, L=3, S=2, D=1024):
        super().__init__()
        self.SDDCNN = nn.ModuleList([Stack(3 if i == 0 else 4 * F * 2 ** (i - 1), S, F * 2 ** i) for i in range(L)])
        self.frame_sim_layer = FrameSim(sum(4 * F * 2 ** i for i in range(L)))
        self.color_hist_layer = ColorHist()
        h, w = HEIGHT, WIDTH
        for _ in range(L):
            h, w = h // 2, w // 2
        self.fc1 = nn.Linear(4 * F * 2 ** (L - 1) * h * w + 256, D)
        self.cls_layer1 = nn.Linear(D, 1)
        self.cls_layer2 = nn.Linear(D, 1)

    def forward(self, frames_u8):
        x = frames_u8.float().div(255.0).permute(0, 4, 1, 2, 3)
        maps = []
        for s in self.SDDCNN:
            x = s(x)
            maps.append(x)
        b, c, t, h, w = x.shape
        flat = x.permute(0, 2, 3, 4, 1).reshape(b, t, h * w * c)
        feats = torch.cat([self.color_hist_layer(frames_u8), self.frame_sim_layer(maps), flat], 2)
        hidden = torch.relu(self.fc1(feats))
        return self.cls_layer1(hidden), self.cls_layer2(hidden)


def make_model(small):
    return TransNetV2Ref(F=4, L=3, S=2, D=64) if small else TransNetV2Ref()


def seeded(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bn.weight"):
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            elif name.endswith("bn.bias"):
                p.copy_(0.2 * torch.rand(p.shape, generator=g) - 0.1)
            elif p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            else:
                p.copy_(0.1 * torch.rand(p.shape, generator=g) - 0.05)
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                buf.fill_(1)
    return model


def load(path, small):
    model = make_model(small)
    model.load_state_dict(torch.load(path, map_location="cpu"))
    return model.eval()


def predict(model, frames):
    """TransNetV2's predict_frames: 25 copies of the first frame before, copies of the last after up to a
    multiple of 50 plus 25, windows of 100 at stride 50, the middle 50 predictions of each."""
    n = len(frames)
    end_pad = 25 + 50 - (n % 50 if n % 50 else 50)
    padded = np.concatenate([np.repeat(frames[:1], 25, 0), frames, np.repeat(frames[-1:], end_pad, 0)])
    single, many = [], []
    with torch.no_grad():
        for at in range(0, len(padded) - 99, 50):
            s, m = model(torch.from_numpy(padded[at:at + 100][None]))
            single.append(torch.sigmoid(s)[0, 25:75, 0].numpy())
            many.append(torch.sigmoid(m)[0, 25:75, 0].numpy())
    return np.concatenate(single)[:n], np.concatenate(many)[:n]


def scenes(pred, threshold):
    """The predictions-to-scenes rule: a scene ends at the first frame over the threshold and the next
    starts at the first frame under it again; a run over the threshold at frame 0 ends no scene."""
    over = (pred > threshold).astype(np.uint8)
    out, prev, start = [], 0, 0
    for i, t in enumerate(over):
        if prev == 1 and t == 0:
            start = i
        if prev == 0 and t == 1 and i != 0:
            out.append([start, i])
        prev = t
    if len(over) and over[-1] == 0:
        out.append([start, len(over) - 1])
    return out if out else [[0, len(over) - 1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["weights", "shapes", "forward", "predict", "port"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--weights")
    ap.add_argument("--input")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames")
    ap.add_argument("--count", type=int)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--port-dir")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)

    if a.mode == "weights":
        torch.save(seeded(make_model(a.small), a.seed).state_dict(), a.out)
    elif a.mode == "shapes":
        sd = make_model(a.small).state_dict()
        print(json.dumps({k: list(v.shape) for k, v in sd.items() if not k.endswith("num_batches_tracked")}))
    elif a.mode == "forward":
        x = np.fromfile(a.input, np.uint8).reshape(a.batch, FRAMES, HEIGHT, WIDTH, 3)
        with torch.no_grad():
            s, m = load(a.weights, a.small)(torch.from_numpy(x))
        np.concatenate([s.numpy().ravel(), m.numpy().ravel()]).astype("<f4").tofile(a.out)
    elif a.mode == "predict":
        frames = np.fromfile(a.frames, np.uint8).reshape(a.count, HEIGHT, WIDTH, 3)
        single, many = predict(load(a.weights, a.small), frames)
        with open(a.out, "w") as f:
            json.dump({"single": single.tolist(), "many": many.tolist(), "scenes": scenes(single, a.threshold)}, f)
    else:
        sys.path.insert(0, a.port_dir)
        import transnetv2_pytorch  # the port's module, from a snapshot outside this repository

        port = transnetv2_pytorch.TransNetV2()
        port.load_state_dict(torch.load(a.weights, map_location="cpu"))
        port.eval()
        ours = load(a.weights, False)
        rng = np.random.default_rng(a.seed)
        worst = {"single": 0.0, "many": 0.0}
        scale = 0.0
        for _ in range(3):
            x = torch.from_numpy(rng.integers(0, 256, (2, FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8))
            with torch.no_grad():
                ps, pm = port(x)
                os_, om = ours(x)
            worst["single"] = max(worst["single"], float((ps - os_).abs().max()))
            worst["many"] = max(worst["many"], float((pm["many_hot"] - om).abs().max()))
            scale = max(scale, float(ps.abs().max()), float(pm["many_hot"].abs().max()))
        print(json.dumps({"max_abs_diff": worst, "max_abs_logit": scale, "inputs": "3 batches of 2 windows, uniform random uint8"}))


if __name__ == "__main__":
    main()
