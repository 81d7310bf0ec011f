#!/usr/bin/python3
"""Independent reader for the clips tests: what a media file really holds, by PyAV.

Usage: media_truth.py FILE [FILE ...]   -> one JSON object per line

For each file: the number of decoded video frames, each frame's presentation time
(seconds, relative to the first frame), the first frame's absolute time, the mean luma
and an MD5 of the luma plane (its even-sized part) of each frame (a white flash is > 128 on a dark picture), the displayed size, and for
the first audio stream its rate, its start relative to the first video frame, its
decoded length, and the onsets of beeps (a tone after at least 50 ms of silence),
relative to the first video frame. PyAV brings its own libav*, so none of this goes
through the ffmpeg/ffprobe that clipstream uses.
"""
import hashlib
import json
import sys

import av
import numpy as np


def video_truth(path):
    with av.open(path) as c:
        if not c.streams.video:
            return None
        s = c.streams.video[0]
        times, luma, yhash = [], [], []
        width = height = None
        for f in c.decode(s):
            t = f.time if f.pts is not None else None
            times.append(t)
            y = f.to_ndarray(format='gray')
            luma.append(float(y.mean()))
            # The even part only: clips of odd-size sources are cropped to even (4:2:0).
            h, w = y.shape
            yhash.append(hashlib.md5(np.ascontiguousarray(y[: h - h % 2, : w - w % 2]).tobytes()).hexdigest())
            width, height = f.width, f.height
        return {'times_abs': times, 'luma': luma, 'yhash': yhash, 'width': width, 'height': height}


def audio_truth(path, t0):
    with av.open(path) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        chunks, start, rate = [], None, s.rate
        for f in c.decode(s):
            if start is None:
                start = f.time
            a = f.to_ndarray().astype(np.float64)
            if a.ndim == 2 and f.format.is_planar:
                a = a.mean(axis=0)
            elif a.ndim == 2:
                a = a.reshape(-1, len(f.layout.channels)).mean(axis=1)
            chunks.append(a)
            rate = f.sample_rate
        x = np.concatenate(chunks) if chunks else np.zeros(0)
        win = max(1, rate // 1000)  # 1 ms envelope
        n = len(x) // win
        env = np.abs(x[: n * win]).reshape(n, win).max(axis=1) if n else np.zeros(0)
        loud = env > 0.1
        onsets, quiet = [], 50
        for i, v in enumerate(loud):
            if v and quiet >= 50:
                # Refine to the first loud sample inside the window.
                seg = np.abs(x[i * win:(i + 1) * win])
                k = int(np.argmax(seg > 0.1))
                onsets.append((i * win + k) / rate)
            quiet = 0 if v else quiet + 1
        base = (start or 0.0) - (t0 or 0.0)
        return {'rate': rate, 'start': base, 'duration': len(x) / rate, 'onsets': [base + o for o in onsets]}


def main():
    for path in sys.argv[1:]:
        v = video_truth(path)
        t0 = v['times_abs'][0] if v and v['times_abs'] else 0.0
        out = {'file': path}
        if v:
            out.update({
                'frames': len(v['times_abs']),
                't0': t0,
                'times': [None if t is None else t - t0 for t in v['times_abs']],
                'luma': v['luma'],
                'yhash': v['yhash'],
                'flashes': [i for i, m in enumerate(v['luma']) if m > 128],
                'width': v['width'],
                'height': v['height'],
            })
        out['audio'] = audio_truth(path, t0)
        print(json.dumps(out))


if __name__ == '__main__':
    main()
