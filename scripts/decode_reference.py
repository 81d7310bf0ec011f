#!/usr/bin/python3
"""Independent reference for clipstream's clip decode (tests compare against it).

The recipe of SlowFast / ACAV100M, built from PyAV + torch, not from clipstream's code:
  video: decode with PyAV, keep the frames whose time from the stream start is < window,
         pick torch.linspace(0, n - 1, num_frames).long() of them, convert each to RGB
         (PyAV, i.e. libswscale at the source size), scale the short side to `size` with
         F.interpolate(mode='bilinear', align_corners=False) on floats (long side
         floor(long / short * size)), crop size x size (top-left: offset 0 on the long
         side; center: ceil((long - size) / 2)).
  audio: decode with PyAV, resample each channel to `rate` (PyAV's resampler, layout
         kept), then the plain mean of all channels (VGGish's np.mean(axis=1)).

Usage: decode_reference.py INPUT OUT_PREFIX [--window 10] [--frames 32] [--size 256]
       [--crop top-left|center] [--rate 16000] [--rotate 0|90|180|270]
       decode_reference.py --batch SPEC.json   (a list of {input, out, crop?, window?, rotate?}:
       one Python start for many files; prints one JSON line per entry)
--rotate turns the decoded frames clockwise as a player displays them (PyAV does not apply
the container's rotation; ffmpeg does).
Writes OUT_PREFIX.video.f32 (frames x size x size x 3, values 0..255 as floats, before
any rounding: what the model sees x 255) and OUT_PREFIX.audio.f32 (mono float32), and
prints a JSON summary on stdout.
"""
import argparse
import json
import math

import av
import numpy as np
import torch
import torch.nn.functional as F


def pick_frames(path, window, count):
    with av.open(path) as c:
        if not c.streams.video:
            return None, 0, None
        s = c.streams.video[0]
        start = s.start_time
        frames = []
        for f in c.decode(s):
            if f.pts is not None and start is not None and float((f.pts - start) * s.time_base) >= window:
                break
            frames.append(f)
        n = len(frames)
        if n == 0:
            return None, 0, None
        idx = torch.linspace(0, n - 1, count).long().tolist()
        rgb = np.stack([frames[i].to_ndarray(format='rgb24') for i in idx])
        return rgb, n, idx


def rotate(rgb, degrees):
    """Clockwise turn of N x H x W x 3 frames."""
    k = (degrees // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-k, axes=(1, 2))) if k else rgb


def spatial(rgb, size, crop):
    t = torch.from_numpy(rgb).float().permute(0, 3, 1, 2)  # N C H W, 0..255
    h, w = t.shape[2], t.shape[3]
    if w < h:
        nw, nh = size, int(math.floor(float(h) / w * size))
    else:
        nw, nh = int(math.floor(float(w) / h * size)), size
    if not ((w <= h and w == size) or (h <= w and h == size)):
        t = F.interpolate(t, size=(nh, nw), mode='bilinear', align_corners=False)
    h, w = t.shape[2], t.shape[3]
    y = int(math.ceil((h - size) / 2))
    x = int(math.ceil((w - size) / 2))
    if crop == 'top-left':
        if h > w:
            y = 0
        else:
            x = 0
    return t[:, :, y:y + size, x:x + size].permute(0, 2, 3, 1).contiguous().numpy()


def mono(path, window, rate):
    with av.open(path) as c:
        if not c.streams.audio:
            return None, 0
        s = c.streams.audio[0]
        channels = s.codec_context.channels
        resampler = None
        parts = []
        for f in c.decode(s):
            if resampler is None:
                resampler = av.AudioResampler(format='fltp', layout=f.layout.name, rate=rate)
            for r in resampler.resample(f):
                parts.append(r.to_ndarray())
        for r in resampler.resample(None) if resampler else []:
            parts.append(r.to_ndarray())
        if not parts:
            return np.zeros(0, np.float32), channels
        pcm = np.concatenate(parts, axis=1).astype(np.float64)  # channels x samples
        pcm = pcm[:, : int(round(window * rate))]
        return pcm.mean(axis=0).astype(np.float32), channels


def run(input, out, window=10.0, frames=32, size=256, crop='top-left', rate=16000, rotation=0):
    summary = {'input': input}
    try:
        rgb, decoded, idx = pick_frames(input, window, frames)
    except av.error.FFmpegError as e:
        summary['error'] = str(e)
        return summary
    summary['decoded_frames'] = decoded
    summary['picks'] = idx
    if rgb is not None:
        rgb = rotate(rgb, rotation)
        summary['source_height'], summary['source_width'] = int(rgb.shape[1]), int(rgb.shape[2])
        spatial(rgb, size, crop).astype(np.float32).tofile(out + '.video.f32')
    try:
        pcm, channels = mono(input, window, rate)
    except av.error.FFmpegError as e:
        summary['audio_error'] = str(e)
        return summary
    summary['channels'] = channels
    if pcm is not None:
        summary['audio_samples'] = int(pcm.shape[0])
        pcm.tofile(out + '.audio.f32')
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument('input', nargs='?')
    p.add_argument('out', nargs='?')
    p.add_argument('--batch')
    p.add_argument('--window', type=float, default=10)
    p.add_argument('--frames', type=int, default=32)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--crop', default='top-left', choices=['top-left', 'center'])
    p.add_argument('--rate', type=int, default=16000)
    p.add_argument('--rotate', type=int, default=0)
    a = p.parse_args()
    if a.batch:
        with open(a.batch) as f:
            for e in json.load(f):
                print(json.dumps(run(e['input'], e['out'], e.get('window', a.window), a.frames, a.size, e.get('crop', a.crop), a.rate, e.get('rotate', 0))), flush=True)
        return
    print(json.dumps(run(a.input, a.out, a.window, a.frames, a.size, a.crop, a.rate, a.rotate)))


if __name__ == '__main__':
    main()
