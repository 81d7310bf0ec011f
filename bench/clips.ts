/**
 * One ffmpeg per video (decode once, encode every clip) against one ffmpeg per clip.
 *
 *   npx tsx bench/clips.ts [--seconds=60] [--size=960x540] [--fps=25] [--clips=30] [--len=2] [--gop=250] [--preset=ultrafast] [--threads=2] [--repeat=3]
 *
 * The source is made with the bundled ffmpeg; clips are spread over the whole video
 * (fixed stride), so the per-clip side seeks (input -ss, frame-accurate) instead of
 * decoding from the start, which is the fair comparison. Prints medians and the ratio.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedStride } from '../src/clips/plan.js';
import { probeVideo } from '../src/media/probe.js';
import { transcodeClips, type TranscodeOptions } from '../src/clips/transcode.js';
import { makeSource } from '../test/helpers/clip-sources.js';

function arg(name: string, def: number | string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : String(def);
}

const seconds = Number(arg('seconds', 60));
const size = arg('size', '960x540');
const fps = Number(arg('fps', 25));
const nClips = Number(arg('clips', 30));
const repeat = Number(arg('repeat', 3));
const len = Number(arg('len', 2));
const gop = Number(arg('gop', 250));
const preset = arg('preset', 'ultrafast');
const threads = Number(arg('threads', 2));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), 'clips-bench-'));
try {
  const src = join(dir, 'src.mp4');
  await makeSource(src, { seconds, fps, size, gop });
  const info = await probeVideo(src);
  const stride = seconds / nClips;
  const clips = fixedStride('src', info, { clipLenS: Math.min(len, stride), clipStrideS: stride }).clips;
  const frames = clips.reduce((n, c) => n + c.endFrame - c.startFrame, 0);
  const base: TranscodeOptions = { encoder: 'libx264', threads, crf: 23, preset };
  const variants: [string, TranscodeOptions][] = [
    ['one-pass (1 ffmpeg, all clips)', { ...base, mode: 'one-pass', numClipsPerChunk: 1000 }],
    ['per-clip (1 ffmpeg per clip, 1 at a time)', { ...base, mode: 'per-clip', encodeBatchSize: 1 }],
    ['per-clip (1 ffmpeg per clip, 2 at a time)', { ...base, mode: 'per-clip', encodeBatchSize: 2 }],
  ];
  console.log(
    `source ${seconds} s ${size} @ ${fps} fps (${info.numFrames} frames); ${clips.length} clips of ${Math.min(len, stride)} s, ${frames} frames; libx264 ${preset}, source GOP ${gop}, ${threads} thread(s) per encoder; median of ${repeat}`,
  );
  const results: number[] = [];
  for (const [name, opts] of variants) {
    const times: number[] = [];
    for (let r = 0; r < repeat; r++) {
      const out = join(dir, `out-${r}-${results.length}`);
      const t = performance.now();
      await transcodeClips(
        info,
        'src',
        clips.map((clip) => ({ clip, out: join(out, `${clip.stem}.mp4`) })),
        opts,
      );
      times.push((performance.now() - t) / 1000);
      await rm(out, { recursive: true, force: true });
    }
    const m = median(times);
    results.push(m);
    console.log(`${name.padEnd(44)} ${m.toFixed(2)} s  (${(frames / m).toFixed(0)} clip frames/s)`);
  }
  console.log(
    `per-clip / one-pass time ratio: ${(results[1]! / results[0]!).toFixed(2)}x sequential, ${(results[2]! / results[0]!).toFixed(2)}x with 2 per-clip processes`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
