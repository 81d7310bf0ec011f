#!/usr/bin/env python3
"""Independent reference for the segments tests: decodes a video with PyAV and prints, as JSON,
every decoded video frame's presentation time (seconds) and the first audio frame's time.

    /usr/bin/python3 scripts/frame_times.py video.mp4
"""
import json
import sys

import av

with av.open(sys.argv[1]) as c:
    times = [float(f.time) for f in c.decode(video=0)]
with av.open(sys.argv[1]) as c:
    audio = None
    samples = 0
    rate = None
    if c.streams.audio:
        for f in c.decode(audio=0):
            if audio is None:
                audio = float(f.time)
            samples += f.samples
            rate = f.sample_rate
print(json.dumps({"video": times, "audio_start": audio, "audio_seconds": samples / rate if rate else None}))
