/**
 * The decompressors of compressed shards run through the process runner (src/media/process.ts):
 * a hung one is killed by its watchdog, one killed from outside is a typed failure, and neither
 * leaves a process behind or goes uncounted.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createReadStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARDS } from '../../fixtures/index.js';
import { ClipstreamError } from '../../src/errors.js';
import { liveChildProcesses, ToolFailure } from '../../src/media/process.js';
import { spawnHelperPid } from '../../src/media/spawner.js';
import { decompressed } from '../../src/shards/decompress.js';
import { readShards } from '../../src/shards/tar-reader.js';
import type { ShardEnd, StreamItem } from '../../src/types.js';
import { procState } from '../helpers/proc.js';

let dir: string;
let xzShard: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-decompress-'));
  xzShard = join(dir, 'shard-000001.tar');
  await writeFile(xzShard, execFileSync('xz', ['-c'], { input: await readFile(FIXTURE_SHARDS[1]!), maxBuffer: 1 << 28 }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `body` with these environment variables set, then puts them back. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The pids of this process's tool children named `name` (spawned directly or from the spawn helper). */
async function childrenNamed(name: string): Promise<number[]> {
  const parents = new Set([process.pid, spawnHelperPid()].filter((p): p is number => p !== null));
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === name && parents.has(ppid)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function shardEnds(urls: string[]): Promise<ShardEnd[]> {
  const items: StreamItem[] = [];
  for await (const item of readShards(urls, { onWarning: () => {} })) items.push(item as StreamItem);
  return items.filter((i): i is ShardEnd => i.kind === 'shard-end');
}

describe('decompressors through the process runner', () => {
  it('a hung decompressor is killed by the watchdog: the shard fails with a typed error naming it, and no process is left', async () => {
    // An `xz` that takes the shard and never answers (a tool stuck on a dead NFS read, say).
    const bin = join(dir, 'hung-bin');
    await mkdir(bin, { recursive: true });
    const pidFile = join(dir, 'hung.pid');
    await writeFile(join(bin, 'xz'), `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 600\n`);
    await chmod(join(bin, 'xz'), 0o755);
    const started = Date.now();
    const ends = await withEnv({ PATH: `${bin}:${process.env.PATH}`, CLIPSTREAM_STALL_TIMEOUT_MS: '1500' }, () => shardEnds([xzShard, FIXTURE_SHARDS[0]!]));
    const error = ends[0]!.error!;
    expect(error).toBeInstanceOf(ClipstreamError);
    expect(error.message).toContain(xzShard);
    expect(error.message).toMatch(/xz -dc failed: xz stalled \(no output for 2 s\) and was killed/);
    expect(error.cause).toBeInstanceOf(ToolFailure);
    expect((error.cause as ToolFailure).code).toBe('ERR_DECODE_TIMEOUT');
    expect((error.cause as ToolFailure).where?.file).toBe(xzShard);
    expect(Date.now() - started).toBeLessThan(60_000);
    // The next shard is read as usual.
    expect(ends[1]!.error).toBeUndefined();
    expect(ends[1]!.samples).toBe(6);
    expect(liveChildProcesses()).toBe(0);
    expect(procState(Number((await readFile(pidFile, 'utf8')).trim()))).toBeNull();
  });

  it('a decompressor killed from outside fails the stream with a typed error naming the shard, and no process is left', async () => {
    const opened = await decompressed(createReadStream(xzShard), xzShard);
    expect(opened.compression).toBe('xz');
    const it = (opened.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    // The reader has stopped reading: xz waits on its full stdout pipe.
    const pids = await childrenNamed('xz');
    expect(pids).toHaveLength(1);
    expect(liveChildProcesses()).toBe(1);
    process.kill(pids[0]!, 'SIGKILL');
    let failure: unknown = null;
    try {
      for (;;) if ((await it.next()).done) break;
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(ToolFailure);
    const e = failure as ToolFailure;
    expect(e).toBeInstanceOf(ClipstreamError);
    expect(e.message).toBe(`${xzShard}: xz -dc failed: xz was killed by SIGKILL`);
    expect(e.signal).toBe('SIGKILL');
    // Killed by someone else (the OOM killer, an operator): worth another try.
    expect(e.transient).toBe(true);
    expect(e.where).toEqual({ shard: xzShard, file: xzShard });
    opened.destroy();
    expect(liveChildProcesses()).toBe(0);
    expect(procState(pids[0]!)).toBeNull();
  });

  it('a reader that stops early takes the decompressor with it', async () => {
    const opened = await decompressed(createReadStream(xzShard), xzShard);
    const it = (opened.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    const pids = await childrenNamed('xz');
    expect(pids).toHaveLength(1);
    opened.destroy();
    await new Promise((resolve) => opened.stream.once('close', resolve));
    expect(liveChildProcesses()).toBe(0);
    expect(procState(pids[0]!)).toBeNull();
  });
});
