#!/usr/bin/env python3
"""Writes the checkpoint fixtures the TypeScript checkpoint reader is tested on, with real PyTorch.

  /usr/bin/python3 scripts/make-checkpoint-fixtures.py   # -> fixtures/checkpoints/

The tensors come from the reduced-width reference state dicts in fixtures/reference/ (the ones
test/unit/weights.test.ts holds our ONNX builders to), saved the way the published checkpoints are:

  vggish_tiny.pth         torch.save(state_dict) as torchvggish's vggish-10086976.pth (zip format)
  vggish_tiny_legacy.pth  the same with _use_new_zipfile_serialization=False (torch < 1.6 files)
  vggish_tiny_pca.pth     torchvggish's PCA file: {'pca_eigen_vectors', 'pca_means'} numpy float64 arrays
  slowfast_tiny.pyth      SlowFast's PyTorch checkpoint: {'epoch', 'model_state' (module.-prefixed,
                          float16 storages, one non-contiguous tensor), 'optimizer_state'}
  slowfast_tiny.pkl       SlowFast's Caffe2 checkpoint: pickle protocol 2 of {'blobs': {caffe2 name:
                          float32 ndarray, *_momentum}, 'model_iter'}, written as Python 2 wrote the
                          published files (str and array bytes as BINSTRING, read with encoding='latin1');
                          numpy bytes through _codecs.encode (Python 3's protocol 2) are in vggish_tiny_pca.pth
  malicious.pkl, malicious.pth  a __reduce__ calling os.system('touch /tmp/clipstream-pickle-pwned')
"""

import collections
import importlib.util
import json
import os
import pickle
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "fixtures", "reference")
OUT = os.path.join(ROOT, "fixtures", "checkpoints")
PWNED = "/tmp/clipstream-pickle-pwned"

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}

spec = importlib.util.spec_from_file_location("export_weights", os.path.join(ROOT, "scripts", "export-weights.py"))
export_weights = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export_weights)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    out = collections.OrderedDict()
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(body[b:end], dtype=_NP[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def caffe2_name(name, blocks):
    """The Caffe2 blob name of a SlowFast parameter; checked against export-weights.py's converter."""
    stem, _, param = name.rpartition(".")
    bn = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}[param]
    wb = {"weight": "w", "bias": "b"}.get(param)
    parts = stem.split(".")
    if stem == "head.projection":
        c2 = "pred_" + wb
    elif parts[0] == "s1" and parts[1] in ("pathway0_stem", "pathway1_stem"):
        t = "t_" if parts[1] == "pathway1_stem" else ""
        c2 = (t + "conv1_" + wb) if parts[2] == "conv" else (t + "res_conv1_bn_" + bn)
    elif parts[0].endswith("_fuse"):
        k = int(parts[0][1:-len("_fuse")])
        base = "t_pool1_subsample" if k == 1 else "t_res%d_%d_branch2c_bn_subsample" % (k, blocks[k - 2] - 1)
        c2 = (base + "_" + wb) if parts[1] == "conv_f2s" else (base + "_bn_" + bn)
    else:
        k = parts[0][1:]
        path, res = parts[1].split("_res")
        t = "t_" if path == "pathway1" else ""
        branch = parts[2]
        if branch == "branch1":
            c2 = "%sres%s_%s_branch1_%s" % (t, k, res, wb)
        elif branch == "branch1_bn":
            c2 = "%sres%s_%s_branch1_bn_%s" % (t, k, res, bn)
        else:
            letter = parts[3]
            if letter.endswith("_bn"):
                c2 = "%sres%s_%s_%s%s_bn_%s" % (t, k, res, branch, letter[:-3], bn)
            else:
                c2 = "%sres%s_%s_%s%s_%s" % (t, k, res, branch, letter, wb)
    back = export_weights.c2_to_pytorch(c2)
    assert back == name, (name, c2, back)
    return c2


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it (the published Caffe2 files): str and bytes as BINSTRING."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_binstring(self, obj):
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_binstring
    dispatch[str] = save_binstring


class Pwn:
    def __reduce__(self):
        return (os.system, ("touch " + PWNED,))


def main():
    os.makedirs(OUT, exist_ok=True)
    vg = read_safetensors(os.path.join(REF, "vggish_tiny.weights.safetensors"))
    state = collections.OrderedDict((k, torch.from_numpy(v.astype(np.float32))) for k, v in vg.items() if not k.startswith("pproc."))
    torch.save(state, os.path.join(OUT, "vggish_tiny.pth"))
    torch.save(state, os.path.join(OUT, "vggish_tiny_legacy.pth"), _use_new_zipfile_serialization=False)
    pca = {"pca_eigen_vectors": vg["pproc.pca_matrix"].astype(np.float64),
           "pca_means": vg["pproc.pca_means"].reshape(-1).astype(np.float64)}
    torch.save(pca, os.path.join(OUT, "vggish_tiny_pca.pth"))

    sf = read_safetensors(os.path.join(REF, "slowfast_tiny.weights.safetensors"))
    with open(os.path.join(REF, "slowfast_tiny.json")) as f:
        blocks = json.load(f)["config"]["blocks"]
    model_state = collections.OrderedDict()
    for k, v in sf.items():
        t = torch.from_numpy(v.astype(np.float16))
        if k == "head.projection.weight":
            t = t.t().contiguous().t()  # same values, column-major strides: the reader must honour strides
            assert not t.is_contiguous()
        model_state["module." + k] = t
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "nesterov": True, "params": [0, 1, 2]}]}
    torch.save({"epoch": 196, "model_state": model_state, "optimizer_state": optimizer}, os.path.join(OUT, "slowfast_tiny.pyth"))

    blobs = {}
    for k, v in sf.items():
        c2 = caffe2_name(k, blocks)
        blobs[c2] = v.astype(np.float32)
        if c2.endswith("_w"):
            blobs[c2 + "_momentum"] = np.zeros((1,), np.float32)
    with open(os.path.join(OUT, "slowfast_tiny.pkl"), "wb") as f:
        Py2Pickler(f, protocol=2).dump({"blobs": blobs, "model_iter": np.int64(196000)})
    with open(os.path.join(OUT, "slowfast_tiny.pkl"), "rb") as f:
        back = pickle.load(f, encoding="latin1")["blobs"]
    assert all(np.array_equal(back[k], v) for k, v in blobs.items())

    with open(os.path.join(OUT, "malicious.pkl"), "wb") as f:
        pickle.dump({"blobs": {"conv1_w": Pwn()}}, f, protocol=2)
    torch.save({"features.0.weight": Pwn()}, os.path.join(OUT, "malicious.pth"))
    for name in sorted(os.listdir(OUT)):
        print("%-24s %8d bytes" % (name, os.path.getsize(os.path.join(OUT, name))))


if __name__ == "__main__":
    main()
