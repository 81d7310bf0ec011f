/**
 * `clipstream dedup` end to end on clips made by recipe (test/helpers/dedup-clips.ts): every copy
 * (another CRF, half size, 5 % crop, a frame later) lands in its original's group and no group
 * holds two shots; the same from a folder, a clips output (stored fingerprints, score:<column>)
 * and tar shards; reruns give the same bytes without decoding again; and the keep list is
 * honoured by `bundle`, by the clips shard writer and by a real `extract` on the fixture shards.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARD_PATTERN } from '../../fixtures/index.js';
import { extract } from '../../src/jobs/extract.js';
import { parseCsv } from '../../src/util/csv.js';
import { type DedupClip, makeDedupClips } from '../helpers/dedup-clips.js';
import { runCli } from '../helpers/run-cli.js';

let dir: string;
let clips: DedupClip[];
let shots: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-dedup-'));
  await mkdir(join(dir, 'in'));
  clips = makeDedupClips(join(dir, 'in'));
  shots = clips.filter((c) => c.copy === '').map((c) => c.shot);
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const read = async (p: string) => readFile(p, 'utf8');

/** duplicates.csv as groups of clip ids, each with its kept clip. */
function groupsOf(csv: string): Map<string, { ids: string[]; kept: string[]; distances: number[] }> {
  const groups = new Map<string, { ids: string[]; kept: string[]; distances: number[] }>();
  for (const r of parseCsv(csv)) {
    const g = groups.get(r.group!) ?? { ids: [], kept: [], distances: [] };
    g.ids.push(r.clip_id!);
    if (r.kept === 'true') g.kept.push(r.clip_id!);
    g.distances.push(Number(r.distance));
    groups.set(r.group!, g);
  }
  return groups;
}

/** Every group is exactly one shot's five clips (original and four copies). */
function expectShotGroups(csv: string, idOf: (c: DedupClip) => string = (c) => c.id): void {
  const groups = [...groupsOf(csv).values()];
  const want = shots.map((s) =>
    clips
      .filter((c) => c.shot === s)
      .map(idOf)
      .sort(),
  );
  expect(groups.map((g) => [...g.ids].sort()).sort()).toEqual(want.sort());
  for (const g of groups) {
    expect(g.kept.length).toBe(1);
    expect(Math.max(...g.distances)).toBeLessThanOrEqual(12);
  }
}

