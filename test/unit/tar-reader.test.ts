import { createReadStream, type ReadStream } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readShards, splitMemberName, type ReadShardsOptions } from '../../src/shards/tar-reader.js';
import type { ClipstreamError } from '../../src/errors.js';
import type { Sample, ShardEnd, StreamItem } from '../../src/types.js';
import { FIXTURE_CLIPS, FIXTURE_SHARDS, fixtureClipPath } from '../../fixtures/index.js';
import { makeTar, memberOffsets } from '../helpers/tar.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-reader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(urls: string[], options: ReadShardsOptions = {}): Promise<{ items: StreamItem[]; warnings: ClipstreamError[] }> {
  const warnings: ClipstreamError[] = [];
  const items: StreamItem[] = [];
  for await (const item of readShards(urls, { onWarning: (w) => warnings.push(w), ...options })) items.push(item as StreamItem);
  return { items, warnings };
}

const samplesOf = (items: StreamItem[]): Sample[] => items.filter((i): i is Sample => i.kind === 'sample');
const endsOf = (items: StreamItem[]): ShardEnd[] => items.filter((i): i is ShardEnd => i.kind === 'shard-end');

describe('splitMemberName (webdataset key rule)', () => {
  it.each([
    ['abc_10.mp4', 'abc_10', 'mp4'],
    ['abc_10.seg.json', 'abc_10', 'seg.json'],
    ['dir/sub/abc_10.MP4', 'dir/sub/abc_10', 'mp4'],
    ['./abc.mp4', 'abc', 'mp4'],
    ['d.x/abc.tar.gz', 'd.x/abc', 'tar.gz'],
  ])('%s -> key %s, field %s', (name, key, field) => {
    expect(splitMemberName(name)).toEqual({ key, field });
  });

  it.each(['README', '.hidden', 'dir/.hidden', 'trailing.'])('%s has no field', (name) => {
    expect(splitMemberName(name)).toBeNull();
  });
});

describe('readShards on the committed fixtures', () => {
  it('emits every clip in tar order with its json entry, then one ShardEnd per shard', async () => {
    const { items, warnings } = await collect([...FIXTURE_SHARDS]);
    expect(warnings).toEqual([]);
    expect(items.map((i) => (i.kind === 'sample' ? `${i.shard.index}:${i.index}:${i.__key__}` : `end ${i.shard.name} ${i.samples}`))).toEqual([
      ...FIXTURE_CLIPS.filter((c) => c.shard === 0).map((c) => `0:${c.index}:${c.id}_${c.start}`),
      'end shard-000000 6',
      ...FIXTURE_CLIPS.filter((c) => c.shard === 1).map((c) => `1:${c.index}:${c.id}_${c.start}`),
      'end shard-000001 6',
    ]);
    for (const s of samplesOf(items)) {
      const clip = FIXTURE_CLIPS.find((c) => `${c.id}_${c.start}` === s.__key__)!;
      expect(s.files.mp4.equals(await readFile(fixtureClipPath(clip.file)))).toBe(true);
      expect(s.entry.filename).toBe(clip.file);
      expect(s.entry.id).toBe(clip.id);
      expect(s.entry.segment[0]).toBe(clip.start);
      expect(s.entry.segment[1]).toBeCloseTo(clip.start + clip.duration, 1);
      expect(s.__url__).toBe(FIXTURE_SHARDS[clip.shard]);
      expect(s.shard).toEqual({ url: FIXTURE_SHARDS[clip.shard], name: `shard-00000${clip.shard}`, index: clip.shard });
    }
    // One ShardInfo object per shard, shared by its samples.
    const first = samplesOf(items).filter((s) => s.shard.index === 0);
    expect(new Set(first.map((s) => s.shard)).size).toBe(1);
  });

  it('without the json beside the tar, parses {id}_{start} from the key and assumes 10 s clips, silently', async () => {
    const tar = join(dir, 'nojson-000000.tar');
    await copyFile(FIXTURE_SHARDS[1], tar);
    const { items, warnings } = await collect([tar]);
    expect(warnings).toEqual([]);
    const byKey = Object.fromEntries(samplesOf(items).map((s) => [s.__key__, s.entry]));
    expect(byKey['yt-Abc_12-x_30']).toEqual({ filename: 'yt-Abc_12-x_30.mp4', id: 'yt-Abc_12-x', segment: [30, 40] });
    expect(byKey['long_clip-B_100']).toEqual({ filename: 'long_clip-B_100.mp4', id: 'long_clip-B', segment: [100, 110] });
  });
});

