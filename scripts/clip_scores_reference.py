#!/usr/bin/env python3
"""Independent reference for clipstream's per-clip scores (src/features/clip-scores.ts).

Usage: clip_scores_reference.py WIDTH HEIGHT FILE[@START:END] [...]
Prints one JSON object: {arg: {motion, black, frozen, sharpness, brightness, contrast, colorfulness, frames}}.
FILE@START:END scores only the decoded frames START..END-1 (a clip's span of its source).

Each clip is decoded with PyAV and every frame resized to WIDTH x HEIGHT RGB24 by swscale's area
filter (PyAV's reformat); the scores are written here from their definitions in numpy, not from
the TypeScript:
  luma Y = 0.299 R + 0.587 G + 0.114 B (float64, 0..255)
  motion      mean over t >= 1 of mean|Y_t - Y_{t-1}| / 255
  frozen      fraction of t >= 1 with mean|Y_t - Y_{t-1}| / 255 < 0.001
  black       fraction of frames with mean(Y) < 24 and std(Y) < 8
  sharpness   mean over frames of var(4-neighbour Laplacian of Y) on interior pixels
  brightness  mean over frames of mean(Y) / 255
  contrast    mean over frames of std(Y) / 255
  colorfulness mean over frames of Hasler-Suesstrunk: sqrt(var(rg)+var(yb)) + 0.3 sqrt(mean(rg)^2+mean(yb)^2),
              rg = R - G, yb = (R + G) / 2 - B
"""
import json
import sys

import av
import numpy as np


def frames_of(arg, w, h):
    path, start, end = arg, 0, None
    if "@" in arg:
        path, span = arg.rsplit("@", 1)
        start, end = (int(v) for v in span.split(":"))
    with av.open(path) as box:
        stream = box.streams.video[0]
        for i, frame in enumerate(box.decode(stream)):
            if i < start:
                continue
            if end is not None and i >= end:
                break
            rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
            yield rgb.astype(np.float64)


def scores_of(path, w, h):
    lum_prev = None
    diffs, blacks, sharp, bright, contrast, colour = [], [], [], [], [], []
    for rgb in frames_of(path, w, h):
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = r * 0.299 + g * 0.587 + b * 0.114
        bright.append(y.mean() / 255.0)
        contrast.append(y.std() / 255.0)
        blacks.append(bool(y.mean() < 24 and y.std() < 8))
        lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
        sharp.append(lap.var())
        rg = r - g
        yb = (r + g) / 2.0 - b
        colour.append(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
        if lum_prev is not None:
            diffs.append(np.abs(y - lum_prev).mean() / 255.0)
        lum_prev = y
    n = len(bright)
    d = np.array(diffs)
    return {
        "motion": float(d.mean()) if len(d) else 0.0,
        "frozen": float((d < 0.001).mean()) if len(d) else 0.0,
        "black": float(np.mean(blacks)),
        "sharpness": float(np.mean(sharp)),
        "brightness": float(np.mean(bright)),
        "contrast": float(np.mean(contrast)),
        "colorfulness": float(np.mean(colour)),
        "frames": n,
    }


def main():
    w, h = int(sys.argv[1]), int(sys.argv[2])
    print(json.dumps({p: scores_of(p, w, h) for p in sys.argv[3:]}))


if __name__ == "__main__":
    main()
