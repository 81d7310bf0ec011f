#!/usr/bin/env python3
"""SemDeDup re-implemented with numpy and scikit-learn, to check `clipstream semdedup`.

Reads the feature shards itself (msgpack_numpy or JSON), makes the same float16 embeddings
(one vector per clip: the array, or its mean over all axes but the last; L2-normalised; stored
as float16; read back and normalised again, kept as float32), runs scikit-learn's KMeans
(Lloyd, one start) from the initial centroids clipstream chose (passed in, so the clusters can
agree), then the within-cluster rule of NeMo Curator's SemDeDup:

  rank a cluster's items by cosine distance to its centroid (farthest first for 'hard', nearest
  first for 'easy'; equal distances in row order); for each item, its largest cosine similarity
  to an item ranked before it; removed when that is above 1 - eps; duplicate_of is that item.

Usage: semdedup_reference.py --init init_centroids.npy --out result.json [--key layer_4]
       [--feature_set visual] [--eps 0.05] [--keep hard] [--max_iter 20] [--spill embeddings.f16] SHARD...
Writes JSON: {"labels": [...], "centers": [[...]], "iterations": n,
              "rows": [{"clip_id", "cluster", "kept", "max_similarity", "duplicate_of"}, ...]}
with rows in cluster order, then rank order within a cluster (the order of semdedup.csv).
"""
import argparse
import json
import os

import msgpack
import msgpack_numpy
import numpy as np
from sklearn.cluster import KMeans


def read_shard(path):
    if path.endswith('.json'):
        with open(path) as f:
            records = json.load(f)
        for r in records:
            for s in r.get('visual_features', []) + r.get('audio_features', []):
                s['feat_array'] = {k: np.asarray(v, dtype=np.float32) for k, v in s['feat_array'].items()}
        return records
    with open(path, 'rb') as f:
        return msgpack.unpackb(f.read(), object_hook=msgpack_numpy.decode, raw=False)


def clip_id(r):
    if r.get('__key__') is not None:
        return r['__key__']
    return os.path.splitext(os.path.basename(r['filename']))[0]


def embeddings(paths, key, feature_set, halves_out=None):
    ids, rows = [], []
    dim = None
    for p in paths:
        try:
            records = read_shard(p)
        except Exception:
            continue
        for r in records:
            sets = r.get(f'{feature_set}_features') or []
            if not sets or key not in sets[0]['feat_array']:
                continue
            a = np.asarray(sets[0]['feat_array'][key], dtype=np.float64)
            v = a.reshape(-1, a.shape[-1]).mean(axis=0) if a.ndim > 1 else a.reshape(-1)
            if dim is None:
                dim = v.shape[0]
            s = np.cumsum(v * v)[-1]  # a running sum, in row order
            if v.shape[0] != dim or not (s > 0) or not np.isfinite(s):
                continue
            v = v * (1.0 / np.sqrt(s))
            rows.append(v.astype(np.float32).astype(np.float16))
            ids.append(clip_id(r))
    if halves_out is not None:
        halves_out.append(np.stack(rows))
    h = np.stack(rows).astype(np.float64)
    s = np.cumsum(h * h, axis=1)[:, -1]
    x = (h * (1.0 / np.sqrt(s))[:, None]).astype(np.float32).astype(np.float64)
    return ids, x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--init', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--key', default='layer_4')
    ap.add_argument('--feature_set', default='visual')
    ap.add_argument('--eps', type=float, default=0.05)
    ap.add_argument('--keep', default='hard')
    ap.add_argument('--max_iter', type=int, default=20)
    ap.add_argument('--spill', help="clipstream's embeddings.f16: reported as equal or not to these float16 rows")
    ap.add_argument('shards', nargs='+')
    a = ap.parse_args()
    halves = []
    ids, x = embeddings(a.shards, a.key, a.feature_set, halves)
    spill_equal = None
    if a.spill:
        with open(a.spill, 'rb') as f:
            head = f.read(64)
        dim = int(np.frombuffer(head[8:12], '<u4')[0])
        rows = int(np.frombuffer(head[12:20], '<f8')[0])
        spilled = np.fromfile(a.spill, dtype='<f2', offset=64).reshape(rows, dim)
        spill_equal = bool(head[:8] == b'CSSPILL1' and spilled.shape == halves[0].shape and np.array_equal(spilled.view('<u2'), halves[0].view('<u2')))
    init = np.load(a.init)
    km = KMeans(n_clusters=init.shape[0], init=init, n_init=1, max_iter=a.max_iter, tol=0, algorithm='lloyd').fit(x)
    labels = km.labels_
    centers = km.cluster_centers_
    rows = []
    for c in range(init.shape[0]):
        members = np.flatnonzero(labels == c)
        if members.size == 0:
            continue
        xc = x[members]
        cen = centers[c] / np.linalg.norm(centers[c])
        dist = 1.0 - xc @ cen
        sign = -1.0 if a.keep == 'hard' else 1.0
        order = np.lexsort((np.arange(members.size), sign * dist))
        xs = xc[order]
        sim = xs @ xs.T
        for j in range(members.size):
            rid = ids[members[order[j]]]
            if j == 0:
                rows.append({'clip_id': rid, 'cluster': c, 'kept': True, 'max_similarity': None, 'duplicate_of': ''})
                continue
            col = sim[:j, j]
            i = int(np.argmax(col))
            m = float(col[i])
            kept = not (m > 1 - a.eps)
            rows.append({'clip_id': rid, 'cluster': c, 'kept': kept, 'max_similarity': m, 'duplicate_of': '' if kept else ids[members[order[i]]]})
    with open(a.out, 'w') as f:
        json.dump({'labels': labels.tolist(), 'centers': centers.tolist(), 'iterations': int(km.n_iter_), 'ids': ids, 'spill_equal': spill_equal, 'rows': rows}, f)


if __name__ == '__main__':
    main()
