#!/usr/bin/env python3
"""Independent reference for clipstream's perceptual frame hash (src/features/fingerprint.ts).

The definition, written again here with numpy (no code shared with the TypeScript):
  1. the gray frame (uint8, H x W) is area-averaged to 32 x 32: output cell (i, j) is the mean of
     the source rectangle [i*H/32, (i+1)*H/32) x [j*W/32, (j+1)*W/32), each source pixel weighted
     by the share of it inside the rectangle;
  2. C[u, v] = sum_y sum_x f[y, x] cos(pi (2y+1) u / 64) cos(pi (2x+1) v / 64) for u, v = 1..8
     (a 2-D DCT-II without normalisation; row 0 and column 0, DC among them, are left out);
  3. m = the median of the 64 coefficients; bit k = (u-1)*8 + (v-1), most significant first, is
     1 where C[u, v] - m > 1e-6 * max|C|.
A clip's fingerprint: frame floor((i + 0.5) * n / N) for i < N (n frames), hashes as 16 hex digits each.

Usage:
  fingerprint_reference.py raw FILE WIDTH HEIGHT      hash every gray frame of a raw file; one hex per line
  fingerprint_reference.py rgb FILE WIDTH HEIGHT      the same for raw RGB24 frames, gray = (77 R + 150 G + 29 B + 128) >> 8
  fingerprint_reference.py video FILE [N]             decode with PyAV at full size, gray; print the fingerprint
"""
import sys

import numpy as np


def area_matrix(size, out=32):
    """out x size matrix M with (M @ v) the area average of v over `out` equal cells."""
    m = np.zeros((out, size), dtype=np.float64)
    edges = np.arange(out + 1, dtype=np.float64) * size / out
    for o in range(out):
        lo, hi = edges[o], edges[o + 1]
        for s in range(int(np.floor(lo)), min(size, int(np.ceil(hi)))):
            m[o, s] = (min(hi, s + 1) - max(lo, s)) / (hi - lo)
    return m


def frame_hash(gray):
    h, w = gray.shape
    f = area_matrix(h) @ gray.astype(np.float64) @ area_matrix(w).T
    n = np.arange(32)
    basis = np.cos(np.pi * np.outer(np.arange(1, 9), 2 * n + 1) / 64.0)  # 8 x 32
    c = basis @ f @ basis.T
    flat = c.reshape(-1)
    median = np.median(flat)
    bits = (flat - median) > 1e-6 * np.abs(flat).max()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


def main():
    mode = sys.argv[1]
    if mode == 'raw':
        path, w, h = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = np.fromfile(path, dtype=np.uint8)
        frames = data.reshape(-1, h, w)
        for fr in frames:
            print(format(frame_hash(fr), '016x'))
    elif mode == 'rgb':
        path, w, h = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        rgb = np.fromfile(path, dtype=np.uint8).reshape(-1, h, w, 3).astype(np.int32)
        gray = ((77 * rgb[..., 0] + 150 * rgb[..., 1] + 29 * rgb[..., 2] + 128) >> 8).astype(np.uint8)
        for fr in gray:
            print(format(frame_hash(fr), '016x'))
    elif mode == 'video':
        import av

        path = sys.argv[2]
        count = int(sys.argv[3]) if len(sys.argv) > 3 else 8
        hashes = []
        with av.open(path) as container:
            for frame in container.decode(video=0):
                hashes.append(frame_hash(frame.to_ndarray(format='gray')))
        picked = [hashes[min(len(hashes) - 1, int((i + 0.5) * len(hashes) // count))] for i in range(count)]
        print(''.join(format(x, '016x') for x in picked))
    else:
        sys.exit(f'unknown mode {mode}')


if __name__ == '__main__':
    main()