describe('grouping members into samples', () => {
  it('groups consecutive members by key, keeps directories in keys and multi-dot fields', async () => {
    const tar = join(dir, 'group.tar');
    await makeTar(tar, [
      { name: 'a_1.mp4', data: 'A-video' },
      { name: 'a_1.json', data: '{"a":1}' },
      { name: 'a_1.seg.json', data: '[1,2]' },
      { name: 'sub/dir/b_2.mp4', data: 'B-video' },
      { name: 'sub/dir/b_2.txt', data: 'B-text' },
      { name: 'other/b_2.mp4', data: 'other B' },
      { name: 'c_3.mp4', data: 'C' },
      { name: 'd_4.mp4', data: 'D' },
      // Not consecutive with the first c_3 member: webdataset makes it a new sample.
      { name: 'c_3.json', data: '{}' },
    ]);
    const { items, warnings } = await collect([tar]);
    const samples = samplesOf(items);
    expect(samples.map((s) => [s.index, s.__key__, Object.keys(s.files).sort()])).toEqual([
      [0, 'a_1', ['json', 'mp4', 'seg.json']],
      [1, 'sub/dir/b_2', ['mp4', 'txt']],
      [2, 'other/b_2', ['mp4']],
      [3, 'c_3', ['mp4']],
      [4, 'd_4', ['mp4']],
      [5, 'c_3', ['json']],
    ]);
    expect(samples[0].files['seg.json'].toString()).toBe('[1,2]');
    expect(samples[1].files.txt.toString()).toBe('B-text');
    expect(samples[1].entry).toEqual({ filename: 'b_2.mp4', id: 'b', segment: [2, 12] });
    expect(endsOf(items)).toEqual([{ kind: 'shard-end', shard: { url: tar, name: 'group', index: 0 }, samples: 6 }]);
    expect(warnings).toEqual([]);
  });

  it('warns about a duplicate field and keeps the first member', async () => {
    const tar = join(dir, 'dup.tar');
    await makeTar(tar, [
      { name: 'k_1.mp4', data: 'first' },
      { name: 'k_1.mp4', data: 'second' },
    ]);
    const { items, warnings } = await collect([tar]);
    expect(samplesOf(items).map((s) => s.files.mp4.toString())).toEqual(['first']);
    expect(warnings.map((w) => w.message)).toEqual([`Skipped member 'k_1.mp4' of shard ${tar}: sample 'k_1' already has a 'mp4' member`]);
  });
});

