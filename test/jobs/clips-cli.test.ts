/**
 * Issue 9, items 19 and 24 (clips): bad paths and values give a one-line error naming the
 * CLI flag and exit 2; spans for videos that are not among the sources are reported.
 * Runs the real binary (dist/, built by the global setup or `npx tsc -p tsconfig.build.json`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClipsFlags } from '../../src/cli/clips-command.js';
import { parseCsv } from '../../src/util/csv.js';
import { clips } from '../../src/jobs/clips.js';
import { makeSource } from '../helpers/clip-sources.js';
import { runCli } from '../helpers/run-cli.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-cli-'));
  await makeSource(join(dir, 'a.mp4'), { seconds: 3, fps: 10 });
  await writeFile(join(dir, 'sources.csv'), 'video_id,path\na,a.mp4\n');
  await writeFile(join(dir, 'a-file'), 'not a folder');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Exit 2 and an error that is one line (plus the usual usage hint), no stack. */
function expectOptionError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toMatch(pattern);
  expect(lines.slice(1)).toEqual(["Run 'clipstream clips --help' for usage."]);
  expect(r.stderr).not.toMatch(/\n\s+at |EEXIST|options\./);
}

describe('clipstream clips: bad paths and values', () => {
  it('--out_dir naming an existing file', () => {
    const r = runCli(['clips', `--sources=${join(dir, 'sources.csv')}`, `--out_dir=${join(dir, 'a-file')}`, '--clip_len_s=1']);
    expectOptionError(r, /^clipstream clips: error: --out_dir '.*a-file' exists and is not a folder$/);
  });

  it('--past_end=foo is rejected with --clip_len_s too', () => {
    const r = runCli(['clips', `--sources=${join(dir, 'sources.csv')}`, `--out_dir=${join(dir, 'o1')}`, '--clip_len_s=1', '--past_end=foo']);
    expectOptionError(r, /^clipstream clips: error: Expected one of 'clip', 'drop' for --past_end but received 'foo'$/);
  });

  it.each([
    [['--clip_len_s=0'], /^clipstream clips: error: Expected number greater than 0 for --clip_len_s but received 0$/],
    [['--clip_len_s=1', '--num_processes=0'], /^clipstream clips: error: Expected integer between 1 and 256 for --num_processes but received 0$/],
    [
      ['--clip_len_s=1', '--clip_duration=2'],
      /^clipstream clips: error: Expected exactly one of --spans, --clip_len_s, --clip_duration or --split but received 2$/,
    ],
    [['--clip_len_s=1', '--tables_every_s=-1'], /^clipstream clips: error: Expected number of at least 0 for --tables_every_s but received -1$/],
  ])('%j names the flag', (extra, pattern) => {
    const r = runCli(['clips', `--sources=${join(dir, 'sources.csv')}`, `--out_dir=${join(dir, 'o2')}`, ...extra]);
    expectOptionError(r, pattern);
  });

  it('withClipsFlags leaves unknown names alone', () => {
    expect(withClipsFlags('Expected boolean for options.nope but received 1 of type number')).toBe('Expected boolean for options.nope but received 1');
  });
});

describe('spans for videos that are not among the sources', () => {
  it('are listed in span_issues.csv and counted in the summary; the others are cut', async () => {
    await writeFile(join(dir, 'spans.csv'), 'video_id,start_frame,end_frame\na,0,10\nghost,0,10\nghost,5,20\n');
    const out = join(dir, 'o3');
    const r = runCli([
      'clips',
      `--sources=${join(dir, 'sources.csv')}`,
      `--out_dir=${out}`,
      `--spans=${join(dir, 'spans.csv')}`,
      '--preset=ultrafast',
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const issues = parseCsv(await readFile(join(out, 'span_issues.csv'), 'utf8'));
    expect(issues).toEqual([
      { video_id: 'ghost', span: 'frames 0-10', action: 'dropped', reason: 'video_id ghost is not among the sources' },
      { video_id: 'ghost', span: 'frames 5-20', action: 'dropped', reason: 'video_id ghost is not among the sources' },
    ]);
    expect(r.stderr).toMatch(
      /1 clips \(1 made now, 0 already there\) .* 0 span\(s\) clipped, 2 dropped \(2 for video_ids not among --sources\), 0 clip\(s\) failed/,
    );
    expect(parseCsv(await readFile(join(out, 'clips.csv'), 'utf8')).map((c) => c.clip_id)).toEqual(['a_0_10']);
  }, 60_000);

  it("with --rank/--world, a span of a video in another rank's share is not reported as lost", async () => {
    await makeSource(join(dir, 'b.mp4'), { seconds: 2, fps: 10 });
    await writeFile(join(dir, 'ab.csv'), 'video_id,path\na,a.mp4\nb,b.mp4\n');
    await writeFile(join(dir, 'ab-spans.csv'), 'video_id,start_frame,end_frame\na,0,10\nb,0,10\nghost,0,10\n');
    const base = { sources: join(dir, 'ab.csv'), spans: join(dir, 'ab-spans.csv'), outputDir: join(dir, 'o5'), preset: 'ultrafast', onWarning: () => {} };
    const ranks = await Promise.all([0, 1].map((rank) => clips({ ...base, partition: { rank, world: 2, from: 'options' } })));
    expect(ranks.map((r) => r.clips.length)).toEqual([1, 1]);
    for (const r of ranks) expect(r.issues.map((i) => i.videoId)).toEqual(['ghost']);
  }, 60_000);

  it('span_issues.csv is written (empty) when nothing was lost', async () => {
    const out = join(dir, 'o4');
    const r = runCli(['clips', `--sources=${join(dir, 'sources.csv')}`, `--out_dir=${out}`, '--clip_len_s=1.5', '--preset=ultrafast', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(out, 'span_issues.csv'), 'utf8')).toBe('video_id,span,action,reason\n');
  }, 60_000);
});
