#!/usr/bin/env bash
# Runs every job on the shipped fixtures into a scratch folder and prints one sha256 per output file, so a change
# can be checked to leave outputs it does not mean to touch byte-identical: run it before and after, diff the lists.
# Run logs and bookkeeping that holds times or inode numbers (.tables.json, done.json, the LMDB export manifest) are left out.
# The fixtures are copied into the scratch folder with a fixed mtime, so that paths and mtimes recorded in the outputs
# are the same for two checkouts: pass the same scratch folder to both runs.
# Usage: scripts/hash-outputs.sh [scratch-dir]   (uses whatever ffmpeg clipstream picks; pin it with FFMPEG_PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/clipstream-hash-XXXXXX)}
rm -rf "$out" && mkdir -p "$out/in" "$out/res"
cp -r fixtures/shards fixtures/sources fixtures/clips fixtures/faces fixtures/segments "$out/in/"
find "$out/in" -exec touch -h -d '2020-01-01 00:00:00' {} +
in="$out/in" res="$out/res"
run() { node bin/clipstream.js "$@" >/dev/null 2>"$out/last.err" || { echo "failed: clipstream $*" >&2; cat "$out/last.err" >&2; }; }
run extract --tar_path="$in/shards/shard-{000000..000001}.tar" --out_path="$res/extract"
run clips --sources="$in/sources/sources.csv" --spans="$in/sources/spans.csv" --out_dir="$res/clips" --shard_size=2
run faces --input_dir="$in/faces" --output_dir="$res/faces" --make_lmdb
run segments --input="$in/segments/matte_move.mp4" --output="$res/segments/matted.mp4" --segment_seconds=2
cd "$res"
find . -type f ! -name '*.log' ! -name 'lock.mdb' ! -name 'clipstream-export.json' ! -name '.tables.json' ! -name 'done.json' ! -name 'log_*.json' ! -name '*.jsonl' ! -name 'last.err' ! -name '*.lock' ! -path '*/.units/*' ! -path '*/.run*' -print0 |
  sort -z | xargs -0 sha256sum