describe('joining shard json entries', () => {
  const tarPath = () => join(dir, 'join-000003.tar');
  const jsonPath = () => join(dir, 'join-000003.json');
  let result: { items: StreamItem[]; warnings: ClipstreamError[] };

  beforeAll(async () => {
    await makeTar(tarPath(), [
      { name: 'listed_5.mp4' },
      { name: 'bykey_7.mp4' },
      { name: 'yt-Abc_12-x_30.mp4' },
      { name: 'a_b_c_0.mp4' },
      { name: 'dir/sub/xyz-1_7.mp4' },
      { name: 'noStart.mp4' },
      { name: 'id_12abc.mp4' },
      { name: '_5.mp4' },
    ]);
    await writeFile(
      jsonPath(),
      JSON.stringify([
        { filename: 'listed_5.mp4', id: 'real-id', segment: [5.5, 15.25] },
        // Entries naming the key without extension are accepted too.
        { filename: 'bykey_7', id: 'from-key', segment: [7, 9] },
        { filename: 'broken.mp4', id: 3 },
      ]),
    );
    result = await collect([tarPath()]);
  });

  it.each<[string, string, [number, number], boolean]>([
    ['listed_5', 'real-id', [5.5, 15.25], false],
    ['bykey_7', 'from-key', [7, 9], false],
    ['yt-Abc_12-x_30', 'yt-Abc_12-x', [30, 40], true],
    ['a_b_c_0', 'a_b_c', [0, 10], true],
    ['dir/sub/xyz-1_7', 'xyz-1', [7, 17], true],
    ['noStart', 'noStart', [0, 10], true],
    ['id_12abc', 'id_12abc', [0, 10], true],
    ['_5', '_5', [0, 10], true],
  ])('%s -> id %s, segment %j (warned: %s)', (key, id, segment, warned) => {
    const sample = samplesOf(result.items).find((s) => s.__key__ === key)!;
    expect(sample.entry.id).toBe(id);
    expect(sample.entry.segment).toEqual(segment);
    expect(result.warnings.some((w) => w.message.includes(`Sample '${key}' of shard ${tarPath()}`))).toBe(warned);
  });

  it('says why in the warnings', () => {
    const messages = result.warnings.map((w) => w.message);
    expect(messages).toContain(
      `Sample 'yt-Abc_12-x_30' of shard ${tarPath()} is not listed in ${jsonPath()}; using id 'yt-Abc_12-x' and segment [30, 40] parsed from its name`,
    );
    expect(messages).toContain(
      `Sample 'noStart' of shard ${tarPath()} has no entry in ${jsonPath()} and its name is not {id}_{start}; using id 'noStart' and segment [0, 10]`,
    );
    expect(messages).toContain(`${jsonPath()}: ignored 1 of 3 entries that are not {filename: string, id: string, segment: [number, number]}`);
  });

  it('warns once about a json file that does not parse and falls back to names', async () => {
    const tar = join(dir, 'badjson.tar');
    await makeTar(tar, [{ name: 'q_3.mp4' }]);
    await writeFile(join(dir, 'badjson.json'), '[{"filename": ');
    const { items, warnings } = await collect([tar]);
    expect(samplesOf(items)[0].entry).toEqual({ filename: 'q_3.mp4', id: 'q', segment: [3, 13] });
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(new RegExp(`^${join(dir, 'badjson.json')} is not valid JSON`));
  });
});

