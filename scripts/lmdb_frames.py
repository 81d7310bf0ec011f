#!/usr/bin/env python3
"""Reads a `clipstream faces` LMDB frame store as a Python user would (py-lmdb + PIL) and dumps frames.

  /usr/bin/python3 scripts/lmdb_frames.py out/faces/faces.lmdb DUMP_DIR

For every clip (key `{clip_key}/meta`) it decodes the first, middle and last frame
(`{clip_key}/{i:06d}`) with PIL, writes each as raw RGB to DUMP_DIR/{clip_key}.{i}.rgb and prints
{clip_key: {"meta": {...}, "frames": [{"index", "file", "width", "height", "mode"}]}} as JSON,
so a test can check what Python actually gets out of the store.
"""

import io
import json
import os
import sys

import lmdb
from PIL import Image


def main():
    store, dump = sys.argv[1], sys.argv[2]
    os.makedirs(dump, exist_ok=True)
    out = {}
    env = lmdb.open(store, readonly=True, lock=False)
    with env.begin() as txn:
        keys = [k.decode() for k, _ in txn.cursor()]
        for key in keys:
            if not key.endswith("/meta"):
                continue
            clip = key[: -len("/meta")]
            meta = json.loads(txn.get(key.encode()))
            n = meta["num_frames"]
            frames = []
            for i in sorted({0, n // 2, n - 1}):
                img = Image.open(io.BytesIO(txn.get(("%s/%06d" % (clip, i)).encode())))
                mode = img.mode
                rgb = img.convert("RGB")
                path = os.path.join(dump, "%s.%d.rgb" % (clip, i))
                with open(path, "wb") as f:
                    f.write(rgb.tobytes())
                frames.append({"index": i, "file": path, "width": rgb.width, "height": rgb.height, "mode": mode})
            out[clip] = {"meta": meta, "frames": frames, "keys": sum(1 for k in keys if k.startswith(clip + "/"))}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
