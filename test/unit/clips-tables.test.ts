/**
 * The clips tables' rebuild policy (src/clips/table.ts `update`): a rebuild costs O(list), so
 * after a video it runs only when it completes the list or the throttle allows; the start
 * writes the tables only when missing or for another list. Synthetic records, no ffmpeg.
 */
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTables, pendingRow, TABLES_STAMP, unitRecordPath, type UnitRecord } from '../../src/clips/table.js';

/** A video's record as the record sink writes it (through the folder's record store). */
const writeUnitRecord = (out: string, r: UnitRecord) => new ClipTables(out, []).records.write(r.video_id, r);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-tables-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const IDS = ['a', 'b', 'c', 'd'];
const record = (id: string): UnitRecord => ({
  video_id: id,
  row: { video_id: id, downloaded: true, failed: false, error: '', path: `${id}.mp4`, duration: 4, num_clips: 1 },
  clips: [
    {
      clip_id: `${id}_0_10`,
      filename: `${id}_0_10.mp4`,
      video_id: id,
      source: `${id}.mp4`,
      start_frame: 0,
      end_frame: 10,
      num_frames: 10,
      start_s: 0,
      end_s: 1,
      fps: 10,
      width: 32,
      height: 32,
      size_bytes: 100,
      video_codec: 'h264',
      audio_codec: '',
      bit_rate: 800,
    },
  ],
  issues: [],
});
const tablesOf = async (out: string) =>
  Object.fromEntries(await Promise.all(['videos.csv', 'clips.csv', 'span_issues.csv'].map(async (f) => [f, await readFile(join(out, f), 'utf8')])));
/** An output folder as the job makes it before its first update. */
async function fresh(name: string): Promise<string> {
  const out = join(dir, name);
  await mkdir(join(out, '.units'), { recursive: true });
  return out;
}
const mtime = async (f: string) => (await stat(f)).mtimeMs;
/** Tables that an untouched folder with every record would have: one unthrottled rebuild. */
async function reference(name: string): Promise<Record<string, string>> {
  const out = await fresh(name);
  for (const id of IDS) await writeUnitRecord(out, record(id));
  await new ClipTables(out, IDS).rebuild();
  return tablesOf(out);
}

