#!/usr/bin/env python3
"""Independent reference for clipstream's content shot detector (numpy; PyAV or the ffmpeg CLI to
decode, cv2 for the HSV conversion and the resize only).

What it computes is PySceneDetect's ContentDetector as its documentation and source describe it
(facts only, written here from scratch):

- each frame is decoded as 8-bit BGR and, when its larger side is over 256 px, resized with
  bilinear interpolation by the factor larger side/256 (PySceneDetect's automatic downscale);
- it is converted to HSV with OpenCV's 8-bit convention (H in 0..179, S and V in 0..255);
- a frame's score is the mean, over the three channels, of the mean absolute difference of that
  channel to the previous frame (weights 1, 1, 1, edges 0); the first frame scores 0;
- a frame whose score is >= threshold is "above"; the minimum scene length is enforced by the
  flash filter's MERGE mode: an above frame at least min_len after the last above frame is a cut
  at once (the first one must be min_len after the first frame); an above frame closer than that
  (once a cut was emitted) starts a merge, and the merged run's last above frame is emitted as a
  cut once it is min_len past the run's start and a frame below the threshold comes min_len after
  it; a merge still open at the end of the video emits nothing.

clipstream's content detector differs on purpose in two ways, which --width and --flash-frames
reproduce (from its documented semantics, src/features/shots.ts's notes, not its code):

- it analyses frames of PySceneDetect's downscaled size, `--width` (default 256) being the larger
  side's target (factor larger side / width, each side round(side / factor), half to even, when the
  larger side is over width), but scaled by the ffmpeg CLI (its `fast_bilinear+full_chroma_int`
  scaler, converting to RGB at the small size) instead of a full-size decode to BGR and
  cv2.resize (decoded here by the ffmpeg CLI the same way, see ffmpeg_frames);
- flash rejection (--flash-frames K > 0): an above frame f is a flash when one of the K frames
  after it (fewer at the end of the video) scores below the threshold against frame f-1 (the
  picture came back); f and every frame up to that one are then not above.

Usage:
  /usr/bin/python3 scripts/shots_reference.py [--threshold 27] [--min-len 15 | --min-shot-s 0.6]
      [--width 256 [--flash-frames 3]] [--scores] [--luma] FILE...
prints one JSON object: {"files": [{"path", "frames", "fps", "width", "height", "cuts": [frame, ...],
"scores": [...] (--scores), "luma": [...] (--luma: each frame's mean of R, G, B at the analysed
size)}]}.  A cut is the index of the first frame of the new shot.

Also: --self-check compares this file's HSV maths with cv2 on random pixels and exits.

Three raw modes, for src/features/shots.ts's unit tests (test/unit/shots.test.ts):
  shots_reference.py hsv OUT           cv2.cvtColor(COLOR_RGB2HSV) of every 8-bit RGB colour, in
                                       R-major order (r*65536 + g*256 + b), 3 bytes each, to OUT.
  shots_reference.py edges RAW W H OUT PySceneDetect's edge map of each frame of RAW (cv2.Canny on V with
                                       thresholds from V's median, cv2.dilate), W x H bytes each, to OUT.
  shots_reference.py scores RAW W H [WH,WS,WV,WE]
                                       PySceneDetect's content_val (mean |dH|, |dS|, |dV|, |dEdges| of cv2
                                       HSV and edge maps, weights default 1,1,1,0) of each frame of RAW
                                       (packed RGB24 frames W x H) against the one before (0 for the
                                       first), as a JSON list.
"""

import argparse
import json
import os
import subprocess
import sys

import av
import cv2
import numpy as np

PYSCENEDETECT_MIN_WIDTH = 256


def detector_size(w, h, width):
    """clipstream's analysed frame size for a w x h source: PySceneDetect's downscale rule with
    `width` as the larger side's target (Python's round is half to even)."""
    if max(w, h) <= width:
        return w, h
    factor = max(w, h) / float(width)
    return max(1, round(w / factor)), max(1, round(h / factor))


