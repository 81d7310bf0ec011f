/**
 * The clips job with scores: clips.csv columns from the cutting ffmpeg, a resumed run writing
 * the same table, scores off giving the table it always had (and the same clips), and a later run
 * with scores on scoring the clips that exist without cutting them again.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIP_COLUMNS } from '../../src/sinks/clip-table.js';
import { unitRecordPath } from '../../src/clips/table.js';
import { PIXEL_SCORES } from '../../src/features/clip-scores.js';
import { clips } from '../../src/jobs/clips.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeScoredClipsInput } from '../helpers/score-media.js';

let dir: string;
let sources: string;
let spans: string;
const quiet = { onWarning: () => {}, tablesEveryS: 0 };
const sha = async (f: string) =>
  createHash('sha256')
    .update(await readFile(f))
    .digest('hex');
const table = async (out: string) => parseCsv(await readFile(join(out, 'clips.csv'), 'utf8'));
const byId = async (out: string) => new Map((await table(out)).map((r) => [r.clip_id!, r]));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-scores-job-'));
  ({ sources, spans } = await makeScoredClipsInput(dir));
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('clips with scores', () => {
  const a = () => join(dir, 'a');
  it('clips.csv has a column per score after the usual ones, with the recipe values', async () => {
    const r = await clips({ sources, spans, outputDir: a(), ...quiet });
    expect(r.clipsMade).toBe(5);
    const text = await readFile(join(a(), 'clips.csv'), 'utf8');
    expect(text.split('\n')[0]).toBe([...CLIP_COLUMNS, ...PIXEL_SCORES, 'fingerprint'].join(','));
    const rows = await byId(a());
    expect(rows.get('parts_0_25')).toMatchObject({ black: '1', frozen: '1', motion: '0' });
    expect(Number(rows.get('parts_25_50')!.frozen)).toBeGreaterThanOrEqual(0.95);
    expect(Number(rows.get('parts_75_100')!.motion)).toBeGreaterThan(2 * Number(rows.get('parts_50_75')!.motion));
    expect(r.clips.find((c) => c.clip_id === 'parts_0_25')!.scores).toMatchObject({ black: 1 });
    // The audio path (video-only clip, then the remix) keeps the scores too.
    expect(Number(rows.get('talk_0_30')!.brightness)).toBeGreaterThan(0);
    expect((await readdir(join(a(), '.scores'))).sort()).toHaveLength(5);
  }, 120_000);

  it('a resumed run (one clip and its video record gone) writes the same clips.csv, cutting only that clip', async () => {
    const before = await readFile(join(a(), 'clips.csv'));
    await rm(join(a(), 'clips', 'parts_50_75.mp4'));
    await rm(unitRecordPath(a(), 'parts'));
    const r = await clips({ sources, spans, outputDir: a(), ...quiet });
    expect(r.clipsMade).toBe(1);
    expect((await readFile(join(a(), 'clips.csv'))).equals(before)).toBe(true);
  }, 120_000);

  it('scores off: the table it always had, and the same clip bytes', async () => {
    const b = join(dir, 'b');
    await clips({ sources, spans, outputDir: b, scores: 'none', ...quiet });
    const text = await readFile(join(b, 'clips.csv'), 'utf8');
    expect(text.split('\n')[0]).toBe(CLIP_COLUMNS.join(','));
    for (const f of await readdir(join(a(), 'clips'))) expect(await sha(join(b, 'clips', f)), f).toBe(await sha(join(a(), 'clips', f)));
  }, 120_000);

  it('scores turned on later: existing clips are scored from their files, none cut again', async () => {
    const b = join(dir, 'b');
    const r = await clips({ sources, spans, outputDir: b, scores: ['black', 'motion'], ...quiet });
    expect(r.clipsMade).toBe(0);
    const text = await readFile(join(b, 'clips.csv'), 'utf8');
    expect(text.split('\n')[0]).toBe([...CLIP_COLUMNS, 'motion', 'black', 'fingerprint'].join(','));
    const rows = await byId(b);
    expect(rows.get('parts_0_25')).toMatchObject({ black: '1', motion: '0' });
    // From the encoded clip, not the source: close to what the cut measured.
    const cutThen = await byId(a());
    expect(Math.abs(Number(rows.get('parts_75_100')!.motion) - Number(cutThen.get('parts_75_100')!.motion))).toBeLessThan(0.005);
  }, 120_000);

  it('a bad --scores name is an error naming it', async () => {
    await expect(clips({ sources, spans, outputDir: join(dir, 'c'), scores: 'motion,blurriness', ...quiet })).rejects.toThrow(/unknown score 'blurriness'/);
  });
});
