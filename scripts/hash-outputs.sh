#!/usr/bin/env bash
# Runs every job on the shipped fixtures into a scratch folder and prints one sha256 per output file, so a change
# can be checked to leave outputs it does not mean to touch byte-identical: run it before and after, diff the lists.
# Run logs, timings and lock-free bookkeeping that legitimately differ between runs are left out.
# Usage: scripts/hash-outputs.sh [scratch-dir]   (uses whatever ffmpeg clipstream picks; pin it with FFMPEG_PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/clipstream-hash-XXXXXX)}
rm -rf "$out" && mkdir -p "$out"
run() { node bin/clipstream.js "$@" >/dev/null 2>"$out/last.err" || { echo "failed: clipstream $*" >&2; cat "$out/last.err" >&2; }; }
run extract --tar_path="fixtures/shards/shard-{000000..000001}.tar" --out_path="$out/extract"
run clips --sources=fixtures/sources/sources.csv --spans=fixtures/sources/spans.csv --out_dir="$out/clips" --shard_size=2
run faces --input_dir=fixtures/faces --output_dir="$out/faces" --make_lmdb
run segments --input=fixtures/segments/matte_move.mp4 --output="$out/segments/matted.mp4" --segment_seconds=2
cd "$out"
find . -type f ! -name '*.log' ! -name 'log_*.json' ! -name '*.jsonl' ! -name 'last.err' ! -name '*.lock' ! -path '*/.units/*' ! -path '*/.run*' -print0 |
  sort -z | xargs -0 sha256sum