describe('unsafe and odd members', () => {
  it('skips links, directories, devices, absolute and climbing paths with a warning naming shard and member', async () => {
    const tar = join(dir, 'unsafe.tar');
    await makeTar(tar, [
      { name: 'good_1.mp4', data: 'ok' },
      { name: 'clips/', type: 'directory' },
      { name: 'evil_2.mp4', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'hard_3.mp4', type: 'link', linkname: 'good_1.mp4' },
      { name: 'pipe_4.mp4', type: 'fifo' },
      { name: '/etc/abs_5.mp4', data: 'abs' },
      { name: '../up_6.mp4', data: 'up' },
      { name: 'a/../../deep_7.mp4', data: 'deep' },
      { name: 'README', data: 'no extension' },
      { name: 'good_8.mp4', data: 'ok too' },
    ]);
    const { items, warnings } = await collect([tar]);
    expect(samplesOf(items).map((s) => [s.index, s.__key__])).toEqual([
      [0, 'good_1'],
      [1, 'good_8'],
    ]);
    expect(endsOf(items)[0]).toEqual({ kind: 'shard-end', shard: { url: tar, name: 'unsafe', index: 0 }, samples: 2 });
    expect(warnings.every((w) => w.code === 'ERR_TAR_MEMBER' && w.where.shard === tar)).toBe(true);
    expect(warnings.map((w) => w.message)).toEqual([
      `Skipped member 'clips/' of shard ${tar}: it is a directory, not a regular file`,
      `Skipped member 'evil_2.mp4' of shard ${tar}: it is a symlink -> '/etc/passwd', not a regular file`,
      `Skipped member 'hard_3.mp4' of shard ${tar}: it is a link -> 'good_1.mp4', not a regular file`,
      `Skipped member 'pipe_4.mp4' of shard ${tar}: it is a fifo, not a regular file`,
      `Skipped member '/etc/abs_5.mp4' of shard ${tar}: its path is absolute`,
      `Skipped member '../up_6.mp4' of shard ${tar}: its path climbs out of the archive with '..'`,
      `Skipped member 'a/../../deep_7.mp4' of shard ${tar}: its path climbs out of the archive with '..'`,
      `Skipped member 'README' of shard ${tar}: its name has no extension, so it has no webdataset field`,
    ]);
  });

  it('does not buffer members above maxMemberBytes: the sample is emitted marked failed', async () => {
    const { items, warnings } = await collect([FIXTURE_SHARDS[0]], { maxMemberBytes: 20_000 });
    const samples = samplesOf(items);
    expect(samples).toHaveLength(6);
    const small = samples.filter((s) => s.failure === undefined).map((s) => s.__key__);
    expect(small).toEqual(['a-b_c-d_120', 'b-tiny_E_0']); // 17304 and 3831 bytes; the others are > 60 kB
    // The join still works from the refused member's name.
    expect(samples.map((s) => s.entry.filename)).toEqual(FIXTURE_CLIPS.filter((c) => c.shard === 0).map((c) => c.file));
    const big = samples.find((s) => s.__key__ === 'Q-r_s_33')!;
    expect(big.files).toEqual({});
    expect(big.failure?.status).toBe('failed');
    expect(big.failure?.error.code).toBe('ERR_TAR_MEMBER');
    expect(warnings).toHaveLength(4);
    expect(warnings[0].message).toBe(`Skipped member 'Q-r_s_33.mp4' of shard ${FIXTURE_SHARDS[0]}: it is 63199 bytes, more than maxMemberBytes (20000)`);
  });
});

