#!/usr/bin/python3
"""Independent reader for the media zoo (test/zoo/): decodes each file with PyAV and reports
what is really in it, so the zoo's stated truth can be checked against something that shares
no code with clipstream or with the generator.

Usage: /usr/bin/python3 scripts/zoo_reference.py [--ignore-editlist] FILE... > report.json

--ignore-editlist reads mp4/mov as a reader without edit-list support would.

Per file: video frame count, every frame's time, coded and displayed size, the display
rotation (parsed from the mp4/mov tkhd matrix here, not taken from any library), the first
frame's mean RGB, the indices of white frames; audio channels, rate, start, length and the
onsets of 1 kHz beeps. Times are seconds on the container's clock; `audioStart` and `beeps`
are relative to the first video frame (to the audio start when there is no video).
"""
import json
import math
import struct
import sys

import av
import numpy as np

BEEP_HZ = 1000.0
BEEP_LEVEL = 0.25  # half the generator's 0.5 amplitude
WHITE = 235.0
OPTIONS = {}


def mp4_rotation(path):
    """Clockwise display rotation from the video track's tkhd matrix, or 0 when none."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return 0
    if data[4:8] not in (b'ftyp', b'moov', b'mdat', b'free', b'wide', b'skip'):
        return 0

    def children(start, end):
        p = start
        while p + 8 <= end:
            size, kind = struct.unpack('>I4s', data[p:p + 8])
            head = 8
            if size == 1:
                size = struct.unpack('>Q', data[p + 8:p + 16])[0]
                head = 16
            elif size == 0:
                size = end - p
            if size < head:
                return
            yield kind, p + head, min(p + size, end)
            p += size

    def find(start, end, kind):
        return [(s, e) for k, s, e in children(start, end) if k == kind]

    for ms, me in find(0, len(data), b'moov'):
        for ts, te in find(ms, me, b'trak'):
            handler = None
            for ds, de in find(ts, te, b'mdia'):
                for hs, he in find(ds, de, b'hdlr'):
                    handler = data[hs + 8:hs + 12]
            if handler != b'vide':
                continue
            for ks, ke in find(ts, te, b'tkhd'):
                at = ks + (52 if data[ks] == 1 else 40)
                a, b = struct.unpack('>ii', data[at:at + 8])
                return int(round(math.degrees(math.atan2(b, a)))) % 360
    return 0


def read_video(path):
    out = {}
    with av.open(path, options=OPTIONS) as c:
        if not c.streams.video:
            return None
        s = c.streams.video[0]
        out['codec'] = s.codec_context.name
        out['headerFrames'] = s.frames
        times, flashes, first = [], [], None
        try:
            for i, frame in enumerate(c.decode(s)):
                t = frame.time if frame.pts is not None else None
                times.append(t)
                rgb = frame.to_ndarray(format='rgb24').reshape(-1, 3).astype(np.float64).mean(axis=0)
                if first is None:
                    first = [round(float(v), 2) for v in rgb]
                    out['codedWidth'], out['codedHeight'] = frame.width, frame.height
                    out['pixFmt'] = frame.format.name
                if rgb.min() > WHITE:
                    flashes.append(i)
        except av.error.FFmpegError as e:
            out['decodeError'] = str(e)
    out['frames'] = len(times)
    out['times'] = times
    out['flashes'] = flashes
    out['firstFrameColor'] = first
    rot = mp4_rotation(path)
    out['rotation'] = rot
    if first is not None:
        w, h = out['codedWidth'], out['codedHeight']
        out['width'], out['height'] = (h, w) if rot in (90, 270) else (w, h)
    return out


def to_float(frame):
    a = frame.to_ndarray()
    ch = len(frame.layout.channels)
    if not frame.format.is_planar:
        a = a.reshape(-1, ch).T
    if a.dtype.kind == 'i':
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    elif a.dtype.kind == 'u':
        a = (a.astype(np.float64) - 128.0) / 128.0
    return a.astype(np.float64)


def beep_onsets(x, rate):
    """Rising edges of the 1 kHz envelope: demodulate, centred 2 ms moving average, threshold."""
    if len(x) == 0:
        return []
    t = np.arange(len(x)) / rate
    z = x * np.exp(-2j * np.pi * BEEP_HZ * t)
    w = max(1, int(round(rate * 0.002)))
    env = 2 * np.abs(np.convolve(z, np.ones(w) / w, mode='same'))
    above = env > BEEP_LEVEL
    edges = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    if above[0]:
        edges = np.concatenate([[0], edges])
    onsets = []
    for e in edges:
        if onsets and e / rate - onsets[-1] < 0.2:
            continue
        # interpolate the crossing between samples e-1 and e
        frac = 0.0
        if e > 0 and env[e] != env[e - 1]:
            frac = (BEEP_LEVEL - env[e - 1]) / (env[e] - env[e - 1]) - 1.0
        onsets.append((e + frac) / rate)
    return onsets


def read_audio(path):
    with av.open(path, options=OPTIONS) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        out = {'codec': s.codec_context.name, 'channels': s.codec_context.channels, 'rate': s.codec_context.sample_rate}
        chunks, start, gaps, expected = [], None, 0, None
        try:
            for frame in c.decode(s):
                if start is None:
                    start = frame.time
                elif frame.time is not None and abs(frame.time - expected) > 0.002:
                    gaps += 1
                a = to_float(frame)
                chunks.append(a)
                expected = (frame.time if frame.time is not None else expected) + a.shape[1] / frame.sample_rate
        except av.error.FFmpegError as e:
            out['decodeError'] = str(e)
    x = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0))
    out['start'] = start
    out['samples'] = int(x.shape[1])
    out['duration'] = x.shape[1] / out['rate'] if out['rate'] else 0
    out['gaps'] = gaps
    out['beeps'] = [start + b for b in beep_onsets(x.mean(axis=0), out['rate'])] if start is not None else []
    return out


def reference(path):
    r = {'path': path}
    try:
        with av.open(path, options=OPTIONS) as c:
            r['format'] = c.format.name
        r['video'] = read_video(path)
        r['audio'] = read_audio(path)
    except Exception as e:  # noqa: BLE001 - any failure to open is the answer for a bad file
        return {'path': path, 'ok': False, 'error': f'{type(e).__name__}: {e}'}
    v, a = r['video'], r['audio']
    if not v and not a:
        return {'path': path, 'ok': False, 'error': 'no audio or video stream'}
    if v and v['frames'] == 0:
        return {'path': path, 'ok': False, 'error': 'no video frame decodes', **r}
    r['ok'] = True
    zero = v['times'][0] if v else (a['start'] if a else 0)
    if v:
        v['times'] = [round(t - zero, 6) for t in v['times']]
        v['firstTime'] = zero
    if a:
        r['audioStart'] = round(a['start'] - zero, 6) if a['start'] is not None else None
        r['beeps'] = [round(b - zero, 6) for b in a['beeps']]
    return r


def main():
    paths = sys.argv[1:]
    if paths and paths[0] == '--ignore-editlist':
        OPTIONS['ignore_editlist'] = '1'
        paths = paths[1:]
    print(json.dumps([reference(p) for p in paths]))


if __name__ == '__main__':
    main()
