#!/usr/bin/env bash
# The GPU check: extract, faces and segments with ONNX Runtime's CUDA execution provider and clips with NVENC, each
# against the same work on the CPU, on the shipped fixtures. Prints ONE JSON line of figures on stdout (progress on
# stderr); exit 0 when every comparison agrees (GPU parts that cannot run are reported skipped, with the reason, and
# their CPU fallback is compared instead), 1 on a disagreement or a failed job, 3 with --require_gpu when a GPU part
# was skipped, 2 for a bad option, 124 when GPU_CHECK_TIMEOUT_S (default 600) stopped it (the figures so far still
# come out). Sized for under 5 minutes on a 16-core GPU machine; --quick (or GPU_CHECK_QUICK=1) does tiny
# work (the test runs it). Works from a fresh clone after `npm ci`; no network. See docs/gpu.md.
#   scripts/gpu-check.sh [--quick] [--device=cuda:0] [--encoder=h264_nvenc|hevc_nvenc] [--ffmpeg_path=/path/to/ffmpeg]
#                        [--jobs=extract,clips,faces,segments] [--copies=4] [--work_dir=DIR] [--keep] [--require_gpu]
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x node_modules/.bin/tsx ]]; then
  echo "gpu-check: node_modules/.bin/tsx is missing: run \`npm ci\` in $(pwd) first" >&2
  exit 2
fi
# ONNX Runtime prints one line per initializer of the published UltraFace graph from the detector's worker thread;
# those lines say nothing about the check, so they are dropped from stderr (everything else passes).
timeout --kill-after=10 "${GPU_CHECK_TIMEOUT_S:-600}" node_modules/.bin/tsx scripts/gpu-check.ts "$@" \
  2> >(grep --line-buffered -v 'appears in graph inputs and will not be treated as constant' >&2)
rc=$?
if [[ $rc -eq 124 || $rc -eq 137 ]]; then echo "gpu-check: stopped after ${GPU_CHECK_TIMEOUT_S:-600} s (GPU_CHECK_TIMEOUT_S)" >&2; fi
exit $rc
