#!/usr/bin/env python3
"""Reference for src/features/db-postprocess.ts: PaddleOCR's DB post-processing of a text
probability map, written independently with numpy and OpenCV (the calls PaddleOCR itself makes:
cv2.findContours, cv2.minAreaRect, cv2.boxPoints, cv2.fillPoly, cv2.mean).

The unclip step is a round-joined polygon offset written here with numpy (PaddleOCR uses pyclipper
and shapely): every edge moved out by d = area * ratio / perimeter, every corner replaced by an arc
of radius d; cv2.minAreaRect of the result.

Steps and defaults (PaddleOCR 2.x inference: thresh 0.3, box_thresh 0.6, unclip_ratio 1.5,
max_candidates 1000, min_size 3, score mode 'fast'), then predict_det's filter (clip to the frame,
drop boxes 3 px or less across).

Usage: db_postprocess_reference.py MAP.f32 MAP_W MAP_H FRAME_W FRAME_H
  MAP.f32: the map as raw little-endian float32, row-major, MAP_H x MAP_W.
Prints a JSON list of {"points": [[x, y] x 4], "score": s} in frame pixels.
"""
import json
import sys

import cv2
import numpy as np

THRESH = 0.3
BOX_THRESH = 0.6
UNCLIP_RATIO = 1.5
MAX_CANDIDATES = 1000
MIN_SIZE = 3


def corners_in_order(pts):
    """Top-left, top-right, bottom-right, bottom-left: the two smallest x are the left side."""
    pts = np.asarray(pts, dtype=np.float64)
    order = np.argsort(pts[:, 0], kind="stable")
    left, right = pts[order[:2]], pts[order[2:]]
    if left[1, 1] > left[0, 1]:
        tl, bl = left[0], left[1]
    else:
        tl, bl = left[1], left[0]
    if right[1, 1] > right[0, 1]:
        tr, br = right[0], right[1]
    else:
        tr, br = right[1], right[0]
    return np.stack([tl, tr, br, bl])


def snap(v):
    """Values within 1/1000 px of a whole or half pixel moved onto it: cv2's float32 corners
    (0.9999981 for 1) would otherwise truncate or round by noise (see snapHalf in the TypeScript)."""
    v = np.asarray(v, dtype=np.float64)
    h = np.round(v * 2) / 2
    return np.where(np.abs(v - h) < 1e-3, h, v)


def rect_of(points):
    rect = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 1, 2))
    return corners_in_order(snap(cv2.boxPoints(rect))), float(snap(min(rect[1])))


def mean_inside(prob, box):
    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = box.copy()
    shifted[:, 0] -= xmin
    shifted[:, 1] -= ymin
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)
    return cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def round_offset(poly, ratio, arc_steps=32):
    """Points of the polygon grown by d with round corners (convex polygon)."""
    poly = np.asarray(poly, dtype=np.float64)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    edges = np.roll(poly, -1, axis=0) - poly
    perimeter = np.linalg.norm(edges, axis=1).sum()
    if perimeter == 0:
        return poly
    d = area * ratio / perimeter
    centre = poly.mean(axis=0)
    out = []
    n = len(poly)
    for i in range(n):
        # outward normals of the edges before and after vertex i
        normals = []
        for e in (poly[i] - poly[i - 1], poly[(i + 1) % n] - poly[i]):
            nrm = np.array([e[1], -e[0]]) / np.linalg.norm(e)
            mid_side = np.dot(poly[i] - centre, nrm)
            normals.append(nrm if mid_side >= 0 else -nrm)
        a0 = np.arctan2(normals[0][1], normals[0][0])
        a1 = np.arctan2(normals[1][1], normals[1][0])
        sweep = (a1 - a0 + np.pi) % (2 * np.pi) - np.pi
        for t in np.linspace(0.0, 1.0, arc_steps + 1):
            a = a0 + sweep * t
            out.append(poly[i] + d * np.array([np.cos(a), np.sin(a)]))
    return np.array(out)


def postprocess(prob, frame_w, frame_h):
    h, w = prob.shape
    mask = (prob > THRESH).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:MAX_CANDIDATES]:
        box, short = rect_of(contour.reshape(-1, 2))
        if short < MIN_SIZE:
            continue
        score = mean_inside(prob, box)
        if score < BOX_THRESH:
            continue
        grown, short = rect_of(round_offset(box, UNCLIP_RATIO))
        if short < MIN_SIZE + 2:
            continue
        scaled = np.empty_like(grown)
        scaled[:, 0] = np.clip(np.round(snap(grown[:, 0] / w * frame_w)), 0, frame_w)
        scaled[:, 1] = np.clip(np.round(snap(grown[:, 1] / h * frame_h)), 0, frame_h)
        final = corners_in_order(scaled)
        final[:, 0] = np.clip(final[:, 0], 0, frame_w - 1)
        final[:, 1] = np.clip(final[:, 1], 0, frame_h - 1)
        width = int(np.linalg.norm(final[0] - final[1]))
        height = int(np.linalg.norm(final[0] - final[3]))
        if width <= 3 or height <= 3:
            continue
        boxes.append({"points": final.tolist(), "score": float(score)})
    return boxes


def main():
    path, map_w, map_h, frame_w, frame_h = sys.argv[1], *map(int, sys.argv[2:6])
    prob = np.fromfile(path, dtype="<f4").reshape(map_h, map_w)
    json.dump(postprocess(prob, frame_w, frame_h), sys.stdout)


if __name__ == "__main__":
    main()
