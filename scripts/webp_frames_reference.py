#!/usr/bin/env python3
"""Independent decode of animated WebP files (Pillow's libwebp, not sharp) for the preview tests.

Usage: webp_frames_reference.py FILE...
Prints JSON: {file: {"frames": n, "width": w, "height": h, "mean_luma": [per frame, 0-255],
"max_step": largest mean absolute luma change between consecutive frames}}.
libwebp merges identical consecutive frames into one longer frame, so a still clip may decode as one frame.
"""
import json
import sys

import numpy as np
from PIL import Image


def describe(path):
    im = Image.open(path)
    if im.format != "WEBP":
        raise SystemExit(f"{path}: {im.format}, not WEBP")
    n = getattr(im, "n_frames", 1)
    means, lumas = [], []
    for i in range(n):
        im.seek(i)
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
        y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        means.append(float(y.mean()))
        lumas.append(y)
    steps = [float(np.abs(a - b).mean()) for a, b in zip(lumas, lumas[1:])]
    return {"frames": n, "width": im.size[0], "height": im.size[1], "mean_luma": means, "max_step": max(steps, default=0.0)}


print(json.dumps({f: describe(f) for f in sys.argv[1:]}))