describe('ClipTables.update', () => {
  it('start writes the tables only when missing or for another list; a throttled video leaves them; the completing one rebuilds', async () => {
    const want = await reference('ref');
    const out = await fresh('policy');
    const t = new ClipTables(out, IDS, [], undefined, { everyS: 3600 });
    expect((await t.update('start')).rebuilt).toBe(true);
    const planned = await tablesOf(out);
    expect(planned['videos.csv']).toContain('a,false,false');
    // A second run's start (another process: a new ClipTables) finds them there and leaves them.
    const videos = join(out, 'videos.csv');
    await utimes(videos, 1, 1);
    expect((await new ClipTables(out, IDS, [], undefined, { everyS: 3600 }).update('start')).rebuilt).toBe(false);
    expect(await mtime(videos)).toBe(1000);
    // For another list (here: fewer videos) they are rewritten.
    expect((await new ClipTables(out, IDS.slice(0, 3), [], undefined, { everyS: 3600 }).update('start')).rebuilt).toBe(true);
    expect((await t.update('start')).rebuilt).toBe(true);
    await utimes(videos, 1, 1);

    for (const id of ['a', 'b', 'c']) {
      await writeUnitRecord(out, record(id));
      const u = await t.update('video');
      expect([u.rebuilt, u.complete], id).toEqual([false, false]);
    }
    expect(await mtime(videos)).toBe(1000);
    expect(await tablesOf(out)).toEqual(planned);
    // The end of a share run (not the whole list) is throttled too; of a whole-list run it is not.
    expect((await t.update('end')).rebuilt).toBe(false);
    expect((await new ClipTables(out, IDS, [], undefined, { everyS: 3600, wholeList: true }).update('end')).rebuilt).toBe(true);
    await writeUnitRecord(out, record('d'));
    const last = await t.update('video');
    expect([last.rebuilt, last.complete]).toEqual([true, true]);
    expect(await tablesOf(out)).toEqual(want);
    expect(t.stats).toMatchObject({ rebuilds: 3, skipped: 4 });
    // Its own end, with nothing recorded since, does not rebuild again, not even for a whole-list run.
    expect((await t.update('end')).rebuilt).toBe(false);
    const whole = new ClipTables(out, IDS, [], undefined, { everyS: 3600, wholeList: true });
    await writeUnitRecord(out, record('a'));
    expect((await whole.update('video')).rebuilt).toBe(true);
    expect((await whole.update('end')).rebuilt).toBe(false);
    expect(await tablesOf(out)).toEqual(want);
  });

  it('the throttle lets a rebuild through once the last one is older than everyS', async () => {
    const out = await fresh('age');
    const t = new ClipTables(out, IDS, [], undefined, { everyS: 60 });
    await t.update('start');
    await writeUnitRecord(out, record('a'));
    expect((await t.update('video')).rebuilt).toBe(false);
    const stamp = JSON.parse(await readFile(join(out, TABLES_STAMP), 'utf8'));
    await writeFile(join(out, TABLES_STAMP), JSON.stringify({ ...stamp, at: Date.now() - 61_000 }));
    expect((await t.update('video')).rebuilt).toBe(true);
    expect((await tablesOf(out))['videos.csv']).toMatch(/\na,true,false,,a\.mp4,4,1\n/);
    // k × the last rebuild's duration counts too: a rebuild said to take 10 s holds the next for 100 s.
    await writeFile(join(out, TABLES_STAMP), JSON.stringify({ ...stamp, ms: 10_000, at: Date.now() - 61_000 }));
    await writeUnitRecord(out, record('b'));
    expect((await t.update('video')).rebuilt).toBe(false);
    // everyS 0: after every video.
    expect((await new ClipTables(out, IDS, [], undefined, { everyS: 0 }).update('video')).rebuilt).toBe(true);
  });

  it('the completeness check is a readdir: a record file of a listed video counts, a temp or lock file does not', async () => {
    const out = await fresh('names');
    const ids = ['x.y', 'x-y', 'a*b'];
    const t = new ClipTables(out, ids);
    for (const id of ids.slice(0, 2)) await writeUnitRecord(out, record(id));
    await writeFile(`${unitRecordPath(out, 'a*b')}.lock`, '{}');
    await writeFile(join(out, '.units', '.a%2Ab.json.tmp-1-00000000'), '{}');
    expect(await t.isComplete()).toBe(false);
    await writeUnitRecord(out, record('a*b'));
    expect(await t.isComplete()).toBe(true);
  });

  it('two runs recording the last two videos at once: whichever takes the lock second sees both and leaves final tables', async () => {
    const want = await reference('ref2');
    for (let round = 0; round < 5; round++) {
      const out = await fresh(`race-${round}`);
      const first = new ClipTables(out, IDS, [], undefined, { everyS: 3600 });
      await first.update('start');
      for (const id of ['a', 'b']) await writeUnitRecord(out, record(id));
      await first.update('video');
      // Two processes' tables (two instances), each writing its record, then its tables step.
      const runs = ['c', 'd'].map((id) => ({ id, t: new ClipTables(out, IDS, [], undefined, { everyS: 3600 }) }));
      const done = await Promise.all(
        runs.map(async ({ id, t }) => {
          await t.update('start');
          await writeUnitRecord(out, record(id));
          return t.update('video');
        }),
      );
      expect(done.some((u) => u.rebuilt && u.complete)).toBe(true);
      expect(await tablesOf(out), `round ${round}`).toEqual(want);
    }
  });

  it('reads the records of a folder written by the version before the record store, and shows a cut-short one as pending, with a warning', async () => {
    const want = await reference('ref3');
    const out = await fresh('older');
    // The bytes the clips job wrote before src/sinks/unit-records.ts: one JSON line per video.
    for (const id of IDS) await writeFile(join(out, '.units', `${id}.json`), `${JSON.stringify(record(id))}\n`);
    expect(await readFile(unitRecordPath(out, 'a'), 'utf8')).toBe(`${JSON.stringify(record('a'))}\n`);
    await new ClipTables(out, IDS).rebuild();
    expect(await tablesOf(out)).toEqual(want);
    const whole = await readFile(unitRecordPath(out, 'b'), 'utf8');
    await writeFile(unitRecordPath(out, 'b'), whole.slice(0, 40));
    const warnings: string[] = [];
    const view = await new ClipTables(out, IDS, [], undefined, { onWarning: (w) => warnings.push(w.message) }).rebuild();
    expect(view.complete).toBe(false);
    expect(view.rows[1]).toEqual(pendingRow('b'));
    expect(warnings).toEqual([expect.stringMatching(/b\.json: not a clips unit record .*its video is done again/)]);
  });
});
