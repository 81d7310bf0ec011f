/**
 * Issue 9, items 3 and 4: clips keep audio in sync when the streams start apart, and take
 * times from the frames' timestamps on variable-frame-rate sources. Everything is checked
 * against PyAV's reading of the source and of each clip (scripts/media_truth.py).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/util/csv.js';
import { clips } from '../../src/jobs/clips.js';
import { beepOffsets, makeFlashBeep, mediaTruth, type MediaTruth } from '../helpers/sync-sources.js';

let dir: string;
const truth = new Map<string, MediaTruth>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-sync-'));
  await Promise.all([
    makeFlashBeep(join(dir, 'alate.mp4'), { seconds: 6, audioDelayS: 0.4 }),
    makeFlashBeep(join(dir, 'vlate.mp4'), { seconds: 6, videoDelayS: 0.5 }),
    makeFlashBeep(join(dir, 'vfr.mp4'), { seconds: 6, vfr: true }),
  ]);
  for (const t of await mediaTruth(join(dir, 'alate.mp4'), join(dir, 'vlate.mp4'), join(dir, 'vfr.mp4'))) truth.set(t.file, t);
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

const run = (out: string, extra: Record<string, unknown>) =>
  clips({ sources: join(dir, 'sources.csv'), outputDir: join(dir, out), crf: 0, preset: 'ultrafast', onWarning: () => {}, ...extra });

/** The clip, read back: frames, pixels and beeps all where the source has them. */
async function expectClipsMatch(out: string, source: MediaTruth) {
  const rows = parseCsv(await readFile(join(dir, out, 'clips.csv'), 'utf8'));
  expect(rows.length).toBeGreaterThan(0);
  const files = await mediaTruth(...rows.map((r) => join(dir, out, 'clips', r.filename!)));
  const srcOffsets = beepOffsets(source);
  const end = (e: number) => (e < source.frames ? source.times[e]! : source.times[e - 1]! + (source.times[e - 1]! - source.times[e - 2]!));
  let checkedBeeps = 0;
  rows.forEach((r, k) => {
    const clip = files[k]!;
    const s = Number(r.start_frame);
    const e = Number(r.end_frame);
    expect(clip.frames, r.clip_id).toBe(e - s);
    expect(Number(r.num_frames), r.clip_id).toBe(clip.frames);
    expect(clip.yhash, r.clip_id).toEqual(source.yhash.slice(s, e));
    // Times in the table are the frames' own times, from the first frame.
    expect(Number(r.start_s), r.clip_id).toBeCloseTo(source.times[s]!, 4);
    expect(Number(r.end_s), r.clip_id).toBeCloseTo(end(e), 4);
    // Audio as long as the video, and each beep on its flash as in the source.
    expect(Math.abs(clip.audio!.duration - (Number(r.end_s) - Number(r.start_s))), r.clip_id).toBeLessThan(0.03);
    const offsets = beepOffsets(clip);
    clip.flashes.forEach((f, i) => {
      const want = srcOffsets[source.flashes.indexOf(s + f)]!;
      if (Math.abs(want) > 0.1) return; // no beep at this flash in the source either
      expect(Math.abs(offsets[i]! - want), `${r.clip_id} flash at frame ${s + f}`).toBeLessThan(0.01);
      expect(Math.abs(offsets[i]!), `${r.clip_id} flash at frame ${s + f}`).toBeLessThan(0.03);
      checkedBeeps++;
    });
  });
  expect(checkedBeeps).toBeGreaterThanOrEqual(3);
  return rows;
}

describe('audio in sync when the streams do not start together', () => {
  it.each([
    ['alate', 'audio starts 0.4 s after the video'],
    ['vlate', 'video starts 0.5 s after the audio'],
  ])(
    '%s (%s): a beep at each flash in every clip',
    async (name) => {
      await writeFile(join(dir, 'sources.csv'), `video_id,path\n${name},${name}.mp4\n`);
      // A chunk per clip: each seeks to its first frame, audio included.
      const report = await run(`out-${name}`, { clipLenS: 1.6, numClipsPerChunk: 1 });
      expect(report.videos[0]!.failed).toBe(false);
      const rows = await expectClipsMatch(`out-${name}`, truth.get(join(dir, `${name}.mp4`))!);
      expect(rows.map((r) => r.clip_id)).toEqual([`${name}_0_40`, `${name}_40_80`, `${name}_80_120`, `${name}_120_150`]);
    },
    60_000,
  );
});

describe('variable frame rate: times from the frames, never frame / fps', () => {
  it.each([
    ['one-pass', { mode: 'one-pass' }],
    ['one-pass, a chunk per clip (each seeks)', { mode: 'one-pass', numClipsPerChunk: 1 }],
    ['per-clip', { mode: 'per-clip' }],
  ] as const)(
    '%s: tables, shard segments, pixels and audio agree with the frames',
    async (name, opts) => {
      const src = truth.get(join(dir, 'vfr.mp4'))!;
      expect(src.frames).toBe(125); // 25 + 50 + 50 frames at 25, 50 and 12.5 frames/s
      await writeFile(join(dir, 'sources.csv'), 'video_id,path\nvfr,vfr.mp4\n');
      await writeFile(join(dir, 'spans.csv'), 'video_id,start_frame,end_frame\nvfr,20,80\nvfr,0,30\nvfr,90,125\n');
      const out = `out-vfr-${name.replace(/\W+/g, '-')}`;
      const report = await run(out, { spans: join(dir, 'spans.csv'), ...opts, shardSize: 10 });
      const rows = await expectClipsMatch(out, src);
      expect(rows.map((r) => r.clip_id)).toEqual(['vfr_0_30', 'vfr_20_80', 'vfr_90_125']);
      const json = JSON.parse(await readFile(report.shards[0]!.json, 'utf8')) as { segment: [number, number] }[];
      expect(json.map((j) => j.segment)).toEqual(rows.map((r) => [Number(r.start_s), Number(r.end_s)]));
    },
    60_000,
  );

  it('spans in seconds pick the frames nearest to those times', async () => {
    const src = truth.get(join(dir, 'vfr.mp4'))!;
    await writeFile(join(dir, 'sources.csv'), 'video_id,path\nvfr,vfr.mp4\n');
    await writeFile(join(dir, 'spans-s.csv'), 'video_id,start_s,end_s\nvfr,1.0,2.5\n');
    await run('out-vfr-seconds', { spans: join(dir, 'spans-s.csv') });
    const nearest = (x: number) => src.times.reduce((b, t, i) => (Math.abs(t - x) < Math.abs(src.times[b]! - x) ? i : b), 0);
    const [row] = parseCsv(await readFile(join(dir, 'out-vfr-seconds', 'clips.csv'), 'utf8'));
    expect([Number(row!.start_frame), Number(row!.end_frame)]).toEqual([nearest(1.0), nearest(2.5)]);
  }, 60_000);
});
