/**
 * Extract's stages one by one: their contracts (a wrong order fails at build, naming both
 * stages), the entry join reading the sidecar beside an http(s) shard (and falling back to the
 * member names, with one warning, when there is none), and decode's onError.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS_DIR, FIXTURE_SHARD_JSONS, FIXTURE_SHARDS } from '../../fixtures/index.js';
import { makeTar, withTmpDir } from '../helpers/tar.js';
import type { ClipstreamError } from '../../src/errors.js';
import { featureStage } from '../../src/extract/stages.js';
import { Extractor } from '../../src/infer/extractor.js';
import { shippedModelsDir } from '../../src/models/models-dir.js';
import { decodeClips } from '../../src/media/decode-stage.js';
import { checkStages } from '../../src/stage/contract.js';
import { joinEntries, sidecarLocation } from '../../src/shards/entry-join.js';
import { readShards, readTarShards } from '../../src/shards/tar-reader.js';
import type { Sample, ShardEnd, StreamItem } from '../../src/types.js';

async function collect(stream: Readable): Promise<StreamItem[]> {
  const items: StreamItem[] = [];
  for await (const item of stream) items.push(item as StreamItem);
  return items;
}

describe('extract stage contracts', () => {
  let visual: Extractor;
  beforeAll(async () => {
    visual = await Extractor.load(join(shippedModelsDir(), 'slowfast_small.onnx'), { device: 'cpu', intraOpThreads: 1 });
  });
  afterAll(async () => {
    await visual?.close();
  });

  it('the order extract uses passes; a wrong order fails at build, naming both stages', () => {
    const stages = () => [readTarShards([FIXTURE_SHARDS[0]!]), joinEntries(), decodeClips({ audio: false }), featureStage(visual, 2)];
    const [read, join, decode, features] = stages();
    expect(checkStages([read, join, decode, features])).toHaveLength(4);
    expect(() => checkStages([read, join, features, decode])).toThrow("stage 'visual features' needs 'video', which stage 'decode' adds only after it");
    expect(() => checkStages([join, read])).toThrow("stage 'join entries' needs 'members', which stage 'read shards' adds only after it");
    expect(() => checkStages([decode, read])).toThrow("stage 'decode' needs 'files', which stage 'read shards' adds only after it");
    for (const s of [read, join, decode, features]) s!.destroy();
  });
});

describe('the entry join', () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  // The fixture's json with other ids and segments than the member names give: proof it was read.
  let sidecar: string;
  beforeAll(async () => {
    const list = JSON.parse(await readFile(FIXTURE_SHARD_JSONS[0]!, 'utf8')) as Array<{ filename: string; id: string; segment: [number, number] }>;
    sidecar = JSON.stringify([
      ...list.map((e, i) => ({ ...e, id: `remote-${i}`, segment: [i, i + 0.5] })),
      { filename: 'not-in-tar_5.mp4', id: 'x', segment: [5, 15] },
    ]);
    const tar = await readFile(FIXTURE_SHARDS[0]!);
    server = createServer((req, res) => {
      requests.push(req.url!);
      if (req.url === '/a/shard-000000.tar' || req.url === '/b/shard-000000.tar') res.writeHead(200, { 'content-length': tar.length }).end(tar);
      else if (req.url === '/a/shard-000000.json') res.writeHead(200).end(sidecar);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('looks beside local and http(s) shards, and nowhere for pipe:', () => {
    const at = (url: string) => sidecarLocation({ url, name: 'shard-000003', index: 0 });
    expect(at('/d/shard-000003.tar')).toBe('/d/shard-000003.json');
    expect(at('https://h/p/shard-000003.tar.gz?sig=1')).toBe('https://h/p/shard-000003.json?sig=1');
    expect(at('pipe:cat /d/shard-000003.tar')).toBeNull();
  });

  it('reads the sidecar beside an http shard: its ids and segments, and the clips it lists that the tar lacks', async () => {
    const warnings: ClipstreamError[] = [];
    const items = await collect(readShards([`${base}/a/shard-000000.tar`], { onWarning: (w) => warnings.push(w) }));
    const samples = items.filter((i): i is Sample => i.kind === 'sample');
    expect(samples.map((s) => s.entry.id)).toEqual(samples.map((_, i) => `remote-${i}`));
    expect(samples[1]!.entry.segment).toEqual([1, 1.5]);
    const end = items.at(-1) as ShardEnd;
    expect(end.incomplete).toEqual({ reason: `1 of 7 clips listed in ${base}/a/shard-000000.json are not in the tar`, missing: ['not-in-tar_5.mp4'] });
    expect(warnings.map((w) => w.message)).toEqual([
      `Shard ${base}/a/shard-000000.tar is incomplete: 1 of 7 clips listed in ${base}/a/shard-000000.json are not in the tar (not-in-tar_5.mp4)`,
    ]);
    expect(requests).toContain('/a/shard-000000.json');
  });

  it('an http shard without a sidecar (404): the member names, and one warning naming the URL', async () => {
    const warnings: ClipstreamError[] = [];
    const items = await collect(readShards([`${base}/b/shard-000000.tar`], { onWarning: (w) => warnings.push(w) }));
    const samples = items.filter((i): i is Sample => i.kind === 'sample');
    expect(samples).toHaveLength(6);
    // `{id}_{start}` and a 10 s segment, as ACAV names clips (the fixture's json says otherwise for b-tiny_E_0).
    for (const s of samples) {
      const [, id, start] = /^(.+)_(\d+)$/.exec(s.__key__)!;
      expect(s.entry).toEqual({ filename: `${s.__key__}.mp4`, id, segment: [Number(start), Number(start) + 10] });
    }
    expect(warnings.map((w) => w.message)).toEqual([
      `Shard ${base}/b/shard-000000.tar has no sidecar at ${base}/b/shard-000000.json (HTTP 404); clip ids and segments will be parsed from the member names`,
    ]);
    expect((items.at(-1) as ShardEnd).incomplete).toBeUndefined();
  });
});

describe('the sidecar inside the tar', () => {
  it('a pipe: shard whose first member is shard-NNNNNN.json: read as the sidecar, not passed on as a sample', async () => {
    await withTmpDir(async (dir) => {
      const tar = join(dir, 'shard-000004.tar');
      const clips = ['Q-r_s_33.mp4', 'a-b_c-d_120.mp4'];
      const list = clips.map((f, i) => ({ filename: f, id: `inside-${i}`, segment: [i * 10, i * 10 + 10] }));
      await makeTar(tar, [
        { name: 'shard-000004.json', data: JSON.stringify(list) },
        ...(await Promise.all(clips.map(async (f) => ({ name: f, data: await readFile(join(FIXTURE_CLIPS_DIR, f)) })))),
      ]);
      const warnings: ClipstreamError[] = [];
      const items = await collect(readShards([`pipe:cat ${tar}`], { onWarning: (w) => warnings.push(w) }));
      const samples = items.filter((i): i is Sample => i.kind === 'sample');
      expect(samples.map((s) => [s.index, s.__key__, s.entry])).toEqual([
        [1, 'Q-r_s_33', list[0]],
        [2, 'a-b_c-d_120', list[1]],
      ]);
      expect(items.at(-1)).toEqual({ kind: 'shard-end', shard: { url: `pipe:cat ${tar}`, name: 'shard-000004', index: 0 }, samples: 3 });
      expect(warnings).toEqual([]);
    });
  });
});

describe('decode onError', () => {
  const sample = (): Sample => ({
    kind: 'sample',
    __key__: 'k_0',
    __url__: 'x.tar',
    shard: { url: 'x.tar', name: 'x', index: 0 },
    index: 0,
    files: { txt: Buffer.from('no video here') },
    entry: { filename: 'k_0.mp4', id: 'k', segment: [0, 10] },
  });
  const sink = (out: StreamItem[]) =>
    new Writable({
      objectMode: true,
      write(item: StreamItem, _e, cb) {
        out.push(item);
        cb();
      },
    });

  it("'skip' (the default) marks the item failed through failItem and passes it on", async () => {
    const out: StreamItem[] = [];
    await pipeline(Readable.from([sample()]), decodeClips(), sink(out));
    const f = (out[0] as Sample).failure!;
    expect([f.stage, f.status, f.error.code, f.error.where.key, f.error.where.shard]).toEqual(['decode', 'failed', 'ERR_DECODE', 'k_0', 'x.tar']);
    expect(f.error.message).toBe('k_0: no video member (fields: txt)');
  });

  it("'throw' stops the pipeline with the item's error; a function decides per item", async () => {
    await expect(pipeline(Readable.from([sample()]), decodeClips({ onError: 'throw' }), sink([]))).rejects.toThrow('k_0: no video member (fields: txt)');
    const seen: string[] = [];
    const out: StreamItem[] = [];
    await pipeline(
      Readable.from([sample()]),
      decodeClips({
        onError: (e, key) => {
          seen.push(`${key}: ${e.code}`);
          return 'skip';
        },
      }),
      sink(out),
    );
    expect(seen).toEqual(['k_0: ERR_DECODE']);
    expect((out[0] as Sample).failure?.status).toBe('failed');
  });
});
