#!/usr/bin/env bash
# Makes fixtures/edited/edited.mp4: the "edited video" the curation example and test/jobs/curation.test.ts
# run on. 15 s, 320x180, 25 fps, AAC audio; five 3-second shots joined by hard cuts, so its truth is
# the recipe: cuts at frames 75, 150, 225 and 300.
#   shot 0  frames   0-75   mandelbrot zoom                  (keep)
#   shot 1  frames  75-150  testsrc2, which draws its own text (text_area > 0)
#   shot 2  frames 150-225  a still title card with a caption  (frozen = 1, text_area > 0)
#   shot 3  frames 225-300  game of life                      (keep)
#   shot 4  frames 300-375  the same frames as shot 0          (a near-duplicate of shot 0)
# Usage: scripts/make-edited-fixture.sh [ffmpeg]   (the committed file was made with Debian's ffmpeg 5.1)
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg=${1:-ffmpeg}
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
mkdir -p fixtures/edited
"$ffmpeg" -v error -y \
  -f lavfi -i "mandelbrot=s=320x180:r=25,trim=duration=3" \
  -f lavfi -i "testsrc2=s=320x180:r=25,trim=duration=3" \
  -f lavfi -i "color=c=0x284878:s=320x180:r=25,trim=duration=3,drawtext=fontfile=$font:text='CHAPTER ONE':fontsize=36:fontcolor=white:x=(w-text_w)/2:y=(h-text_h)/2" \
  -f lavfi -i "life=s=320x180:r=25:mold=10:ratio=0.5:seed=7,scale=320:180,format=yuv420p,trim=duration=3" \
  -f lavfi -i "sine=frequency=330:sample_rate=48000:duration=15" \
  -filter_complex "[0:v]format=yuv420p,setsar=1,split[a][e];[1:v]format=yuv420p,setsar=1[b];[2:v]format=yuv420p,setsar=1[c];[3:v]format=yuv420p,setsar=1[d];[a][b][c][d][e]concat=n=5:v=1:a=0[v]" \
  -map "[v]" -map 4:a -c:v libx264 -crf 36 -preset slow -g 75 -pix_fmt yuv420p -c:a aac -b:a 32k -movflags +faststart \
  fixtures/edited/edited.mp4
