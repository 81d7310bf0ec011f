/**
 * Filters end to end: kept / filter_reason in clips.csv, the filtered/ folder, the counts in the
 * report and the run log, shards of kept clips only; a re-run with another filter re-decides from
 * the kept scores without any encode (an ffmpeg wrapper logs every call); `filtered: 'skip'`
 * writes no file for clips kept out, and does not cut those a rule on the plan keeps out.
 */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clips } from '../../src/jobs/clips.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeSource } from '../helpers/clip-sources.js';
import { makeScoreSource } from '../helpers/score-media.js';

let dir: string;
let sources: string;
let spans: string;
let ffmpegLog: string;
let ffmpegPath: string;
const quiet = { onWarning: () => {}, tablesEveryS: 0 };
const rows = async (out: string) => new Map(parseCsv(await readFile(join(out, 'clips.csv'), 'utf8')).map((r) => [r.clip_id!, r]));
const files = async (d: string) => (await readdir(d).catch(() => [] as string[])).filter((f) => f.endsWith('.mp4')).sort();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-filter-'));
  await mkdir(join(dir, 'in'));
  await makeScoreSource(join(dir, 'in', 'parts.mp4'));
  await makeSource(join(dir, 'in', 'talk.mp4'), { seconds: 3, fps: 10, audioHz: 440 });
  sources = join(dir, 'in');
  spans = join(dir, 'spans.csv');
  // parts: black, frozen, moving, panning (1 s each); talk: 0.8 s.
  await writeFile(spans, 'video_id,start_frame,end_frame\nparts,0,25\nparts,25,50\nparts,50,75\nparts,75,100\ntalk,0,8\n');
  ffmpegLog = join(dir, 'ffmpeg.log');
  ffmpegPath = join(dir, 'ffmpeg-logged.sh');
  await writeFile(ffmpegPath, `#!/bin/sh\necho "$*" >> '${ffmpegLog}'\nexec ${process.env.FFMPEG_PATH ?? 'ffmpeg'} "$@"\n`);
  await chmod(ffmpegPath, 0o755);
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("filtered: 'keep'", () => {
  const out = () => join(dir, 'keep');

  it('every clip has kept and filter_reason; kept-out files go to filtered/; counts in the report and the run log; shards hold kept clips', async () => {
    const r = await clips({ sources, spans, outputDir: out(), filter: 'motion>=0.005,black<=0.5,duration>=1', shardSize: 10, ...quiet });
    const t = await rows(out());
    expect(t.get('parts_0_25')).toMatchObject({ kept: 'false', filter_reason: 'motion<0.005;black>0.5' });
    expect(t.get('parts_25_50')).toMatchObject({ kept: 'false', filter_reason: 'motion<0.005' });
    expect(t.get('parts_50_75')).toMatchObject({ kept: 'true', filter_reason: '' });
    expect(t.get('parts_75_100')).toMatchObject({ kept: 'true', filter_reason: '' });
    expect(t.get('talk_0_8')!.kept).toBe('false');
    expect(t.get('talk_0_8')!.filter_reason).toContain('duration<1');
    expect(await files(join(out(), 'clips'))).toEqual(['parts_50_75.mp4', 'parts_75_100.mp4']);
    expect(await files(join(out(), 'filtered'))).toEqual(['parts_0_25.mp4', 'parts_25_50.mp4', 'talk_0_8.mp4']);
    // talk's motion is not fixed by its recipe: it may fail that rule too.
    const talkMotion = t.get('talk_0_8')!.filter_reason!.includes('motion') ? 1 : 0;
    expect(r.filtered).toEqual({ 'motion<0.005': 2 + talkMotion, 'black>0.5': 1, 'duration<1': 1 });
    const shard = JSON.parse(await readFile(join(out(), 'shards', 'shard-000000.json'), 'utf8')) as { filename: string }[];
    expect(shard.map((e) => e.filename)).toEqual(['parts_50_75.mp4', 'parts_75_100.mp4']);
    const log = JSON.parse(await readFile(join(out(), (await readdir(out())).find((f) => f.startsWith('log_'))!), 'utf8'));
    const parts = (log.results ?? log.units ?? []).find((u: { unit: string }) => u.unit === 'parts');
    expect(parts.filtered).toEqual({ 'motion<0.005': 2, 'black>0.5': 1 });
    const videos = parseCsv(await readFile(join(out(), 'videos.csv'), 'utf8'));
    expect(videos.find((v) => v.video_id === 'parts')!.num_clips).toBe('2');
  }, 120_000);

  it('another filter on the finished output re-decides from the kept scores, and no ffmpeg encodes', async () => {
    await rm(ffmpegLog, { force: true });
    const r = await clips({ sources, spans, outputDir: out(), filter: 'motion>=0.05', ffmpegPath, ...quiet });
    expect(r.clipsMade).toBe(0);
    const calls = (await readFile(ffmpegLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    // The wrapper ran (probes, frame counts), and never to encode.
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.filter((c) => c.includes('libx264'))).toEqual([]);
    const t = await rows(out());
    expect(t.get('parts_75_100')).toMatchObject({ kept: 'true' });
    expect(t.get('parts_50_75')).toMatchObject({ kept: 'false', filter_reason: 'motion<0.05' });
    for (const [id, row] of t) {
      const where = row.kept === 'true' ? 'clips' : 'filtered';
      expect(await files(join(out(), where)), id).toContain(`${id}.mp4`);
    }
    // No filter at all: every clip back in clips/, the table as without filters.
    const plain = await clips({ sources, spans, outputDir: out(), ...quiet });
    expect(plain.clipsMade).toBe(0);
    expect(await files(join(out(), 'filtered'))).toEqual([]);
    expect((await readFile(join(out(), 'clips.csv'), 'utf8')).split('\n')[0]).not.toContain('kept');
  }, 120_000);
});

describe("filtered: 'skip'", () => {
  const out = () => join(dir, 'skip');

  it('a clip a rule on the plan keeps out is not cut; one kept out on its scores is cut, scored and not kept; re-runs make nothing', async () => {
    await rm(ffmpegLog, { force: true });
    const r = await clips({ sources, spans, outputDir: out(), filter: 'duration>=1,black<=0.5', filtered: 'skip', ffmpegPath, ...quiet });
    expect(r.clipsMade).toBe(4);
    const calls = (await readFile(ffmpegLog, 'utf8')).split('\n').filter(Boolean);
    // talk is probed but never cut.
    expect(calls.filter((c) => c.includes('talk') && c.includes('libx264'))).toEqual([]);
    const t = await rows(out());
    expect(t.get('talk_0_8')).toMatchObject({ kept: 'false', filter_reason: 'duration<1', filename: '', size_bytes: '0' });
    expect(t.get('parts_0_25')).toMatchObject({ kept: 'false', filter_reason: 'black>0.5', black: '1' });
    expect(await files(join(out(), 'clips'))).toEqual(['parts_25_50.mp4', 'parts_50_75.mp4', 'parts_75_100.mp4']);
    expect(await files(join(out(), 'filtered'))).toEqual([]);
    const before = await readFile(join(out(), 'clips.csv'));
    await rm(ffmpegLog, { force: true });
    const again = await clips({ sources, spans, outputDir: out(), filter: 'duration>=1,black<=0.5', filtered: 'skip', ffmpegPath, ...quiet });
    expect(again.clipsMade).toBe(0);
    expect((await readFile(ffmpegLog, 'utf8').catch(() => '')).includes('libx264')).toBe(false);
    expect((await readFile(join(out(), 'clips.csv'))).equals(before)).toBe(true);
  }, 120_000);

  it('a bad filter is an error naming the term; a filter on text_area needs text_area among the scores', async () => {
    await expect(clips({ sources, spans, outputDir: join(dir, 'bad'), filter: 'motion>=0.1,blur<2', ...quiet })).rejects.toThrow(
      /filter term 'blur<2' names 'blur'/,
    );
    await expect(clips({ sources, spans, outputDir: join(dir, 'bad'), filter: 'text_area<=0.1', scores: 'motion', ...quiet })).rejects.toThrow(
      /names 'text_area'/,
    );
    await expect(clips({ sources, spans, outputDir: join(dir, 'bad'), filter: 'motion>=0.1', scores: 'none', ...quiet })).rejects.toThrow(/names 'motion'/);
  });
});
