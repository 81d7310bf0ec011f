import { spawn, spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import {
  completedKeys,
  readFeatureShard,
  shardJournalPath,
  shardOutputPath,
  writeFeatureShards,
  type FeatureShardFormat,
  type ShardSummary,
} from '../../src/sinks/feature-shard.js';
import { formatFloat32 } from '../../src/sinks/json-format.js';
import type { StreamItem } from '../../src/types.js';
import { makeSample, recordFor, SHARD, shardEnd, shuffled } from '../helpers/feature-fixtures.js';

const N = 20;
const okIndices = Array.from({ length: N }, (_, i) => i).filter((i) => makeSample(i).failure === undefined);
let root: string;
let dirCount = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'clipstream-feature-shard-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  return join(root, `run-${dirCount++}`);
}

/** Writes the given items through a fresh writer and waits until everything is on disk. */
async function writeAll(outputDir: string, items: StreamItem[], format?: FeatureShardFormat, warnings: string[] = []): Promise<ShardSummary[]> {
  const writer = writeFeatureShards({ outputDir, format, onWarning: (w) => warnings.push(w.message) });
  for (const item of items) writer.write(item);
  writer.end();
  return writer.done;
}

function allItems(order = shuffled(N)): StreamItem[] {
  return [...order.map((i) => makeSample(i)), shardEnd(N)];
}

let reference: Buffer;
async function referenceShard(): Promise<Buffer> {
  if (!reference) {
    const dir = await freshDir();
    await writeAll(dir, allItems(Array.from({ length: N }, (_, i) => i)));
    reference = await readFile(shardOutputPath(dir, SHARD.name, 'msgpack'));
  }
  return reference;
}

