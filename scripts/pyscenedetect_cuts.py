#!/usr/bin/env python3
"""Runs the real PySceneDetect's ContentDetector (its own code, not a re-implementation) on video
files and prints the cut frames as JSON, for the shot zoo's comparison and the shot bench.

PySceneDetect is not a dependency of clipstream and is not installed in CI: point the environment
variable CLIPSTREAM_PYSCENEDETECT at a checkout of its repository (the folder that holds the
`scenedetect` package; 0.7.x imports with Debian's python3-opencv and numpy). Without it this
script exits with status 3 and says so on stderr.

Usage:
  CLIPSTREAM_PYSCENEDETECT=/path/to/PySceneDetect \
    /usr/bin/python3 scripts/pyscenedetect_cuts.py [--threshold 27] [--min-len 15] FILE...
prints {"version": "...", "files": [{"path", "frames", "seconds", "cpuSeconds", "cuts": [frame, ...]}]};
a cut is the index of the first frame of the new scene; `seconds` and `cpuSeconds` are the wall
and CPU time (all threads of the process: its decode thread and OpenCV's) of detect_scenes,
decode included, for the bench.
"""

import argparse
import json
import os
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--threshold", type=float, default=27.0)
    p.add_argument("--min-len", type=int, default=15, help="min_scene_len in frames (PySceneDetect's default 15)")
    p.add_argument("--backend", default="opencv")
    a = p.parse_args()
    root = os.environ.get("CLIPSTREAM_PYSCENEDETECT")
    if not root or not os.path.isdir(os.path.join(root, "scenedetect")):
        sys.stderr.write(
            "pyscenedetect_cuts.py: set CLIPSTREAM_PYSCENEDETECT to a PySceneDetect checkout (the folder holding scenedetect/)\n"
        )
        return 3
    sys.path.insert(0, root)
    import scenedetect
    from scenedetect import ContentDetector, SceneManager, open_video

    out = []
    for path in a.files:
        video = open_video(path, backend=a.backend)
        manager = SceneManager()
        manager.add_detector(ContentDetector(threshold=a.threshold, min_scene_len=a.min_len))
        t0 = time.perf_counter()
        c0 = time.process_time()
        frames = manager.detect_scenes(video=video)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        cuts = [int(tc.frame_num) for tc in manager.get_cut_list(show_warning=False)]
        out.append({"path": path, "frames": int(frames), "seconds": seconds, "cpuSeconds": cpu, "cuts": cuts})
    json.dump({"version": scenedetect.__version__, "files": out}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
