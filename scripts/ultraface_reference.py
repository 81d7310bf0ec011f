#!/usr/bin/env python3
"""Independent reference for the UltraFace decoder: the published post-processing in numpy.

  /usr/bin/python3 scripts/ultraface_reference.py DUMP_DIR

Re-implements, with numpy only, `predict` of the repository's `run_video_face_detect_onnx.py`
and `hard_nms` / `iou_of` / `area_of` of `vision/utils/box_utils.py`
(Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT): keep class-1 probabilities above the
threshold, hard NMS over at most the 200 best candidates (IoU with eps 1e-5, keep iou <= threshold),
then scale the normalised corners by the model input size. onnxruntime is not available to
Python here, so the raw outputs come from our ONNX session: DUMP_DIR holds, per image NAME,
NAME.scores.f32 ([N, 2] float32), NAME.boxes.f32 ([N, 4]) and NAME.json
({input_width, input_height, scale, source_width, source_height, prob_threshold, iou_threshold}).
Prints {NAME: [[x1, y1, x2, y2, score], ...]} in source pixels (divided by scale, clipped), best first.
"""

import json
import os
import sys

import numpy as np


def area_of(left_top, right_bottom):
    hw = np.clip(right_bottom - left_top, 0.0, None)
    return hw[..., 0] * hw[..., 1]


def iou_of(boxes0, boxes1, eps=1e-5):
    lt = np.maximum(boxes0[..., :2], boxes1[..., :2])
    rb = np.minimum(boxes0[..., 2:], boxes1[..., 2:])
    overlap = area_of(lt, rb)
    return overlap / (area_of(boxes0[..., :2], boxes0[..., 2:]) + area_of(boxes1[..., :2], boxes1[..., 2:]) - overlap + eps)


def hard_nms(box_scores, iou_threshold, top_k=-1, candidate_size=200):
    scores = box_scores[:, -1]
    boxes = box_scores[:, :-1]
    picked = []
    order = np.argsort(scores, kind="stable")[-candidate_size:]
    while len(order) > 0:
        current = order[-1]
        picked.append(current)
        if 0 < top_k == len(picked) or len(order) == 1:
            break
        order = order[:-1]
        ious = iou_of(boxes[order, :], boxes[current][None, :])
        order = order[ious <= iou_threshold]
    return box_scores[picked, :]


def predict(width, height, confidences, boxes, prob_threshold, iou_threshold):
    probs = confidences[:, 1]
    mask = probs > prob_threshold
    if not mask.any():
        return np.zeros((0, 5), np.float32)
    box_probs = np.concatenate([boxes[mask, :], probs[mask].reshape(-1, 1)], axis=1)
    picked = hard_nms(box_probs, iou_threshold)
    picked[:, 0] *= width
    picked[:, 1] *= height
    picked[:, 2] *= width
    picked[:, 3] *= height
    return picked


def main():
    dump = sys.argv[1]
    out = {}
    for name in sorted(f[:-5] for f in os.listdir(dump) if f.endswith(".json")):
        with open(os.path.join(dump, name + ".json")) as f:
            meta = json.load(f)
        scores = np.fromfile(os.path.join(dump, name + ".scores.f32"), dtype="<f4").reshape(-1, 2)
        boxes = np.fromfile(os.path.join(dump, name + ".boxes.f32"), dtype="<f4").reshape(-1, 4)
        picked = predict(meta["input_width"], meta["input_height"], scores, boxes, meta["prob_threshold"], meta["iou_threshold"])
        rows = []
        for x1, y1, x2, y2, s in picked.astype(np.float64):
            k = meta["scale"]
            rows.append([max(0.0, x1 / k), max(0.0, y1 / k), min(meta["source_width"], x2 / k), min(meta["source_height"], y2 / k), s])
        out[name] = rows
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