describe('writeFeatureShards / readFeatureShard', () => {
  it.each(['msgpack', 'json'] as const)('round-trips a shuffled shard in tar order (%s), skipped and failed only in the summary', async (format) => {
    const dir = await freshDir();
    const done: ShardSummary[] = [];
    const writer = writeFeatureShards({ outputDir: dir, format, onShardDone: (s) => done.push(s) });
    for (const item of allItems()) writer.write(item);
    writer.end();
    const summaries = await writer.done;
    const out = shardOutputPath(dir, SHARD.name, format);
    expect(await readFeatureShard(out)).toEqual(okIndices.map(recordFor));
    expect(done).toEqual(summaries);
    expect(writer.summaries).toEqual(summaries);
    expect(summaries).toEqual([
      {
        shard: SHARD.name,
        url: SHARD.url,
        output: out,
        written: okIndices.length,
        resumed: 0,
        skipped: [3, 8, 13, 18].map((i) => ({
          key: `vid${i}_${i * 10}`,
          filename: `vid${i}_${i * 10}.mp4`,
          index: i,
          code: 'ERR_CLIP_TOO_SHORT',
          reason: `decode: clip vid${i}_${i * 10}.mp4 is 0.4 s, shorter than 1 s`,
        })),
        failed: [6].map((i) => ({
          key: `vid${i}_${i * 10}`,
          filename: `vid${i}_${i * 10}.mp4`,
          index: i,
          code: 'ERR_DECODE',
          reason: `decode: ffmpeg could not decode vid${i}_${i * 10}.mp4`,
        })),
      },
    ]);
    // Nothing but the final file is left: no journal, no temp file.
    expect(await readdir(dir)).toEqual([`${SHARD.name}.${format}`]);
  });

  it('gives the same bytes whatever order the samples arrive in', async () => {
    const dir = await freshDir();
    await writeAll(dir, allItems(shuffled(N, 99)));
    expect((await readFile(shardOutputPath(dir, SHARD.name))).equals(await referenceShard())).toBe(true);
  });

  it('writes JSON as nested lists of shortest float32 decimals', async () => {
    const dir = await freshDir();
    await writeAll(dir, [makeSample(0), shardEnd(1)], 'json');
    const parsed = JSON.parse(await readFile(shardOutputPath(dir, SHARD.name, 'json'), 'utf8'));
    const t = recordFor(0).visual_features[0].feat_array.layer_1;
    const rows = parsed[0].visual_features[0].feat_array.layer_1;
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveLength(3);
    expect(rows.flat().map(Math.fround)).toEqual(Array.from(t.data));
    expect(Object.keys(parsed[0])).toEqual(['filename', 'id', 'segment', 'visual_features', 'audio_features', '__key__']);
  });

  it('formats float32 values with the shortest decimal that maps back', () => {
    const values = new Float32Array(2000);
    for (let i = 0; i < values.length; i++) values[i] = ((Math.sin(i * 12.9898) * 43758.5453) % 1) * 10 ** ((i % 20) - 10);
    values.set([0.1, 1 / 3, 3.4028234663852886e38, 1.401298464324817e-45, 16777217, -0], 0);
    for (const x of values) {
      const s = formatFloat32(x);
      expect(Object.is(Math.fround(Number(s)), x)).toBe(true);
      const digits = s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
      if (x !== 0 && digits > 1) expect(Math.fround(Number(x.toPrecision(digits - 1)))).not.toBe(x);
    }
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(NaN)).toBe('null');
    // Python's json reads '-0' as the integer 0; '-0.0' keeps the sign on both sides.
    expect(formatFloat32(-0)).toBe('-0.0');
  });

  it('writes no final file before the ShardEnd, and finalises a damaged tar with what came', async () => {
    const dir = await freshDir();
    const writer = writeFeatureShards({ outputDir: dir });
    for (const i of [2, 0, 1]) await new Promise<void>((resolve, reject) => writer.write(makeSample(i), (e) => (e ? reject(e) : resolve())));
    expect(await readdir(dir)).toEqual([`.${SHARD.name}.journal`]);
    writer.end(shardEnd(3, SHARD, new ClipstreamError('ERR_TAR', 'Unexpected end of data in /data/shard-000007.tar')));
    const [summary] = await writer.done;
    expect(summary.tarError).toBe('Unexpected end of data in /data/shard-000007.tar');
    expect(summary.written).toBe(3);
    expect(await readFeatureShard(shardOutputPath(dir, SHARD.name))).toEqual([0, 1, 2].map(recordFor));
    expect(await readdir(dir)).toEqual([`${SHARD.name}.msgpack`]);
  });

  it('writes nothing for a missing tar with no samples, so a later run retries it', async () => {
    const dir = await freshDir();
    const [summary] = await writeAll(dir, [shardEnd(0, SHARD, new ClipstreamError('ERR_TAR', 'no such file /data/shard-000007.tar'))]);
    expect(summary).toMatchObject({ output: null, written: 0, tarError: 'no such file /data/shard-000007.tar' });
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('overwrites an existing final file atomically and writes an empty shard as an empty list', async () => {
    const dir = await freshDir();
    await writeAll(dir, allItems());
    await writeAll(dir, [shardEnd(0)]);
    expect(await readFile(shardOutputPath(dir, SHARD.name))).toEqual(Buffer.from([0x90]));
    expect(await readFeatureShard(shardOutputPath(dir, SHARD.name))).toEqual([]);
  });

  it('fails the stream when a sample arrives after its ShardEnd', async () => {
    const dir = await freshDir();
    await expect(writeAll(dir, [shardEnd(0), makeSample(0)])).rejects.toThrow(
      'a sample of shard shard-000007 arrived after its ShardEnd; a stage reordered the stream',
    );
  });

  it('keeps the journal when the stream ends without a ShardEnd, and warns', async () => {
    const dir = await freshDir();
    const warnings: string[] = [];
    await writeAll(dir, [makeSample(0), makeSample(1)], undefined, warnings);
    expect(warnings).toEqual([
      `shard ${SHARD.name}: the stream ended without its ShardEnd; kept ${shardJournalPath(dir, SHARD.name)} so a later run resumes it`,
    ]);
    expect(await completedKeys(dir, SHARD.name)).toEqual(new Set(['vid0_0', 'vid1_10']));
  });

  it('validates its options at once, naming the option', () => {
    expect(() => writeFeatureShards({ outputDir: '' })).toThrow("Expected non-empty string for options.outputDir but received '' of type string");
    expect(() => writeFeatureShards({ outputDir: 'x', format: 'csv' as FeatureShardFormat })).toThrow(
      "Expected one of 'msgpack', 'json' for options.format but received 'csv' of type string",
    );
  });

  it('rejects done when destroyed early, keeping the journal for a resume', async () => {
    const dir = await freshDir();
    const writer = writeFeatureShards({ outputDir: dir });
    await new Promise<void>((resolve, reject) => writer.write(makeSample(0), (e) => (e ? reject(e) : resolve())));
    writer.destroy();
    await expect(writer.done).rejects.toThrow(`feature shard writer for ${dir} was destroyed before all shards were finalised`);
    expect(await completedKeys(dir, SHARD.name)).toEqual(new Set(['vid0_0']));
  });

  it.each([
    ['.json', '[1, 2]', /record 0: not a feature record: expected a map/],
    ['.json', '{"a": 1}', /is not a feature shard: expected a JSON list of records/],
    ['.msgpack', 'hello, not msgpack', /is not a feature shard: not valid msgpack/],
    ['.msgpack', '\x81\xa1a\x01', /is not a feature shard: expected a msgpack list of records, found object/],
    ['.txt', '[]', /is not a feature shard: expected a \.msgpack or \.json file name/],
  ])('refuses a %s file that is not a feature shard (%s)', async (ext, content, message) => {
    const dir = await freshDir();
    const file = `${dir}${ext}`;
    await writeFile(file, Buffer.from(content, 'latin1'));
    const err = await readFeatureShard(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipstreamError);
    expect((err as ClipstreamError).code).toBe('ERR_FORMAT');
    expect((err as Error).message.startsWith(file)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe('journal and resume', () => {
  /** Writes samples `indices` and ends the stream without a ShardEnd, as a killed run would leave it. */
  async function partialRun(dir: string, indices: number[]): Promise<void> {
    await writeAll(
      dir,
      indices.map((i) => makeSample(i)),
      undefined,
      [],
    );
  }

  async function resume(dir: string, warnings: string[] = []): Promise<ShardSummary> {
    const done = await completedKeys(dir, SHARD.name);
    const todo = shuffled(N, 3).filter((i) => !done.has(makeSample(i).__key__));
    const [summary] = await writeAll(dir, [...todo.map((i) => makeSample(i)), shardEnd(N)], undefined, warnings);
    return summary;
  }

  it.each([
    ['a torn last entry', async (j: string) => truncate(j, (await stat(j)).size - 10)],
    [
      'a corrupt last entry',
      async (j: string) => {
        const b = await readFile(j);
        b[b.length - 5] ^= 0xff;
        await writeFile(j, b);
      },
    ],
    ['garbage after the last entry', async (j: string) => appendFile(j, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]))],
  ])('cuts away %s and redoes only that clip', async (_name, damage) => {
    const dir = await freshDir();
    await partialRun(dir, [0, 1, 2, 4, 5]);
    const journal = shardJournalPath(dir, SHARD.name);
    await damage(journal);
    const keys = await completedKeys(dir, SHARD.name);
    const warnings: string[] = [];
    const summary = await resume(dir, warnings);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^journal ${journal}: (torn|corrupt) .*dropped the last \\d+ bytes after ${keys.size} good entries`));
    expect(summary.resumed).toBe(keys.size);
    expect(keys.size).toBe(_name === 'garbage after the last entry' ? 5 : 4);
    expect((await readFile(shardOutputPath(dir, SHARD.name))).equals(await referenceShard())).toBe(true);
    expect(await readdir(dir)).toEqual([`${SHARD.name}.msgpack`]);
  });

  it('dedupes a sample written again after a resume, and removes a temp file left by a killed finalise', async () => {
    const dir = await freshDir();
    await partialRun(dir, [0, 1, 3]);
    // As if a process (long dead: pids never get this high) was killed while writing the final file.
    await writeFile(join(dir, `.${SHARD.name}.msgpack.tmp-99999999-deadbeef`), 'half a shard');
    const [summary] = await writeAll(dir, allItems());
    expect(summary.resumed).toBe(3);
    expect(summary.skipped.map((s) => s.index)).toEqual([3, 8, 13, 18]);
    expect((await readFile(shardOutputPath(dir, SHARD.name))).equals(await referenceShard())).toBe(true);
    expect(await readdir(dir)).toEqual([`${SHARD.name}.msgpack`]);
  });

  /** Runs the slow writer in a child process and SIGKILLs it once `ackLine` appears on its stdout. */
  async function killChildAt(dir: string, ackLine: string): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/slow-writer.ts', dir, String(N), '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let seen = false;
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === ackLine) {
        seen = true;
        child.kill('SIGKILL');
        break;
      }
    }
    const signal = await exited;
    if (!seen) throw new Error(`slow writer exited (${signal}) before printing '${ackLine}': ${stderr}`);
    expect(signal).toBe('SIGKILL');
  }

  it.each([
    ['before any sample', 'ready', 0],
    ['after 1 sample', 'ack 1', 1],
    ['after 7 samples', 'ack 7', 7],
    ['after every sample but before the ShardEnd', `ack ${N}`, N],
  ])('a run SIGKILLed %s resumes to a byte-identical shard', async (_when, ackLine, acked) => {
    const dir = await freshDir();
    await killChildAt(dir, ackLine);
    await expect(stat(shardOutputPath(dir, SHARD.name))).rejects.toThrow(/ENOENT/);
    const keys = await completedKeys(dir, SHARD.name);
    // At most the one clip in flight at the kill is redone.
    expect(keys.size).toBeGreaterThanOrEqual(acked);
    expect(keys.size).toBeLessThanOrEqual(acked + 1);
    const summary = await resume(dir);
    expect(summary.resumed).toBe(keys.size);
    expect((await readFile(shardOutputPath(dir, SHARD.name))).equals(await referenceShard())).toBe(true);
    expect(await readdir(dir)).toEqual([`${SHARD.name}.msgpack`]);
  });
});

const PY = '/usr/bin/python3';
const noPython = spawnSync(PY, ['-c', 'import msgpack, msgpack_numpy'], { encoding: 'utf8' }).status !== 0;

it.skipIf(noPython)(
  `Python reads a whole shard, msgpack with msgpack_numpy and JSON with json, to the same float32 arrays${noPython ? ` (skipped: ${PY} cannot import msgpack_numpy)` : ''}`,
  async () => {
    const dir = await freshDir();
    await writeAll(dir, allItems());
    await writeAll(dir, allItems(), 'json');
    const r = spawnSync(
      PY,
      [
        '-c',
        `
import sys, json, msgpack, msgpack_numpy as m, numpy as np
recs = msgpack.unpackb(open(sys.argv[1], 'rb').read(), object_hook=m.decode)
js = json.load(open(sys.argv[2]))
same = all(np.asarray(j[f][0]['feat_array'][k], dtype=np.float32).tobytes() == v.tobytes()
           and np.asarray(j[f][0]['feat_array'][k], dtype=np.float32).shape == v.shape
           for r, j in zip(recs, js) for f in ('visual_features', 'audio_features') for k, v in r[f][0]['feat_array'].items())
print(json.dumps({'same': same, 'n': [len(recs), len(js)],
                  'recs': [[r['filename'], str(r['visual_features'][0]['feat_array']['layer_1'].dtype), list(r['visual_features'][0]['feat_array']['layer_1'].shape)] for r in recs]}))
`,
        shardOutputPath(dir, SHARD.name, 'msgpack'),
        shardOutputPath(dir, SHARD.name, 'json'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      same: true,
      n: [okIndices.length, okIndices.length],
      recs: okIndices.map((i) => [recordFor(i).filename, 'float32', [2, 3]]),
    });
  },
);
