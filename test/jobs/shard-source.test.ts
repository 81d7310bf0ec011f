import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extract } from '../../src/jobs/extract.js';
import { liveChildProcesses } from '../../src/media/process.js';
import { expandShardUrls, openShard, ShardSourceError, shardFileName } from '../../src/shards/shard-source.js';
import { featureShards, makeSmallShards } from '../helpers/scale-shards.js';
import { memberOffsets } from '../helpers/tar.js';
import { completedKeys } from '../../src/sinks/feature-shard.js';
import { existsSync } from 'node:fs';

let dir: string;
let shards: string[];
let server: Server;
let base: string;
/** Range headers the server saw, per path. */
const ranges = new Map<string, string[]>();
const hits = new Map<string, number>();

/**
 * A shard server with bad habits: /files/ serves with Range support, /drop/ cuts the first two
 * connections a third of the way in, /norange/ ignores Range and drops once, /flaky/ answers
 * 503 twice, /down/ always 503, anything else 404.
 */
async function serve(): Promise<void> {
  server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    const [, mode, name] = url.pathname.split('/');
    const n = (hits.get(url.pathname) ?? 0) + 1;
    hits.set(url.pathname, n);
    if (req.headers.range) ranges.set(url.pathname, [...(ranges.get(url.pathname) ?? []), req.headers.range]);
    const file = shards.find((s) => basename(s) === name);
    if (mode === 'down' || (mode === 'flaky' && n <= 2)) {
      res.writeHead(503, 'Service Unavailable').end();
      return;
    }
    if (!file || !['files', 'drop', 'norange', 'flaky'].includes(mode!)) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    const data = await readFile(file);
    const m = mode !== 'norange' ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
    const start = m ? Number(m[1]) : 0;
    const body = data.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
    const cut = (mode === 'drop' && n <= 2) || (mode === 'norange' && n === 1);
    if (cut) {
      res.write(body.subarray(0, Math.floor(body.length / 3)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-remote-'));
  shards = await makeSmallShards(dir, 4, 1);
  await serve();
}, 60_000);
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

const FAST = { retries: 3, retryDelayMs: 10 };

describe('openShard over HTTP', () => {
  it.each([
    ['a plain GET', 'files'],
    ['dropped connections, resumed with Range', 'drop'],
    ['a server that ignores Range (the bytes already read are dropped)', 'norange'],
    ['two 503s, then success', 'flaky'],
  ])('%s gives the exact bytes of the file', async (_name, mode) => {
    const bytes = await buffer(openShard(`${base}/${mode}/${basename(shards[0]!)}`, FAST));
    expect(bytes.equals(await readFile(shards[0]!))).toBe(true);
  });

  it('resumed from where each dropped connection stopped', () => {
    const size = ranges.get(`/drop/${basename(shards[0]!)}`);
    expect(size?.length).toBe(2);
    const offsets = size!.map((r) => Number(/bytes=(\d+)-/.exec(r)![1]));
    expect(offsets[0]).toBeGreaterThan(0);
    expect(offsets[1]).toBeGreaterThan(offsets[0]!);
  });

  it('a 404 is "does not exist" (ENOENT), not retried', async () => {
    const url = `${base}/files/nope.tar`;
    const err = await buffer(openShard(url, FAST)).catch((e: NodeJS.ErrnoException) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect((err as Error).message).toBe(`shard ${url}: HTTP 404 Not Found`);
    expect(hits.get('/files/nope.tar')).toBe(1);
  });

  it('a server that stays down fails after the retries, naming the URL', async () => {
    const url = `${base}/down/${basename(shards[0]!)}`;
    await expect(buffer(openShard(url, FAST))).rejects.toThrow(`shard ${url}: HTTP 503 Service Unavailable after 4 attempts`);
  });
});

describe('openShard with pipe:', () => {
  it('pipe:cat streams the file', async () => {
    const bytes = await buffer(openShard(`pipe:cat ${shards[1]}`));
    expect(bytes.equals(await readFile(shards[1]!))).toBe(true);
  });

  it('a command that exits non-zero fails the stream, with its exit code and stderr', async () => {
    const url = `pipe:cat ${shards[1]} && echo 'access denied' >&2 && exit 3`;
    await expect(buffer(openShard(url))).rejects.toThrow(`shard ${url}: the command exited with code 3 (stderr: access denied)`);
  });

  it("a command that hangs is killed by the process runner's watchdog: a typed error naming the shard, no process left", async () => {
    const url = 'pipe:exec sleep 600';
    const before = process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
    process.env.CLIPSTREAM_STALL_TIMEOUT_MS = '1500';
    try {
      const stream = openShard(url);
      await expect(buffer(stream)).rejects.toThrow(`shard ${url}: the command stalled (no output for 2 s) and was killed`);
      await expect(buffer(openShard(url))).rejects.toBeInstanceOf(ShardSourceError);
    } finally {
      if (before === undefined) delete process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
      else process.env.CLIPSTREAM_STALL_TIMEOUT_MS = before;
    }
    expect(liveChildProcesses()).toBe(0);
  });
});

describe('shard lists', () => {
  it.each([
    ['a::b lists with braces in each part', 'a-{0..1}.tar::pipe:cat b-{2..3}.tar', ['a-0.tar', 'a-1.tar', 'pipe:cat b-2.tar', 'pipe:cat b-3.tar']],
    ['http with braces', 'http://h/s-{000..002}.tar', ['http://h/s-000.tar', 'http://h/s-001.tar', 'http://h/s-002.tar']],
    ['an IPv6 host is not a list separator', 'http://[::1]:8080/s-{0..1}.tar', ['http://[::1]:8080/s-0.tar', 'http://[::1]:8080/s-1.tar']],
    ['duplicates across parts dropped', 'x.tar::x.tar::y.tar', ['x.tar', 'y.tar']],
  ])('%s', (_name, pattern, expected) => {
    expect(expandShardUrls(pattern)).toEqual(expected);
  });

  it.each([
    ['/data/shard-000001.tar', 'shard-000001.tar'],
    ['https://bucket.example/ds/shard-000002.tar?sig=abc', 'shard-000002.tar'],
    ['pipe:aws s3 cp s3://bucket/ds/shard-000003.tar -', 'shard-000003.tar'],
    ["pipe:gsutil cat 'gs://b/shard-000004.tar.gz'", 'shard-000004.tar.gz'],
  ])('%s is named after %s', (url, name) => {
    expect(shardFileName(url)).toBe(name);
  });
});

describe('extract over remote shards', () => {
  it('http (with drops) and pipe:cat shards give the bytes a local run gives; a 404 shard is missing and a failing pipe is named in the log', async () => {
    // Remote shards have no json beside them to join: the reference run reads copies without it.
    const local = join(dir, 'local');
    await mkdir(local);
    for (const s of shards) await copyFile(s, join(local, basename(s)));
    await extract({ tarPath: join(local, 'shard-{000000..000003}.tar'), outputDir: join(dir, 'ref'), device: 'cpu', windowSeconds: 4, onWarning: () => {} });

    const out = join(dir, 'remote');
    const warnings: string[] = [];
    const tarPath = `${base}/drop/shard-{000000..000001}.tar::pipe:cat ${join(local, 'shard-{000002..000003}.tar')}::${base}/files/shard-000009.tar::pipe:false ${join(local, 'shard-000007.tar')}`;
    const report = await extract({ tarPath, outputDir: out, device: 'cpu', windowSeconds: 4, onWarning: (w) => warnings.push(w.message) });
    const ref = await featureShards(join(dir, 'ref'));
    const got = await featureShards(out);
    expect([...got.keys()]).toEqual([...ref.keys()]);
    for (const [name, bytes] of ref) expect(got.get(name)!.equals(bytes), name).toBe(true);

    const byShard = new Map(report.shards.map((s) => [s.shard, s]));
    expect(byShard.get('shard-000009')?.status).toBe('missing');
    expect(warnings.some((w) => w.includes(`${base}/files/shard-000009.tar`) && w.includes('does not exist'))).toBe(true);
    const failed = byShard.get('shard-000007')!;
    expect(failed.status).toBe('failed (source)');
    expect(failed.tarError).toContain(`shard pipe:false ${join(local, 'shard-000007.tar')}: the command exited with code 1`);
    const log = JSON.parse(await readFile(report.logPath, 'utf8'));
    expect(log.shard_results.find((s: { shard: string }) => s.shard === 'shard-000007').tarError).toContain('the command exited with code 1');
  }, 90_000);
});

describe('a shard whose source fails part-way', () => {
  it('is not written as final: the journal keeps the clips read, and the next run resumes them to the bytes of an uninterrupted run', async () => {
    const work = join(dir, 'partial');
    const [tar] = await makeSmallShards(work, 2, 2);
    const name = basename(tar!, '.tar');
    const ref = join(work, 'ref');
    await mkdir(join(work, 'nojson'));
    await copyFile(tar!, join(work, 'nojson', basename(tar!)));
    await extract({ tarPath: join(work, 'nojson', basename(tar!)), outputDir: ref, device: 'cpu', windowSeconds: 4, onWarning: () => {} });
    // The command delivers the first member and a little of the second, then fails.
    const cut = memberOffsets(await readFile(tar!))[1]!.header + 1024;
    const out = join(work, 'out');
    const first = await extract({ tarPath: `pipe:head -c ${cut} ${tar} && exit 7`, outputDir: out, device: 'cpu', windowSeconds: 4, onWarning: () => {} });
    expect(first.shards[0]).toMatchObject({ shard: name, status: 'failed (source)' });
    expect(first.shards[0]!.tarError).toContain('the command exited with code 7');
    expect(existsSync(join(out, `${name}.msgpack`))).toBe(false);
    expect((await completedKeys(out, name)).size).toBe(1);
    const again = await extract({ tarPath: `pipe:cat ${tar}`, outputDir: out, device: 'cpu', windowSeconds: 4, onWarning: () => {} });
    expect(again.shards[0]).toMatchObject({ status: 'written', resumed: 1, written: 2 });
    expect((await readFile(join(out, `${name}.msgpack`))).equals(await readFile(join(ref, `${name}.msgpack`)))).toBe(true);
  }, 90_000);
});
