#!/usr/bin/python3
"""Reference for src/features/shots.ts, written with OpenCV and numpy (independent of the TS code).

  shots_reference.py hsv OUT           cv2.cvtColor(COLOR_RGB2HSV) of every 8-bit RGB colour, in
                                       R-major order (r*65536 + g*256 + b), 3 bytes each, to OUT.
  shots_reference.py scores RAW W H    PySceneDetect's content_val (mean |dH|, |dS|, |dV| of cv2 HSV,
                                       weights 1,1,1) of each frame of RAW (packed RGB24 frames W x H)
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


def scores(raw, w, h):
    data = np.fromfile(raw, dtype=np.uint8)
    frames = data.reshape(-1, h, w, 3)
    out = []
    last = None
    for f in frames:
        planes = [p.astype(np.int32) for p in cv2.split(cv2.cvtColor(np.ascontiguousarray(f[:, :, ::-1]), cv2.COLOR_BGR2HSV))]
        if last is None:
            out.append(0.0)
        else:
            out.append(float(sum(np.abs(a - b).mean() for a, b in zip(planes, last)) / 3.0))
        last = planes
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "hsv":
        hsv(sys.argv[2])
    elif sys.argv[1] == "scores":
        scores(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
