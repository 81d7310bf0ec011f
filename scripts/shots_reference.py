#!/usr/bin/python3
"""Reference for src/features/shots.ts, written with OpenCV and numpy (independent of the TS code).

  shots_reference.py hsv OUT           cv2.cvtColor(COLOR_RGB2HSV) of every 8-bit RGB colour, in
                                       R-major order (r*65536 + g*256 + b), 3 bytes each, to OUT.
  shots_reference.py edges RAW W H OUT PySceneDetect's edge map of each frame of RAW (cv2.Canny on V with
                                       thresholds from V's median, cv2.dilate), W x H bytes each, to OUT.
  shots_reference.py scores RAW W H [WH,WS,WV,WE]
                                       PySceneDetect's content_val (mean |dH|, |dS|, |dV|, |dEdges| of cv2
                                       HSV and edge maps, weights default 1,1,1,0) of each frame of RAW (packed RGB24 frames W x H)
                                       against the one before (0 for the first), as a JSON list.
"""
import json
import sys

import cv2
import numpy as np


def hsv(out):
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=1).astype(np.uint8)
    img = rgb.reshape(4096, 4096, 3)
    cv2.cvtColor(img, cv2.COLOR_RGB2HSV).tofile(out)


def edge_map(v):
    h, w = v.shape
    size = 4 + round(np.sqrt(w * h) / 192)
    if size % 2 == 0:
        size += 1
    median = np.median(v)
    low = int(max(0, (1.0 - 1.0 / 3.0) * median))
    high = int(min(255, (1.0 + 1.0 / 3.0) * median))
    return cv2.dilate(cv2.Canny(v, low, high), np.ones((size, size), np.uint8))


def edges(raw, w, h, out):
    frames = np.fromfile(raw, dtype=np.uint8).reshape(-1, h, w, 3)
    maps = [edge_map(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2HSV)[:, :, 2]) for f in frames]
    np.stack(maps).tofile(out)


def scores(raw, w, h, weights):
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


if __name__ == "__main__":
    if sys.argv[1] == "hsv":
        hsv(sys.argv[2])
    elif sys.argv[1] == "edges":
        edges(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "scores":
        weights = [float(x) for x in sys.argv[5].split(",")] if len(sys.argv) > 5 else [1.0, 1.0, 1.0, 0.0]
        scores(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), weights)
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
