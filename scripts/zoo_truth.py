#!/usr/bin/python3
"""Independent facts of media files for the generated zoo (test/zoo/generated.ts), from two
readers that share no code with clipstream or the generator: PyAV (its own libav*) and
ffprobe (Debian's, or FFPROBE_PATH).

Usage: /usr/bin/python3 scripts/zoo_truth.py FILE... > facts.json   (a JSON list, one per file)

Per file, `pyav`: container format; video codec, decoded frame count, every frame's time
(container clock, s), coded size, sample aspect ratio, display rotation (tkhd matrix, parsed
here), pixel format and bit depth, the mean of each plane of the first frame (raw levels), the
indices of white frames; audio codec, channels, rate, decoded samples. `ffprobe`: the first
video and audio stream as ffprobe shows them (codec, size, SAR, colour tags, rotation side
data, frames counted by decoding) and the audio length as the sum of its packet durations.
"""
import json
import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_reference import mp4_rotation  # noqa: E402  (the tkhd parser the old zoo's reference uses)

FFPROBE = os.environ.get('FFPROBE_PATH', '/usr/bin/ffprobe')


def bits_of(fmt):
    name = fmt.name
    for b in (16, 12, 10, 9):
        if f'p{b}' in name:
            return b
    return 8


def plane_means(frame, bits):
    """Mean raw level of each plane (Y, U, V), over the visible part only."""
    dtype = np.uint16 if bits > 8 else np.uint8
    out = []
    for i, p in enumerate(frame.planes[:3]):
        step = np.dtype(dtype).itemsize
        a = np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // step)[:, : p.width]
        out.append(float(a.mean()))
    return out


def is_white(means, bits):
    top = (1 << bits) - 1
    mid = 1 << (bits - 1)
    return means[0] > 0.88 * top and abs(means[1] - mid) < 0.05 * top and abs(means[2] - mid) < 0.05 * top


def ratio(r):
    if r is None:
        return None
    r = Fraction(r)
    return None if r.numerator == 0 else [r.numerator, r.denominator]


def pyav_video(path):
    with av.open(path) as c:
        if not c.streams.video:
            return None
        s = c.streams.video[0]
        out = {'codec': s.codec_context.name, 'sar': ratio(s.sample_aspect_ratio) or ratio(s.codec_context.sample_aspect_ratio)}
        times, flashes = [], []
        try:
            for i, f in enumerate(c.decode(s)):
                times.append(f.time)
                bits = bits_of(f.format)
                m = plane_means(f, bits) if len(f.planes) >= 3 else None
                if i == 0:
                    out.update(codedWidth=f.width, codedHeight=f.height, pixFmt=f.format.name, bits=bits, firstPlanes=m)
                    if out['sar'] is None:
                        out['sar'] = ratio(f.sample_aspect_ratio) if hasattr(f, 'sample_aspect_ratio') else None
                if m and is_white(m, bits):
                    flashes.append(i)
        except av.error.FFmpegError as e:
            out['decodeError'] = str(e)
        out['frames'] = len(times)
        out['times'] = times
        out['flashes'] = flashes
        out['rotation'] = mp4_rotation(path)
        return out


def pyav_audio(path):
    with av.open(path) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        out = {'codec': s.codec_context.name, 'channels': s.codec_context.channels, 'rate': s.codec_context.sample_rate}
        samples = 0
        try:
            for f in c.decode(s):
                samples += f.samples
        except av.error.FFmpegError as e:
            out['decodeError'] = str(e)
        out['samples'] = samples
        out['duration'] = samples / out['rate'] if out['rate'] else 0
        return out


def probe_json(args):
    r = subprocess.run([FFPROBE, '-v', 'error', *args, '-of', 'json'], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f'ffprobe exit {r.returncode}: {r.stderr.strip()[-300:]}')
    return json.loads(r.stdout)


def ffprobe_facts(path):
    # One ffprobe run (each start costs ~0.2 s): streams with frames counted by decoding, the format, every packet's timing.
    info = probe_json(['-count_frames', '-show_entries', 'stream:stream_side_data:format:packet=stream_index,pts_time,duration_time', path])
    streams = info.get('streams', [])
    v = next((s for s in streams if s.get('codec_type') == 'video'), None)
    a = next((s for s in streams if s.get('codec_type') == 'audio'), None)
    out = {'format': info.get('format', {}).get('format_name'), 'video': None, 'audio': None}
    if v:
        rot = next((d.get('rotation') for d in v.get('side_data_list', []) if 'rotation' in d), 0)
        out['video'] = {
            'codec': v.get('codec_name'),
            'width': v.get('width'),
            'height': v.get('height'),
            'sar': v.get('sample_aspect_ratio'),
            'dar': v.get('display_aspect_ratio'),
            'space': v.get('color_space'),
            'primaries': v.get('color_primaries'),
            'transfer': v.get('color_transfer'),
            'range': v.get('color_range'),
            'pixFmt': v.get('pix_fmt'),
            # ffprobe's side data is the counter-clockwise angle; a player turns clockwise by minus it.
            'rotation': (360 - int(rot)) % 360,
            'frames': int(v.get('nb_read_frames', 0)),
        }
    if a:
        packets = [p for p in info.get('packets', []) if p.get('stream_index') == a.get('index')]

        def num(p, k):
            return float(p[k]) if p.get(k) not in (None, 'N/A') else None

        # A fragmented mp4 may leave packet durations out: the step to the next packet is one.
        durations = []
        for i, p in enumerate(packets):
            d = num(p, 'duration_time')
            if not d and i + 1 < len(packets) and num(p, 'pts_time') is not None and num(packets[i + 1], 'pts_time') is not None:
                d = num(packets[i + 1], 'pts_time') - num(p, 'pts_time')
            durations.append(d if d and d > 0 else (durations[-1] if durations else 0))
        out['audio'] = {
            'codec': a.get('codec_name'),
            'channels': a.get('channels'),
            'rate': int(a.get('sample_rate', 0)),
            'duration': sum(durations),
        }
    return out


def facts(path):
    r = {'path': path, 'ok': True}
    try:
        with av.open(path) as c:
            fmt = c.format.name
        r['pyav'] = {'format': fmt, 'video': pyav_video(path), 'audio': pyav_audio(path)}
    except Exception as e:  # noqa: BLE001 - any failure to open is the answer
        r['ok'] = False
        r['pyavError'] = f'{type(e).__name__}: {e}'
    try:
        r['ffprobe'] = ffprobe_facts(path)
    except Exception as e:  # noqa: BLE001
        r['ok'] = False
        r['ffprobeError'] = f'{type(e).__name__}: {e}'
    return r


def main():
    print(json.dumps([facts(p) for p in sys.argv[1:]]))


if __name__ == '__main__':
    main()
