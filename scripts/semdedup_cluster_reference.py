#!/usr/bin/env python3
"""SemDeDup's within-cluster rule on one cluster of a clipstream float16 spill, with numpy, to check
the blocked implementation (src/semdedup/cluster.ts) on clusters larger than one block.

The rows are read from the spill (`np.fromfile(path, '<f2', offset=64)`), normalised again in
float64 and kept as float32 (as clipstream decodes them); ranked by cosine distance to the given
centroid (farthest first for 'hard', nearest first for 'easy'; equal distances in row order); for
each ranked item its largest cosine similarity to an item ranked before it (the whole n x n
matrix at once, float64), removed when above 1 - eps.

Usage: semdedup_cluster_reference.py JOB.json  (keys: spill, rows, centroid, eps, keep)
Prints JSON: {"order": [...], "max_similarity": [...], "argmax": [...], "kept": [...]}
(positions into `rows`; max_similarity null and argmax -1 for the first item).
"""
import json
import sys

import numpy as np


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    with open(job['spill'], 'rb') as f:
        header = f.read(64)
    dim = int(np.frombuffer(header[8:12], '<u4')[0])
    half = np.fromfile(job['spill'], dtype='<f2', offset=64).reshape(-1, dim)
    h = half[np.asarray(job['rows'], dtype=np.int64)].astype(np.float64)
    s = np.cumsum(h * h, axis=1)[:, -1]  # a running sum, in value order
    x = (h * (1.0 / np.sqrt(s))[:, None]).astype(np.float32).astype(np.float64)
    c = np.asarray(job['centroid'], dtype=np.float64)
    inv = 1.0 / np.sqrt(np.cumsum(c * c)[-1])
    dist = 1.0 - np.cumsum(x * c[None, :], axis=1)[:, -1] * inv
    key = -dist if job['keep'] == 'hard' else dist
    order = np.argsort(key, kind='stable')
    r = x[order]
    sim = r @ r.T
    n = len(order)
    best, at = [None], [-1]
    for j in range(1, n):
        i = int(np.argmax(sim[j, :j]))
        best.append(float(sim[j, i]))
        at.append(i)
    kept = [1] + [0 if b > 1 - job['eps'] else 1 for b in best[1:]]
    json.dump({'order': order.tolist(), 'max_similarity': best, 'argmax': at, 'kept': kept}, sys.stdout)


if __name__ == '__main__':
    main()