def ffmpeg_frames(path, w, h):
    """Every frame scaled to w x h by the ffmpeg CLI, as clipstream's runner asks for it
    (`-vf scale=W:H:flags=fast_bilinear+full_chroma_int,format=rgb24 -vsync 0`), returned as BGR.

    Why not PyAV's reformat with the same scaler: its frames differ from the CLI's by about
    one level per pixel, and the hue of near-grey pixels turns such a level into tens of hue steps,
    so a frame's score moved by up to 37 points (a cut at 125 scored 88). The scaler is not what
    this reference checks; the score, the flash rule and the minimum-length filter are."""
    ffmpeg = os.environ.get("FFMPEG_PATH", "/usr/bin/ffmpeg")
    args = [ffmpeg, "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-vf", f"scale={w}:{h}:flags=fast_bilinear+full_chroma_int,format=rgb24"]
    args += ["-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    size = w * h * 3
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)[:, :, ::-1]
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed on {path}")


def frames_bgr(path, width):
    """Yields (bgr uint8 HxWx3, fps) per decoded frame, in presentation order: at clipstream's
    analysed size when `width` is given, else at PySceneDetect's."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 25.0
        if width is not None:
            ow, oh = detector_size(stream.codec_context.width, stream.codec_context.height, width)
            for img in ffmpeg_frames(path, ow, oh):
                yield np.ascontiguousarray(img), fps
            return
        for frame in container.decode(stream):
            img = frame.to_ndarray(format="bgr24")
            h, w = img.shape[:2]
            if max(w, h) > PYSCENEDETECT_MIN_WIDTH:  # its factor: the larger side / 256, applied when > 1
                factor = max(w, h) / float(PYSCENEDETECT_MIN_WIDTH)
                img = cv2.resize(img, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_LINEAR)
            yield img, fps


def channel_delta(a, b):
    """Mean absolute difference of two 2-D uint8 planes."""
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).sum()) / float(a.size)


def score(a, b):
    """content_val of HSV planes a against b: the mean of the three channels' mean |difference|."""
    return sum(channel_delta(p, q) for p, q in zip(a, b)) / 3.0


def analyse(path, width, flash_frames, threshold):
    """Per-frame scores (first frame 0), above flags (flash rejection applied), luma, fps, size.

    Not streaming: it keeps every frame's HSV planes (a reference for small test files)."""
    planes = []
    luma = []
    fps = 25.0
    size = (0, 0)
    for img, fps in frames_bgr(path, width):
        size = (img.shape[1], img.shape[0])
        luma.append(float(img.mean()))
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        planes.append([hsv[:, :, i] for i in range(3)])
    n = len(planes)
    scores = [0.0] + [score(planes[i], planes[i - 1]) for i in range(1, n)]
    above = [i > 0 and scores[i] >= threshold for i in range(n)]
    cleared_until = -1
    for f in range(1, n):
        if f < cleared_until:
            above[f] = False
            continue
        if not above[f] or flash_frames <= 0:
            continue
        for k in range(1, min(flash_frames, n - 1 - f) + 1):
            if score(planes[f + k], planes[f - 1]) < threshold:
                cleared_until = f + k + 1
                above[f] = False
                break
    return scores, above, luma, fps, size


def merge_cuts(above, fps, min_len_s):
    """The MERGE-mode minimum-length filter over a list of booleans (frame i above the threshold)."""
    cuts = []
    if min_len_s <= 0:
        return [i for i, a in enumerate(above) if a]
    last_above = 0  # the first frame counts as the last above one
    merging = False
    merge_start = 0
    any_cut = False
    eps = 1e-9
    for i, a in enumerate(above):
        long_enough = (i - last_above) / fps >= min_len_s - eps
        if a:
            last_above = i
        if merging:
            if long_enough and not a and (last_above - merge_start) / fps >= min_len_s - eps:
                merging = False
                cuts.append(last_above)
            continue
        if not a:
            continue
        if long_enough:
            any_cut = True
            cuts.append(i)
        elif any_cut:
            merging = True
            merge_start = i
    return cuts


