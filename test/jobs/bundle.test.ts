import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleClips, type BundleSummary } from '../../src/shards/bundle.js';
import { readShards } from '../../src/shards/tar-reader.js';
import { InvalidOptionError, type ClipstreamError } from '../../src/errors.js';
import type { Sample, StreamItem } from '../../src/types.js';
import { FIXTURE_CLIPS, FIXTURE_CLIPS_DIR, FIXTURE_SHARDS, FIXTURE_SHARD_JSONS, fixtureClipPath } from '../../fixtures/index.js';

let dir: string;
// One bundle of all fixture clips, shared by the read-only tests: ffprobe runs 12 times, not 12 × N.
let outA: string;
let summaryA: BundleSummary;
let warningsA: ClipstreamError[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-bundle-'));
  outA = join(dir, 'a');
  warningsA = [];
  summaryA = await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: outA, shardSize: 5, onWarning: (w) => warningsA.push(w) });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sortedClips = [...FIXTURE_CLIPS].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.start - b.start));

describe('bundleClips', () => {
  it('splits sorted clips into numbered shards and reports them', () => {
    expect(warningsA).toEqual([]);
    expect(summaryA).toEqual({
      shards: [0, 1, 2].map((n) => ({
        tar: join(outA, `shard-00000${n}.tar`),
        json: join(outA, `shard-00000${n}.json`),
        clips: n < 2 ? 5 : 2,
        written: true,
      })),
      skipped: [],
    });
  });

  it('round-trips: reading the shards gives back every input file byte for byte, in id/start order', async () => {
    const samples: Sample[] = [];
    for await (const item of readShards(
      summaryA.shards.map((s) => s.tar),
      {
        onWarning: (w) => {
          throw w;
        },
      },
    )) {
      if ((item as StreamItem).kind === 'sample') samples.push(item as Sample);
    }
    expect(samples.map((s) => s.entry.filename)).toEqual(sortedClips.map((c) => c.file));
    for (const s of samples) {
      expect(Object.keys(s.files)).toEqual(['mp4']);
      expect(s.files.mp4.equals(await readFile(fixtureClipPath(s.entry.filename)))).toBe(true);
    }
  });

  it('writes json entries {filename, id, segment: [start, start + probed duration]}', async () => {
    const all = (await Promise.all(summaryA.shards.map(async (s) => JSON.parse(await readFile(s.json, 'utf8')) as unknown[]))).flat();
    expect(all).toHaveLength(FIXTURE_CLIPS.length);
    all.forEach((entry, i) => {
      const clip = sortedClips[i];
      expect(entry).toEqual({ filename: clip.file, id: clip.id, segment: [clip.start, expect.any(Number)] });
      const end = (entry as { segment: number[] }).segment[1];
      // AAC priming can make the container a few ms longer than the video.
      expect(end - clip.start).toBeGreaterThanOrEqual(clip.duration - 0.05);
      expect(end - clip.start).toBeLessThan(clip.duration + 0.1);
      expect(Math.round(end * 1000)).toBe(end * 1000);
    });
    // One entry per line, so diffs of shard json stay readable.
    expect((await readFile(summaryA.shards[2].json, 'utf8')).split('\n')).toHaveLength(5);
  });

  it('is deterministic: the same folder gives byte-identical shards, equal to the committed fixtures', async () => {
    const outB = join(dir, 'b');
    const summaryB = await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: outB, shardSize: 6 });
    expect(summaryB.shards).toHaveLength(2);
    for (const [i, s] of summaryB.shards.entries()) {
      expect((await readFile(s.tar)).equals(await readFile(FIXTURE_SHARDS[i]))).toBe(true);
      expect(await readFile(s.json, 'utf8')).toBe(await readFile(FIXTURE_SHARD_JSONS[i], 'utf8'));
    }
    // No temporary files left behind.
    expect((await readdir(outB)).sort()).toEqual(['shard-000000.json', 'shard-000000.tar', 'shard-000001.json', 'shard-000001.tar']);
  });

  it("python's tarfile lists regular members at the root, fixed metadata, that webdataset splits into key + mp4", async () => {
    const script = [
      'import json, re, sys, tarfile',
      'out = []',
      'for m in tarfile.open(sys.argv[1]).getmembers():',
      // webdataset's base_plus_ext
      "    k = re.match(r'^((?:.*/|)[^.]+)[.]([^/]*)$', m.name)",
      '    out.append([m.name, m.size, m.isreg(), m.mtime, m.uid, m.gid, m.mode, k.group(1), k.group(2)])',
      'print(json.dumps(out))',
    ].join('\n');
    const tar = summaryA.shards[0].tar;
    const listed = JSON.parse(execFileSync('python3', ['-c', script, tar], { encoding: 'utf8' })) as unknown[][];
    const expected = await Promise.all(
      sortedClips.slice(0, 5).map(async (c) => [c.file, (await stat(fixtureClipPath(c.file))).size, true, 0, 0, 0, 0o644, `${c.id}_${c.start}`, 'mp4']),
    );
    expect(listed).toEqual(expected);
  });

  it('leaves existing shards alone unless overwrite is set', async () => {
    const out = join(dir, 'overwrite');
    await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: out, shardSize: 6 });
    const json0 = join(out, 'shard-000000.json');
    const tar1 = join(out, 'shard-000001.tar');
    await writeFile(json0, 'sentinel');
    await writeFile(tar1, 'sentinel');

    const warnings: ClipstreamError[] = [];
    const kept = await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: out, shardSize: 6, onWarning: (w) => warnings.push(w) });
    expect(kept.shards.map((s) => s.written)).toEqual([false, false]);
    expect(await readFile(json0, 'utf8')).toBe('sentinel');
    expect(await readFile(tar1, 'utf8')).toBe('sentinel');
    expect(warnings.map((w) => w.message)).toEqual([
      `bundle: ${join(out, 'shard-000000.tar')} already exists; left alone (pass overwrite to replace it)`,
      `bundle: ${tar1} already exists; left alone (pass overwrite to replace it)`,
    ]);

    const replaced = await bundleClips({
      inputDir: FIXTURE_CLIPS_DIR,
      outputDir: out,
      shardSize: 6,
      overwrite: true,
      onWarning: (w) => {
        throw w;
      },
    });
    expect(replaced.shards.map((s) => s.written)).toEqual([true, true]);
    expect(await readFile(json0, 'utf8')).toBe(await readFile(FIXTURE_SHARD_JSONS[0], 'utf8'));
    expect((await readFile(tar1)).equals(await readFile(FIXTURE_SHARDS[1]))).toBe(true);
  });

  it('honours prefix and startIndex', async () => {
    const out = join(dir, 'prefix');
    const s = await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: out, shardSize: 12, prefix: 'train-', startIndex: 41 });
    expect(s.shards.map((x) => [x.tar, x.clips])).toEqual([[join(out, 'train-000041.tar'), 12]]);
  });

  it('skips bad names, duplicates and unreadable clips with a warning saying why', async () => {
    const input = join(dir, 'bad-input');
    await mkdir(join(input, 'subdir_1.mp4'), { recursive: true }); // a folder is not a clip: ignored silently
    const tiny = fixtureClipPath('b-tiny_E_0.mp4');
    const copies = ['ok-1_x_2.mp4', 'bad.name_3.mp4', 'nostart.mp4', 'id_abc.mp4', 'dup_1.mp4', 'dup_1.webm', 'upper_4.MOV'];
    for (const name of copies) await copyFile(tiny, join(input, name));
    await writeFile(join(input, 'notes.txt'), 'hello');
    await writeFile(join(input, 'broken_5.mp4'), Buffer.alloc(4096, 0x55));

    const warnings: ClipstreamError[] = [];
    const out = join(dir, 'bad-output');
    const s = await bundleClips({ inputDir: input, outputDir: out, shardSize: 10, onWarning: (w) => warnings.push(w) });
    expect(s.skipped.map((x) => x.file).sort()).toEqual(['bad.name_3.mp4', 'broken_5.mp4', 'dup_1.webm', 'id_abc.mp4', 'nostart.mp4', 'notes.txt']);
    const reason = (file: string) => s.skipped.find((x) => x.file === file)!.reason;
    expect(reason('bad.name_3.mp4')).toBe('the name has more than one dot; webdataset would split the key at the first dot');
    expect(reason('nostart.mp4')).toBe('the name is not {id}_{start} with an integer start second');
    expect(reason('id_abc.mp4')).toBe('the name is not {id}_{start} with an integer start second');
    expect(reason('dup_1.webm')).toBe("same key 'dup_1' as dup_1.mp4; one tar sample cannot hold two clips");
    expect(reason('notes.txt')).toBe('not a video clip (expected one of .mp4 .webm .mkv .mov .m4v .avi .mpg .ts .mpeg .m2ts .mts .flv .ogv .3gp .gif)');
    expect(reason('broken_5.mp4')).toMatch(new RegExp(`^ffprobe failed on ${join(input, 'broken_5.mp4')}: .+`));
    expect(warnings).toHaveLength(6);
    expect(warnings.find((w) => w.message.includes('bad.name_3.mp4'))?.message).toBe(
      `bundle: skipped ${join(input, 'bad.name_3.mp4')}: the name has more than one dot; webdataset would split the key at the first dot`,
    );

    expect(s.shards).toEqual([{ tar: join(out, 'shard-000000.tar'), json: join(out, 'shard-000000.json'), clips: 3, written: true }]);
    const entries = JSON.parse(await readFile(s.shards[0].json, 'utf8')) as { filename: string; id: string }[];
    expect(entries.map((e) => [e.filename, e.id])).toEqual([
      ['dup_1.mp4', 'dup'],
      ['ok-1_x_2.mp4', 'ok-1_x'],
      ['upper_4.MOV', 'upper'],
    ]);
    // The reader joins `upper_4.MOV` (field `mov`) to its entry without complaint.
    const read: Sample[] = [];
    for await (const item of readShards([s.shards[0].tar], {
      onWarning: (w) => {
        throw w;
      },
    })) {
      if ((item as StreamItem).kind === 'sample') read.push(item as Sample);
    }
    expect(read.map((r) => [r.__key__, Object.keys(r.files), r.entry.filename, r.entry.segment[1]])).toEqual([
      ['dup_1', ['mp4'], 'dup_1.mp4', 2],
      ['ok-1_x_2', ['mp4'], 'ok-1_x_2.mp4', 3],
      ['upper_4', ['mov'], 'upper_4.MOV', 5],
    ]);
  });

  it('validates options with messages naming the option', async () => {
    await expect(bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: dir, shardSize: 0 })).rejects.toThrow(InvalidOptionError);
    await expect(bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: dir, shardSize: 0 })).rejects.toThrow(
      'Expected integer of at least 1 for options.shardSize but received 0 of type number',
    );
    await expect(bundleClips({ inputDir: join(dir, 'nope'), outputDir: dir, shardSize: 1 })).rejects.toThrow(
      `Cannot list clip folder ${join(dir, 'nope')}: ENOENT`,
    );
  });
});
