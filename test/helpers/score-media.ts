/**
 * Clips whose scores are known from their recipe (ffmpeg lavfi sources), for the score tests:
 * what each is, and what its recipe says about its scores.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { makeSource } from './clip-sources.js';

const run = promisify(execFile);

/** name -> lavfi graph; all 320x180, 25 fps, 2 s (50 frames). */
export const SCORE_RECIPES = {
  /** Pure black: every frame black and frozen, no motion, no detail, no colour. */
  black: 'color=c=black:s=320x180:r=25:d=2',
  /** The first testsrc2 frame held for 50 frames: frozen ≈ 1, motion ≈ 0, but detailed and colourful. */
  frozen: 'testsrc2=s=320x180:r=25:d=2,trim=end_frame=1,loop=loop=49:size=1:start=0,setpts=N/25/TB',
  /** testsrc2 as it is: a small moving part on a still pattern. */
  moving: 'testsrc2=s=320x180:r=25:d=2',
  /** testsrc2 scrolled across the frame by 2 % of the width per frame: much motion. */
  panning: 'testsrc2=s=320x180:r=25:d=2,scroll=h=0.02',
  /** testsrc2 under a 6-pixel box blur: the same picture, less detail. */
  blurred: 'testsrc2=s=320x180:r=25:d=2,boxblur=6:2',
  /** testsrc2 without saturation: no colour. */
  grey: 'testsrc2=s=320x180:r=25:d=2,hue=s=0',
} as const;
export type ScoreRecipe = keyof typeof SCORE_RECIPES;

/** Makes `name`.mp4 in `dir` (x264 crf 16, yuv420p) and returns its path. */
export async function makeScoreClip(dir: string, name: ScoreRecipe): Promise<string> {
  const out = join(dir, `${name}.mp4`);
  await run(ffmpegPath(), ['-v', 'error', '-y', '-f', 'lavfi', '-i', SCORE_RECIPES[name], '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-crf', '16', out]);
  return out;
}

/** The numpy reference (scripts/clip_scores_reference.py) on files at w x h. */
export async function referenceScores(w: number, h: number, files: string[]): Promise<Record<string, Record<string, number>>> {
  const { stdout } = await run(
    '/usr/bin/python3',
    [fileURLToPath(new URL('../../scripts/clip_scores_reference.py', import.meta.url)), String(w), String(h), ...files],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout);
}

/**
 * A 100-frame source (320x180, 25 fps) of four 25-frame parts whose scores the recipe fixes:
 * frames 0-24 black, 25-49 one testsrc2 frame held (frozen), 50-74 testsrc2 (moving), 75-99
 * testsrc2 scrolling (panning).
 */
export async function makeScoreSource(out: string): Promise<void> {
  const part = (g: string, i: number) => `${g},trim=end_frame=25,setpts=PTS-STARTPTS,format=yuv420p[p${i}]`;
  const graph = [
    part('color=c=black:s=320x180:r=25', 0),
    part('testsrc2=s=320x180:r=25,trim=end_frame=1,loop=loop=30:size=1:start=0,setpts=N/25/TB', 1),
    part('testsrc2=s=320x180:r=25', 2),
    part('testsrc2=s=320x180:r=25,scroll=h=0.02', 3),
    '[p0][p1][p2][p3]concat=n=4:v=1:a=0[v]',
  ].join(';');
  await run(ffmpegPath(), ['-v', 'error', '-y', '-filter_complex', graph, '-map', '[v]', '-c:v', 'libx264', '-crf', '16', '-g', '30', out]);
}

/**
 * The clips job's scored input: `<dir>/in/` with the score source (parts.mp4, see makeScoreSource)
 * and a 3 s talk.mp4 with a 440 Hz tone, and `<dir>/spans.csv` cutting parts into its four parts
 * and talk's first 30 frames (five clips).
 */
export async function makeScoredClipsInput(dir: string): Promise<{ sources: string; spans: string }> {
  const sources = join(dir, 'in');
  await mkdir(sources);
  await makeScoreSource(join(sources, 'parts.mp4'));
  await makeSource(join(sources, 'talk.mp4'), { seconds: 3, fps: 10, audioHz: 440 });
  const spans = join(dir, 'spans.csv');
  await writeFile(spans, 'video_id,start_frame,end_frame\nparts,0,25\nparts,25,50\nparts,50,75\nparts,75,100\ntalk,0,30\n');
  return { sources, spans };
}
