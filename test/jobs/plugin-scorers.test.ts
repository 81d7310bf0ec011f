/**
 * Plug-in ONNX scorers in `clips --scorer` and `score --scorer`: a real ONNX graph built here (the
 * mean of its [0, 1] input: the picture's brightness) on a source whose frames are flat greys with
 * a known level per frame, so the column's truth follows from the recipe and the frame choice
 * (K evenly spaced frames: the middles of K equal parts of the clip).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIP_COLUMNS } from '../../src/sinks/clip-table.js';
import { PIXEL_SCORES } from '../../src/features/clip-scores.js';
import { clips } from '../../src/jobs/clips.js';
import { score } from '../../src/jobs/score.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { GraphBuilder, int, ints } from '../../src/models/onnx-graph.js';
import { parseCsv } from '../../src/util/csv.js';
import { runCli } from '../helpers/run-cli.js';

const run = promisify(execFile);
let dir: string;
let model: string;
const quiet = { onWarning: () => {}, tablesEveryS: 0 };

/** The recipe: frame n is flat grey with luma 40 + 40 (n mod 5) (tv range), so RGB (Y − 16) · 255 / 219. */
const lumaOf = (n: number) => 40 + 40 * (n % 5);
const rgbOf = (n: number) => ((lumaOf(n) - 16) * 255) / 219;
/** K evenly spaced frames of a clip of `len` frames: the middle of each of K equal parts (written here from the contract). */
const picks = (len: number, k: number) => Array.from({ length: Math.min(k, len) }, (_, i) => Math.floor(((i + 0.5) * len) / Math.min(k, len)));
/** The brightness model's truth for the clip of source frames [start, end): its mean over the picked frames, on [0, 1]. */
const truth = (start: number, end: number, k: number) => {
  const p = picks(end - start, k);
  return p.reduce((a, i) => a + rgbOf(start + i) / 255, 0) / p.length;
};
/** Tolerance on [0, 1]: the codec and the tv-to-full range conversion move a flat grey by a few levels (the built-in brightness, on the same frames, is off by as much). */
const TOL = 0.015;
const SPANS: [number, number][] = [
  [0, 25],
  [26, 50],
  [51, 81],
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plugin-scorers-'));
  await mkdir(join(dir, 'in'));
  const graph = `color=c=black:s=320x180:r=25:d=4,format=yuv420p,geq=lum='40+40*mod(N\\,5)':cb=128:cr=128`;
  await run(ffmpegPath(), [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    graph,
    '-c:v',
    'libx264',
    '-crf',
    '4',
    '-pix_fmt',
    'yuv420p',
    join(dir, 'in', 'grey.mp4'),
  ]);
  await writeFile(join(dir, 'spans.csv'), `video_id,start_frame,end_frame\n${SPANS.map(([s, e]) => `grey,${s},${e}`).join('\n')}\n`);
  // The scorer: one image input of a size of its own (not the 160 px score frames), batched; output its mean.
  const g = new GraphBuilder('brightness');
  g.addInput('image', ['batch', 3, 48, 64]);
  g.addNode('ReduceMean', ['image'], 'score', { axes: ints([1, 2, 3]), keepdims: int(0) });
  g.addOutput('score', ['batch']);
  model = join(dir, 'bright.onnx');
  await writeFile(model, g.toBuffer());
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('plug-in scorers', () => {
  it('clips: {name}_score after the built-in scores equals the mean brightness of 3 spaced frames; --filter reads it', async () => {
    const out = join(dir, 'clips-out');
    const r = await clips({
      sources: join(dir, 'in'),
      spans: join(dir, 'spans.csv'),
      outputDir: out,
      scorers: [`bright=${model}:unit`],
      filter: 'bright_score>=0.4',
      ...quiet,
    });
    expect(r.clipsMade).toBe(3);
    const text = await readFile(join(out, 'clips.csv'), 'utf8');
    const header = text.split('\n')[0]!.split(',');
    expect(header.slice(0, CLIP_COLUMNS.length + PIXEL_SCORES.length + 2)).toEqual([...CLIP_COLUMNS, ...PIXEL_SCORES, 'fingerprint', 'bright_score']);
    const rows = new Map(parseCsv(text).map((x) => [x.clip_id!, x]));
    for (const [s, e] of SPANS) {
      const row = rows.get(`grey_${s}_${e}`)!;
      const want = truth(s, e, 3);
      expect(Math.abs(Number(row.bright_score) - want), `grey_${s}_${e}`).toBeLessThan(TOL);
      expect(row.kept).toBe(want >= 0.4 ? 'true' : 'false');
    }
    // The frame choice matters here: the last clip's 3 frames are all luma 80, far from its mean over all frames.
    expect(truth(51, 81, 3)).toBeLessThan(truth(51, 81, 30) - 0.1);
    expect(rows.get('grey_51_81')).toMatchObject({ kept: 'false', filter_reason: 'bright_score<0.4' });
  }, 120_000);

  it('clips again with one more scorer: the clips are not cut again, and the new column is filled from their files', async () => {
    const out = join(dir, 'clips-out');
    const r = await clips({
      sources: join(dir, 'in'),
      spans: join(dir, 'spans.csv'),
      outputDir: out,
      scorers: `bright=${model}:unit,raw=${model}:raw`,
      filter: 'bright_score>=0.4',
      ...quiet,
    });
    expect(r.clipsMade).toBe(0);
    const rows = parseCsv(await readFile(join(out, 'clips.csv'), 'utf8'));
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const [s, e] = [Number(row.start_frame), Number(row.end_frame)];
      expect(Math.abs(Number(row.raw_score) - 255 * truth(s, e, 3)), row.clip_id).toBeLessThan(255 * TOL);
    }
  }, 120_000);

  it('score (the CLI): the same column on the clips that exist, over --scorer_frames=5 frames; a comma list of two', () => {
    const out = join(dir, 'score-out');
    const second = `dim=${model}:raw`;
    // The clips the filter kept out are in filtered/, the one it kept in clips/.
    const r = runCli([
      'score',
      `--input=${join(dir, 'clips-out', 'filtered')}`,
      `--out_dir=${out}`,
      '--scores=none',
      `--scorer=bright=${model}:unit,${second}`,
      '--scorer_frames=5',
    ]);
    expect(r.code, r.stderr).toBe(0);
    return readFile(join(out, 'scores.csv'), 'utf8').then((text) => {
      expect(text.split('\n')[0]).toBe('input,clip,error,bright_score,dim_score');
      const rows = new Map(parseCsv(text).map((x) => [x.clip!, x]));
      expect([...rows.keys()].sort()).toEqual(['grey_26_50.mp4', 'grey_51_81.mp4']);
      for (const [s, e] of SPANS.slice(1)) {
        const row = rows.get(`grey_${s}_${e}.mp4`)!;
        expect(Math.abs(Number(row.bright_score) - truth(s, e, 5))).toBeLessThan(TOL);
        // raw: the same mean on 0–255.
        expect(Math.abs(Number(row.dim_score) - 255 * truth(s, e, 5))).toBeLessThan(255 * TOL);
      }
    });
  }, 120_000);

  it('score (the library): filters on the column', async () => {
    const out = join(dir, 'score-lib');
    const r = await score({
      input: [join(dir, 'clips-out', 'clips'), join(dir, 'clips-out', 'filtered')],
      outputDir: out,
      scores: 'none',
      scorers: `b=${model}:unit`,
      filter: 'b_score<=0.3',
      ...quiet,
    });
    const kept = new Map(r.rows.map((x) => [x.clip, x.kept]));
    for (const [s, e] of SPANS) expect(kept.get(`grey_${s}_${e}.mp4`)).toBe(truth(s, e, 3) <= 0.3);
  }, 120_000);

  it('a bad spec or a missing file is an error naming the option and the file', async () => {
    const missing = join(dir, 'nope.onnx');
    await expect(score({ input: join(dir, 'in'), outputDir: join(dir, 'x'), scorers: [`a=${missing}`], ...quiet })).rejects.toThrow(
      new RegExp(`options\\.scorers: scorer a: ${missing.replace(/[.]/g, '\\.')} is not a file`),
    );
    await expect(score({ input: join(dir, 'in'), outputDir: join(dir, 'x'), scorers: 'no-equals-sign', ...quiet })).rejects.toThrow(
      /options\.scorers: scorer 'no-equals-sign' is not name=path/,
    );
    const notModel = join(dir, 'spans.csv');
    await expect(score({ input: join(dir, 'in'), outputDir: join(dir, 'x'), scorers: `a=${notModel}`, ...quiet })).rejects.toThrow(
      /options\.scorers: scorer a: .*spans\.csv/,
    );
    const cli = runCli(['clips', `--sources=${join(dir, 'in')}`, `--spans=${join(dir, 'spans.csv')}`, `--out_dir=${join(dir, 'y')}`, `--scorer=a=${missing}`]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain(`--scorer: scorer a: ${missing} is not a file`);
  }, 120_000);
});