describe('dedup on a folder of clips', () => {
  it('groups every copy with its original, no two shots together; keeps the longest (the first on a tie)', async () => {
    const out = join(dir, 'folder-out');
    const r = runCli(['dedup', `--input=${join(dir, 'in')}`, `--out_dir=${out}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`${clips.length} clips (${clips.length} fingerprinted now, 0 unreadable), ${shots.length} group(s)`);
    const csv = await read(join(out, 'duplicates.csv'));
    expect(csv.split('\n')[0]).toBe('group,clip_id,kept,distance');
    expectShotGroups(csv);
    // Originals have 50 frames, as have three copies; the one starting a frame later has 49. Ties: the first by name.
    expect((await read(join(out, 'keep.txt'))).split('\n').filter(Boolean).sort()).toEqual([...shots].sort());
  }, 240_000);

  it('a rerun decodes nothing and writes the same bytes', async () => {
    const out = join(dir, 'folder-out');
    const before = [await read(join(out, 'duplicates.csv')), await read(join(out, 'keep.txt'))];
    const r = runCli(['dedup', `--input=${join(dir, 'in')}`, `--out_dir=${out}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('(0 fingerprinted now');
    expect([await read(join(out, 'duplicates.csv')), await read(join(out, 'keep.txt'))]).toEqual(before);
    expect((await readdir(out)).sort()).toEqual(['duplicates.csv', 'fingerprints.csv', 'keep.txt']);
  }, 240_000);

  it('same-stem files (twin.mkv beside twin.mp4) get ids of their own, as the other jobs key them', async () => {
    const twins = join(dir, 'twins');
    await mkdir(twins);
    const [a, b] = clips.filter((c) => c.shot === shots[0]);
    await copyFile(a!.file, join(twins, 'twin.mkv'));
    await copyFile(b!.file, join(twins, 'twin.mp4'));
    const out = join(dir, 'twins-out');
    const r = runCli(['dedup', `--input=${twins}`, `--out_dir=${out}`]);
    expect(r.code, r.stderr).toBe(0);
    const rows = parseCsv(await read(join(out, 'duplicates.csv')));
    expect(rows.map((x) => x.clip_id).sort()).toEqual(['twin', 'twin.mp4']);
    expect(rows.filter((x) => x.kept === 'true').length).toBe(1);
    const prints = parseCsv(await read(join(out, 'fingerprints.csv')));
    expect(prints.map((x) => [x.clip_id, x.source!.slice(twins.length + 1)]).sort()).toEqual([
      ['twin', 'twin.mkv'],
      ['twin.mp4', 'twin.mp4'],
    ]);
  }, 240_000);

  it('needs --out_dir for a folder, and names a bad --keep', () => {
    const r = runCli(['dedup', join(dir, 'in')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out_dir is needed/);
    const k = runCli(['dedup', join(dir, 'in'), `--out_dir=${join(dir, 'x')}`, '--keep=biggest']);
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/--keep must be longest, first or score:<column>/);
  }, 240_000);
});

describe('dedup on a clips output', () => {
  it('uses stored fingerprints, computes the missing ones, keeps by score:<column>', async () => {
    const out = join(dir, 'clips-out');
    await mkdir(join(out, 'clips'), { recursive: true });
    const cached = new Map(parseCsv(await read(join(dir, 'folder-out', 'fingerprints.csv'))).map((r) => [r.clip_id!, r.fingerprint!]));
    const rows = ['clip_id,filename,start_s,end_s,num_frames,sharpness,fingerprint'];
    for (const [i, c] of clips.entries()) {
      await copyFile(c.file, join(out, 'clips', `${c.id}.mp4`));
      // The half-size copy scores highest; every other clip has its fingerprint stored.
      rows.push(`${c.id},${c.id}.mp4,0,2,50,${c.copy === 'half' ? 9 : i / 100},${c.copy === 'crop' ? '' : cached.get(c.id)}`);
    }
    await writeFile(join(out, 'clips.csv'), `${rows.join('\n')}\n`);
    const r = runCli(['dedup', out, '--keep=score:sharpness']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`(${shots.length} fingerprinted now, 0 unreadable)`);
    const csv = await read(join(out, 'duplicates.csv'));
    expectShotGroups(csv);
    for (const g of groupsOf(csv).values()) expect(g.kept[0]).toMatch(/_half$/);
    expect((await read(join(out, 'keep.txt'))).split('\n').filter(Boolean).sort()).toEqual(shots.map((s) => `${s}_half`).sort());
    const bad = runCli(['dedup', out, '--keep=score:nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/clips\.csv has no column 'nope'/);
  }, 240_000);
});

describe('dedup on tar shards, and bundle with the keep list', () => {
  it('finds the same groups in shards as in the folder; bundle --keep_list packs only the kept clips', async () => {
    const named = join(dir, 'named');
    await mkdir(named);
    for (const c of clips) await copyFile(c.file, join(named, `${c.id}_0.mp4`));
    const shards = join(dir, 'shards');
    expect(runCli(['bundle', `--input_dir=${named}`, `--out_dir=${shards}`, '--shard_size=8']).code).toBe(0);
    const count = (await readdir(shards)).filter((f) => f.endsWith('.tar')).length;
    expect(count).toBe(Math.ceil(clips.length / 8));
    const out = join(dir, 'tar-out');
    const pattern = join(shards, `shard-{000000..${String(count - 1).padStart(6, '0')}}.tar`);
    const r = runCli(['dedup', `--input=${pattern}`, `--out_dir=${out}`, '--keep=first']);
    expect(r.code, r.stderr).toBe(0);
    expectShotGroups(await read(join(out, 'duplicates.csv')), (c) => `${c.id}_0`);
    const keep = join(out, 'keep.txt');
    const kept = (await read(keep)).split('\n').filter(Boolean);
    expect(kept.length).toBe(shots.length);

    const packed = join(dir, 'packed');
    const b = runCli(['bundle', `--input_dir=${named}`, `--out_dir=${packed}`, '--shard_size=100', `--keep_list=${keep}`]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain(`${shots.length} clips in 1 shard(s), ${clips.length - shots.length} file(s) skipped`);
    const json = JSON.parse(await read(join(packed, 'shard-000000.json'))) as { filename: string }[];
    expect(json.map((e) => e.filename.replace(/\.mp4$/, '')).sort()).toEqual([...kept].sort());
  }, 240_000);
});

describe('the keep list in the other jobs', () => {
  it('extract --keep_list on the fixture shards: unlisted clips are skipped and counted, not failed, and not in the output', async () => {
    const out = join(dir, 'extract');
    const dropped = ['Q-r_s_33', 'dQw4w9WgXcQ_0', 'x_Y-z_5'];
    const all = ['Q-r_s_33', 'Zz_9-Yy_7_45', 'a-b_c-d_120', 'b-tiny_E_0', 'corrupt_vid-D_60', 'dQw4w9WgXcQ_0'];
    const second = JSON.parse(await read(FIXTURE_SHARD_PATTERN.replace('{000000..000001}.tar', '000001.json'))) as { filename: string }[];
    const keys = [...all, ...second.map((e) => e.filename.replace(/\.mp4$/, ''))];
    expect(keys).toEqual(expect.arrayContaining(dropped));
    const list = join(dir, 'extract-keep.txt');
    await writeFile(list, `# kept by hand\n${keys.filter((k) => !dropped.includes(k)).join('\n')}\n`);
    const report = await extract({ tarPath: FIXTURE_SHARD_PATTERN, outputDir: out, keepList: list, onWarning: () => {} });
    // Without a keep list: 9 written, 1 failed (corrupt), 2 skipped (too short): test/jobs/extract.test.ts.
    expect(report.clipsWritten).toBe(9 - dropped.length);
    expect(report.clipsFailed).toBe(1);
    expect(report.clipsSkipped).toBe(2 + dropped.length);
    const skipped = report.shards.flatMap((s) => s.skipped);
    expect(
      skipped
        .filter((s) => /not in the keep list/.test(s.reason))
        .map((s) => s.key)
        .sort(),
    ).toEqual([...dropped].sort());
    const written = report.shards.flatMap((s) => s.status);
    expect(written.every((s) => s === 'written')).toBe(true);
  }, 240_000);

  it('clips --keep_list: the shards hold only the listed clips, shards past the last are removed', async () => {
    const out = join(dir, 'clips-job');
    const base = ['clips', '--sources=fixtures/sources/sources.csv', '--spans=fixtures/sources/spans.csv', `--out_dir=${out}`, '--shard_size=2'];
    const first = runCli(base);
    expect(first.code, first.stderr).toBe(0);
    const rows = parseCsv(await read(join(out, 'clips.csv')));
    const before = (await readdir(join(out, 'shards'))).filter((f) => f.endsWith('.tar')).length;
    expect(before).toBe(Math.ceil(rows.length / 2));
    const keepIds = rows.filter((_, i) => i % 2 === 0).map((r) => r.clip_id!);
    const list = join(dir, 'clips-keep.txt');
    await writeFile(list, `${keepIds.join('\n')}\n`);
    const again = runCli([...base, `--keep_list=${list}`]);
    expect(again.code, again.stderr).toBe(0);
    const tars = (await readdir(join(out, 'shards'))).filter((f) => f.endsWith('.tar'));
    expect(tars.length).toBe(Math.ceil(keepIds.length / 2));
    const packed: string[] = [];
    for (const t of tars.sort()) {
      const entries = JSON.parse(await read(join(out, 'shards', t.replace('.tar', '.json')))) as { filename: string }[];
      packed.push(...entries.map((e) => e.filename));
    }
    expect(packed).toEqual(rows.filter((r) => keepIds.includes(r.clip_id!)).map((r) => r.filename));
    // The clips folder and the table keep every clip.
    expect(parseCsv(await read(join(out, 'clips.csv'))).length).toBe(rows.length);
  }, 240_000);
});