def self_check():
    """cv2's 8-bit HSV against the textbook formulas (max, spread/max, hue in half degrees)."""
    rng = np.random.default_rng(7)
    bgr = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int32)
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    v = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    spread = v - mn
    s = np.where(v > 0, 255.0 * spread / np.maximum(v, 1), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(v == r, 60.0 * (g - b) / spread, np.where(v == g, 120.0 + 60.0 * (b - r) / spread, 240.0 + 60.0 * (r - g) / spread))
    h = np.where(spread == 0, 0, h)
    h = np.where(h < 0, h + 360, h) / 2.0
    dv = np.abs(hsv[:, :, 2] - v).max()
    ds = np.abs(hsv[:, :, 1] - s).max()
    dh = np.abs(((hsv[:, :, 0] - h) + 90) % 180 - 90).max()
    print(json.dumps({"maxDiff": {"h": float(dh), "s": float(ds), "v": float(dv)}}))
    return 0 if dv == 0 and ds <= 1 and dh <= 1 else 1


def raw_hsv(out):
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=1).astype(np.uint8)
    img = rgb.reshape(4096, 4096, 3)
    cv2.cvtColor(img, cv2.COLOR_RGB2HSV).tofile(out)


def edge_map(v):
    """PySceneDetect's edge map of a V plane: cv2.Canny with thresholds from the median, cv2.dilate."""
    h, w = v.shape
    size = 4 + round(np.sqrt(w * h) / 192)
    if size % 2 == 0:
        size += 1
    median = np.median(v)
    low = int(max(0, (1.0 - 1.0 / 3.0) * median))
    high = int(min(255, (1.0 + 1.0 / 3.0) * median))
    return cv2.dilate(cv2.Canny(v, low, high), np.ones((size, size), np.uint8))


def raw_edges(raw, w, h, out):
    frames = np.fromfile(raw, dtype=np.uint8).reshape(-1, h, w, 3)
    maps = [edge_map(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2HSV)[:, :, 2]) for f in frames]
    np.stack(maps).tofile(out)


def raw_scores(raw, w, h, weights):
    data = np.fromfile(raw, dtype=np.uint8)
    frames = data.reshape(-1, h, w, 3)
    out = []
    last = None
    for f in frames:
        planes = list(cv2.split(cv2.cvtColor(np.ascontiguousarray(f[:, :, ::-1]), cv2.COLOR_BGR2HSV)))
        planes.append(edge_map(planes[2]))
        planes = [p.astype(np.int32) for p in planes]
        if last is None:
            out.append(0.0)
        else:
            parts = [np.abs(a - b).mean() for a, b in zip(planes, last)]
            out.append(float(sum(p * wt for p, wt in zip(parts, weights)) / sum(abs(wt) for wt in weights)))
        last = planes
    print(json.dumps(out))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "hsv":
        raw_hsv(sys.argv[2])
        return 0
    if len(sys.argv) > 4 and sys.argv[1] == "scores":
        weights = [float(x) for x in sys.argv[5].split(",")] if len(sys.argv) > 5 else [1.0, 1.0, 1.0, 0.0]
        raw_scores(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), weights)
        return 0
    if len(sys.argv) > 5 and sys.argv[1] == "edges":
        raw_edges(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="*")
    p.add_argument("--threshold", type=float, default=27.0)
    p.add_argument("--min-len", type=int, default=None, help="minimum scene length in frames (PySceneDetect default 15)")
    p.add_argument("--min-shot-s", type=float, default=None, help="minimum scene length in seconds")
    p.add_argument("--width", type=int, default=None, help="clipstream's analysed width (default: PySceneDetect's auto downscale)")
    p.add_argument("--flash-frames", type=int, default=0, help="clipstream's flash rejection look-ahead (0: PySceneDetect)")
    p.add_argument("--scores", action="store_true")
    p.add_argument("--luma", action="store_true")
    p.add_argument("--self-check", action="store_true")
    a = p.parse_args()
    if a.self_check:
        return self_check()
    if a.flash_frames and a.width is None:
        p.error("--flash-frames is clipstream's rule: give --width too")
    out = []
    for path in a.files:
        scores, above, luma, fps, size = analyse(path, a.width, a.flash_frames, a.threshold)
        min_len_s = a.min_shot_s if a.min_shot_s is not None else (a.min_len if a.min_len is not None else 15) / fps
        cuts = merge_cuts(above, fps, min_len_s)
        rec = {"path": path, "frames": len(scores), "fps": fps, "width": size[0], "height": size[1], "cuts": cuts}
        if a.scores:
            rec["scores"] = [round(s, 4) for s in scores]
        if a.luma:
            rec["luma"] = [round(v, 3) for v in luma]
        out.append(rec)
    json.dump({"files": out}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