describe('damaged and missing shards', () => {
  it('a tar cut inside a member yields the samples before the damage, an ERR_TAR ShardEnd, then the next shard', async () => {
    const whole = await readFile(FIXTURE_SHARDS[0]);
    const members = memberOffsets(whole);
    expect(members.map((m) => m.name)).toEqual(FIXTURE_CLIPS.filter((c) => c.shard === 0).map((c) => c.file));
    const cutAt = members[3].header + 512 + 1000; // 1000 bytes into b-tiny_E_0.mp4
    const truncated = join(dir, 'truncated-000000.tar');
    await writeFile(truncated, whole.subarray(0, cutAt));

    const { items, warnings } = await collect([truncated, FIXTURE_SHARDS[1]]);
    expect(warnings).toEqual([]);
    const before = items.slice(0, 4);
    expect(before.map((i) => (i.kind === 'sample' ? i.__key__ : 'end'))).toEqual(['Q-r_s_33', 'Zz_9-Yy_7_45', 'a-b_c-d_120', 'end']);
    const end = before[3] as ShardEnd;
    expect(end.samples).toBe(3);
    expect(end.error?.code).toBe('ERR_TAR');
    expect(end.error?.where.shard).toBe(truncated);
    expect(end.error?.message).toBe(
      `Shard ${truncated} is truncated or corrupt (Unexpected end of data): read 3 complete samples before the damage, ` +
        `dropped 1 possibly incomplete sample 'b-tiny_E_0'. Maybe the tar is corrupted or it needs to be gunzipped?`,
    );
    // The samples before the damage are intact.
    expect((before[2] as Sample).files.mp4.equals(await readFile(fixtureClipPath('a-b_c-d_120.mp4')))).toBe(true);
    // And the next shard is read in full.
    const next = items.slice(4);
    expect(samplesOf(next)).toHaveLength(6);
    expect(endsOf(next)).toEqual([{ kind: 'shard-end', shard: { url: FIXTURE_SHARDS[1], name: 'shard-000001', index: 1 }, samples: 6 }]);
  });

  it("a garbage header stops the shard with tar-stream's hint, once", async () => {
    const buf = Buffer.from(await readFile(FIXTURE_SHARDS[0]));
    const members = memberOffsets(buf);
    buf.fill(0x41, members[2].header, members[2].header + 512);
    const bad = join(dir, 'badheader.tar');
    await writeFile(bad, buf);
    const { items } = await collect([bad]);
    expect(samplesOf(items).map((s) => s.__key__)).toEqual(['Q-r_s_33']);
    const end = endsOf(items)[0];
    expect(end.samples).toBe(1);
    expect(end.error?.message).toBe(
      `Shard ${bad} is truncated or corrupt (Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?): ` +
        `read 1 complete sample before the damage, dropped 1 possibly incomplete sample 'Zz_9-Yy_7_45'.`,
    );
  });

  it('a gzipped tar named .tar is gunzipped (magic bytes, not the name); .tar.gz too; gzip garbage is an ERR_TAR', async () => {
    const gz = gzipSync(await readFile(FIXTURE_SHARDS[1]));
    const misnamed = join(dir, 'gz-as-plain.tar');
    const proper = join(dir, 'proper.tar.gz');
    const garbage = join(dir, 'garbage.tgz');
    await writeFile(misnamed, gz);
    await writeFile(proper, gz);
    await writeFile(garbage, Buffer.concat([gz.subarray(0, 10), Buffer.alloc(5000, 7)]));
    const { items } = await collect([misnamed, proper, garbage]);
    const ends = endsOf(items);
    expect(ends.map((e) => [e.shard.name, e.samples, e.error?.code])).toEqual([
      ['gz-as-plain', 6, undefined],
      ['proper', 6, undefined],
      ['garbage', 0, 'ERR_TAR'],
    ]);
    expect(ends[2].error?.message).toMatch(new RegExp(`^Shard ${garbage} is truncated or corrupt \\(.+\\): read 0 complete samples before the damage\\.`));
    for (const name of ['gz-as-plain', 'proper']) {
      expect(
        samplesOf(items)
          .filter((s) => s.shard.name === name)
          .map((s) => s.entry.filename),
      ).toEqual(FIXTURE_CLIPS.filter((c) => c.shard === 1).map((c) => c.file));
    }
  });

  it('a missing tar is a warning, emits nothing, and reading goes on', async () => {
    const missing = join(dir, 'shard-000404.tar');
    const { items, warnings } = await collect([missing, FIXTURE_SHARDS[0]]);
    expect(warnings.map((w) => [w.code, w.message])).toEqual([['ERR_TAR', `Shard ${missing} does not exist; skipped`]]);
    expect(items.every((i) => i.shard.url === FIXTURE_SHARDS[0] && i.shard.index === 1)).toBe(true);
    expect(samplesOf(items)).toHaveLength(6);
  });
});

