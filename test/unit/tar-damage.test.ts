/**
 * Tars made by other tools, or damaged: members that carry data under a type that is
 * skipped, missing end-of-archive blocks, long-name headers that are not names, compressed
 * data under a plain .tar name, repeated keys, directory keys and multi-dot fields.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS, FIXTURE_SHARDS, FIXTURE_SHARD_JSONS } from '../../fixtures/index.js';
import type { ClipstreamError } from '../../src/errors.js';
import { readShards, type ReadShardsOptions } from '../../src/shards/tar-reader.js';
import type { Sample, ShardEnd, StreamItem } from '../../src/types.js';
import { END_OF_ARCHIVE as END, member, memberOffsets, setChecksum } from '../helpers/tar.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-tardmg-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(urls: string[], options: ReadShardsOptions = {}) {
  const warnings: ClipstreamError[] = [];
  const items: StreamItem[] = [];
  for await (const item of readShards(urls, { onWarning: (w) => warnings.push(w), ...options })) items.push(item as StreamItem);
  const samples = items.filter((i): i is Sample => i.kind === 'sample');
  const ends = items.filter((i): i is ShardEnd => i.kind === 'shard-end');
  return { items, samples, ends, warnings };
}

describe('members the reader skips are skipped by their size (item 11)', () => {
  it('a directory entry carrying data costs that entry only; the clips after it are read', async () => {
    const tar = join(dir, 'dirdata.tar');
    // 1500 bytes of data behind a directory header: three blocks that look like nothing.
    await writeFile(
      tar,
      Buffer.concat([
        member('a_0.mp4', Buffer.from('A')),
        member('clips/', Buffer.alloc(1500, 0x41), '5'),
        member('b_0.mp4', Buffer.from('B')),
        member('c_0.mp4', Buffer.from('C')),
        END,
      ]),
    );
    const { samples, ends, warnings } = await collect([tar]);
    expect(samples.map((s) => [s.__key__, s.files.mp4!.toString()])).toEqual([
      ['a_0', 'A'],
      ['b_0', 'B'],
      ['c_0', 'C'],
    ]);
    expect(ends[0]!.error).toBeUndefined();
    expect(ends[0]!.incomplete).toBeUndefined();
    expect(warnings.map((w) => w.message)).toEqual([`Skipped member 'clips/' of shard ${tar}: it is a directory, not a regular file`]);
  });

  it('an unknown type flag with data is skipped the same way', async () => {
    const tar = join(dir, 'unknown.tar');
    await writeFile(
      tar,
      Buffer.concat([member('a_0.mp4', Buffer.from('A')), member('odd_1.mp4', Buffer.alloc(700, 1), 'Z'), member('b_0.mp4', Buffer.from('B')), END]),
    );
    const { samples, warnings } = await collect([tar]);
    expect(samples.map((s) => s.__key__)).toEqual(['a_0', 'b_0']);
    expect(warnings[0]!.message).toContain("Skipped member 'odd_1.mp4'");
  });

  it('a tar without end-of-archive blocks (cut at a member boundary) is read, and says it may be truncated', async () => {
    const tar = join(dir, 'noend.tar');
    await writeFile(tar, Buffer.concat([member('a_0.mp4', Buffer.from('A')), member('b_0.mp4', Buffer.from('B'))]));
    const { samples, ends, warnings } = await collect([tar]);
    expect(samples.map((s) => s.__key__)).toEqual(['a_0', 'b_0']);
    expect(ends[0]!.incomplete?.reason).toMatch(/no end-of-archive blocks.*may be truncated/);
    expect(warnings.some((w) => /may be truncated/.test(w.message) && w.message.includes(tar))).toBe(true);
  });
});

describe('damaged tars are compared with their json (item 17)', () => {
  const shard0 = FIXTURE_CLIPS.filter((c) => c.shard === 0).map((c) => c.file);
  async function copyShard(name: string, edit: (buf: Buffer) => Buffer): Promise<string> {
    const tar = join(dir, `${name}.tar`);
    await writeFile(tar, edit(Buffer.from(await readFile(FIXTURE_SHARDS[0]!))));
    await copyFile(FIXTURE_SHARD_JSONS[0]!, join(dir, `${name}.json`));
    return tar;
  }

  it('cut at a member boundary: the clips after the cut are named as missing', async () => {
    const tar = await copyShard('cut', (b) => b.subarray(0, memberOffsets(b)[3]!.header));
    const { samples, ends, warnings } = await collect([tar]);
    expect(samples).toHaveLength(3);
    expect(ends[0]!.incomplete!.missing).toEqual(shard0.slice(3));
    const w = warnings.find((x) => x.message.includes('not in the tar'))!;
    expect(w.message).toContain(`3 of 6 clips listed in`);
    expect(w.message).toContain(shard0[3]);
  });

  it('a 0-byte tar: every clip missing', async () => {
    const tar = await copyShard('empty', () => Buffer.alloc(0));
    const { samples, ends } = await collect([tar]);
    expect(samples).toHaveLength(0);
    expect(ends[0]!.incomplete!.missing).toEqual(shard0);
  });

  it('a member retyped as a GNU long-name header is skipped, not applied to the next member', async () => {
    const tar = await copyShard('retyped', (b) => {
      const at = memberOffsets(b)[2]!.header;
      b.write('L', at + 156, 'ascii');
      setChecksum(b, at);
      return b;
    });
    const { samples, ends, warnings } = await collect([tar]);
    expect(samples.map((s) => s.entry.filename)).toEqual([...shard0.slice(0, 2), ...shard0.slice(3)]);
    expect(ends[0]!.incomplete!.missing).toEqual([shard0[2]]);
    expect(warnings.some((w) => w.message.includes('long-name') && w.message.includes(tar))).toBe(true);
  });

  it('an intact shard with its json is complete', async () => {
    const { ends, warnings } = await collect([FIXTURE_SHARDS[0]!]);
    expect(ends[0]!.incomplete).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});

describe('compressed data under any tar name (item 20)', () => {
  const plain = async () => readFile(FIXTURE_SHARDS[1]!);
  const keys = FIXTURE_CLIPS.filter((c) => c.shard === 1).map((c) => c.file);
  it.each([
    ['gzip under .tar (webdataset TarWriter(compress=True))', 'gz-plain.tar', (b: Buffer) => gzipSync(b)],
    ['bzip2 under .tar', 'bz-plain.tar', (b: Buffer) => execFileSync('bzip2', ['-c'], { input: b, maxBuffer: 1 << 28 })],
    ['xz under .tar', 'xz-plain.tar', (b: Buffer) => execFileSync('xz', ['-c'], { input: b, maxBuffer: 1 << 28 })],
    ['gzip as .tgz', 'named.tgz', (b: Buffer) => gzipSync(b)],
  ])('%s is detected by its magic bytes and read', async (_n, name, pack) => {
    const tar = join(dir, name);
    await writeFile(tar, pack(await plain()));
    const { samples, ends } = await collect([tar]);
    expect(ends[0]!.error).toBeUndefined();
    expect(samples.map((s) => s.entry.filename)).toEqual(keys);
  });

  it('a missing decompressor is a clear error naming the shard and what to install', async () => {
    const tar = join(dir, 'needs-xz.tar');
    await writeFile(tar, execFileSync('xz', ['-c'], { input: await plain(), maxBuffer: 1 << 28 }));
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'nothing-here');
    try {
      const { ends } = await collect([tar, FIXTURE_SHARDS[0]!]);
      expect(ends[0]!.error?.message).toMatch(new RegExp(`${tar}.*xz-compressed.*install xz`));
      expect((ends[0]!.error!.cause as ClipstreamError).code).toBe('ERR_TOOL');
      expect(ends[1]!.samples).toBe(6);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('positions and keys (items 18, 21)', () => {
  it('skipIndices skips by position: a key that appears twice keeps its second sample', async () => {
    const tar = join(dir, 'twice.tar');
    await writeFile(tar, Buffer.concat([member('a_0.mp4', Buffer.from('A1')), member('b_0.mp4', Buffer.from('B')), member('a_0.mp4', Buffer.from('A2')), END]));
    const all = await collect([tar]);
    expect(all.samples.map((s) => [s.index, s.__key__])).toEqual([
      [0, 'a_0'],
      [1, 'b_0'],
      [2, 'a_0'],
    ]);
    const resumed = await collect([tar], { skipIndices: () => new Set([0]) });
    expect(resumed.samples.map((s) => [s.index, s.files.mp4!.toString()])).toEqual([
      [1, 'B'],
      [2, 'A2'],
    ]);
    expect(resumed.ends[0]!.samples).toBe(3);
  });

  it('the json join uses the full key: same basenames in two folders get their own entries', async () => {
    const tar = join(dir, 'cams.tar');
    await writeFile(tar, Buffer.concat([member('cam1/plain_0.mp4', Buffer.from('1')), member('cam2/plain_0.mp4', Buffer.from('2')), END]));
    await writeFile(
      join(dir, 'cams.json'),
      JSON.stringify([
        { filename: 'cam2/plain_0.mp4', id: 'second', segment: [5, 15] },
        { filename: 'cam1/plain_0.mp4', id: 'first', segment: [0, 10] },
      ]),
    );
    const { samples, ends, warnings } = await collect([tar]);
    expect(samples.map((s) => [s.__key__, s.entry.id, s.entry.segment])).toEqual([
      ['cam1/plain_0', 'first', [0, 10]],
      ['cam2/plain_0', 'second', [5, 15]],
    ]);
    expect(ends[0]!.incomplete).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});
