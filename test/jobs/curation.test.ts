/**
 * The whole curation path of the README, one command each, on the shipped edited video
 * (fixtures/edited/edited.mp4, made by scripts/make-edited-fixture.sh): raw video → shots →
 * scored, filtered clips → near-duplicates removed → shards → features → a report. The truth is
 * the recipe: hard cuts at frames 75, 150, 225, 300; shot 1 (testsrc2) draws text; shot 2 is a still
 * title card with a caption; shot 4 repeats shot 0's frames.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFeatureShard } from '../../src/sinks/feature-shard-files.js';
import { parseCsv } from '../../src/util/csv.js';
import { REPO, runCli } from '../helpers/run-cli.js';

let out: string;
const csv = async (name: string) => parseCsv(await readFile(join(out, name), 'utf8'));

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'clipstream-curation-'));
});
afterAll(() => rm(out, { recursive: true, force: true }));

describe('raw video → shots → scored, filtered clips → dedup → shards → features → report', () => {
  it('clips --split=shots --scores=all --filter: the recipe cuts, the title card and the text shot kept out with their reasons', async () => {
    const r = runCli([
      'clips',
      `--sources=${join(REPO, 'fixtures', 'edited')}`,
      '--split=shots',
      '--scores=all',
      '--filter=frozen<=0.5,text_area<=0.02',
      '--shard_size=2',
      `--out_dir=${out}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const shots = await csv('shots.csv');
    expect(shots.map((s) => [s.start_frame, s.end_frame, s.kind])).toEqual([
      ['0', '75', 'start'],
      ['75', '150', 'cut'],
      ['150', '225', 'cut'],
      ['225', '300', 'cut'],
      ['300', '375', 'cut'],
    ]);
    const clips = new Map((await csv('clips.csv')).map((c) => [c.clip_id!, c]));
    expect([...clips.keys()]).toEqual(['edited_0_75', 'edited_75_150', 'edited_150_225', 'edited_225_300', 'edited_300_375']);
    expect(clips.get('edited_150_225')).toMatchObject({ kept: 'false', frozen: '1' });
    expect(clips.get('edited_150_225')!.filter_reason).toMatch(/frozen>0\.5/);
    expect(clips.get('edited_150_225')!.filter_reason).toMatch(/text_area>0\.02/);
    expect(clips.get('edited_75_150')).toMatchObject({ kept: 'false', filter_reason: 'text_area>0.02' });
    for (const id of ['edited_0_75', 'edited_225_300', 'edited_300_375'])
      expect(clips.get(id)).toMatchObject({ kept: 'true', filter_reason: '', text_area: '0' });
    expect(existsSync(join(out, 'filtered', 'edited_150_225.mp4'))).toBe(true);
    expect(existsSync(join(out, 'clips', 'edited_150_225.mp4'))).toBe(false);
    // Shards hold the kept clips only: 3 clips, 2 per shard.
    expect(existsSync(join(out, 'shards', 'shard-000001.tar'))).toBe(true);
    expect(existsSync(join(out, 'shards', 'shard-000002.tar'))).toBe(false);
  }, 240_000);

  it('dedup groups the repeated shot with its original and keeps one', async () => {
    const r = runCli(['dedup', out]);
    expect(r.code, r.stderr).toBe(0);
    const groups = (await csv('duplicates.csv')).map((d) => [d.clip_id, d.kept]);
    expect(groups).toEqual([
      ['edited_0_75', 'true'],
      ['edited_300_375', 'false'],
    ]);
    const keep = (await readFile(join(out, 'keep.txt'), 'utf8')).split('\n');
    expect(keep).not.toContain('edited_300_375');
  }, 120_000);

  it('extract with the keep list: features for the two kept, distinct clips; the copy skipped and counted', async () => {
    const r = runCli([
      'extract',
      `--tar_path=${join(out, 'shards')}/shard-{000000..000001}.tar`,
      `--out_path=${join(out, 'features')}`,
      `--keep_list=${join(out, 'keep.txt')}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 clips written, 1 skipped, 0 failed/);
    const records = [
      ...(await readFeatureShard(join(out, 'features', 'shard-000000.msgpack'))),
      ...(await readFeatureShard(join(out, 'features', 'shard-000001.msgpack'))),
    ];
    expect(records).toHaveLength(2);
  }, 240_000);

  it('report: one page that opens from disk', async () => {
    const r = runCli(['report', out]);
    expect(r.code, r.stderr).toBe(0);
    const html = await readFile(join(out, 'report', 'index.html'), 'utf8');
    // Nothing is fetched from the network (an SVG namespace URI is a name, not a request).
    expect(html).not.toMatch(/(?:src|href)="https?:/);
    const count = (name: string) => new RegExp(`data-count="${name}">(\\d+)<`).exec(html)?.[1];
    expect([count('clips'), count('kept'), count('filtered'), count('shots'), count('duplicates_removed')]).toEqual(['5', '3', '2', '5', '1']);
  }, 120_000);
});