describe('skipShard and skipKeys', () => {
  it('skipShard (sync or async) drops whole shards; indices stay positions in the url list', async () => {
    const seen: string[] = [];
    const { items } = await collect([...FIXTURE_SHARDS], {
      skipShard: async (shard) => {
        seen.push(`${shard.index}:${shard.name}`);
        return shard.name === 'shard-000000';
      },
    });
    expect(seen).toEqual(['0:shard-000000', '1:shard-000001']);
    expect(items.every((i) => i.shard.index === 1)).toBe(true);
    expect(endsOf(items)).toHaveLength(1);
  });

  it('skipKeys hides done samples but keeps counting them', async () => {
    const { items } = await collect([FIXTURE_SHARDS[0]], {
      skipKeys: () => new Set(['Q-r_s_33', 'b-tiny_E_0']),
    });
    expect(samplesOf(items).map((s) => [s.index, s.__key__])).toEqual([
      [1, 'Zz_9-Yy_7_45'],
      [2, 'a-b_c-d_120'],
      [4, 'corrupt_vid-D_60'],
      [5, 'dQw4w9WgXcQ_0'],
    ]);
    expect(endsOf(items)[0].samples).toBe(6);
  });

  it('an exception in a callback errors the stream with that exception', async () => {
    const boom = new Error('resume db unavailable');
    await expect(collect([FIXTURE_SHARDS[0]], { skipKeys: () => Promise.reject(boom) })).rejects.toBe(boom);
  });

  it('an exception in onWarning errors the stream; it is not mistaken for tar damage', async () => {
    const tar = join(dir, 'warn-throws.tar');
    await makeTar(tar, [{ name: 'a_1.mp4' }, { name: 'link_2.mp4', type: 'symlink', linkname: 'a_1.mp4' }, { name: 'b_3.mp4' }]);
    const items: StreamItem[] = [];
    const strict = new Error('warnings are fatal here');
    const run = async () => {
      for await (const item of readShards([tar], {
        onWarning: () => {
          throw strict;
        },
      }))
        items.push(item as StreamItem);
    };
    await expect(run()).rejects.toBe(strict);
    expect(items.some((i) => i.kind === 'shard-end')).toBe(false);
  });

  it('an exception in onWarning for a missing tar reaches the consumer as is', async () => {
    const strict = new Error('no missing shards allowed');
    const run = async () => {
      for await (const _ of readShards([join(dir, 'absent.tar')], {
        onWarning: () => {
          throw strict;
        },
      })) {
        // nothing
      }
    };
    await expect(run()).rejects.toBe(strict);
  });

  it('validates options', () => {
    expect(() => readShards(['x.tar'], { maxMemberBytes: -1 })).toThrow(
      'Expected integer of at least 0 for options.maxMemberBytes but received -1 of type number',
    );
    expect(() => readShards('x.tar' as unknown as string[])).toThrow(/expects an array of shard paths/);
  });
});

describe('backpressure and early close', () => {
  const MEMBER = 1024 * 1024;
  const COUNT = 48;
  let big: string;

  beforeAll(async () => {
    big = join(dir, 'big.tar');
    await makeTar(
      big,
      Array.from({ length: COUNT }, (_, i) => ({ name: `clip_${i}.mp4`, data: Buffer.alloc(MEMBER, i) })),
    );
  });

  it('reads only a few members ahead of a consumer that pulled one sample, and closes the file on destroy', async () => {
    const streams: ReadStream[] = [];
    const reader = readShards([big], {
      onWarning: () => {},
      openStream: (url) => {
        const rs = createReadStream(url);
        streams.push(rs);
        return rs;
      },
    });
    const it = reader[Symbol.asyncIterator]();
    const first = (await it.next()).value as Sample;
    expect(first.__key__).toBe('clip_0');
    expect(first.files.mp4.length).toBe(MEMBER);
    await sleep(300); // give a greedy reader every chance to run ahead
    expect(streams).toHaveLength(1);
    const rs = streams[0];
    // Whole tar is 48 MiB; one sample in hand, one read ahead, a few 64 KiB chunks in buffers.
    expect(rs.bytesRead).toBeLessThan(6 * MEMBER);
    expect(rs.bytesRead).toBeGreaterThan(MEMBER);
    const closed = new Promise<void>((resolve) => rs.once('close', () => resolve()));
    reader.destroy();
    await closed;
    expect(rs.destroyed).toBe(true);
  });

  it('breaking out of for-await closes the file too', async () => {
    let rs: ReadStream | undefined;
    let n = 0;
    for await (const item of readShards([big], {
      openStream: (url) => (rs = createReadStream(url)),
    })) {
      if ((item as StreamItem).kind === 'sample' && ++n === 2) break;
    }
    await sleep(50);
    expect(rs?.destroyed).toBe(true);
    expect(rs!.bytesRead).toBeLessThan(8 * MEMBER);
  });
});
