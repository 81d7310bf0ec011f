import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extract } from '../../src/jobs/extract.js';
import { describeHolder, lockHeldElsewhere, removeDeadTemps, tryLock, waitForLock } from '../../src/util/lock.js';
import { startCli } from '../helpers/run-cli.js';
import { featureShards, makeSmallShards, runLogs } from '../helpers/scale-shards.js';

const PYTHON = '/usr/bin/python3';
const HAS_PY = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import msgpack, msgpack_numpy']).status === 0;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that was alive a moment ago and is not any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('tryLock', () => {
  it('creates the lock with host, pid and start time, and a second taker is told who holds it', async () => {
    const path = join(dir, 'a.msgpack.lock');
    const got = await tryLock(path, { owner: 'extract' });
    if (!('lock' in got)) throw new Error('expected the lock');
    const info = JSON.parse(await readFile(path, 'utf8'));
    expect(info).toMatchObject({ host: hostname(), pid: process.pid, owner: 'extract' });
    expect(Date.now() - Date.parse(info.started)).toBeLessThan(60_000);
    const second = await tryLock(path);
    if (!('heldBy' in second)) throw new Error('expected the lock to be held');
    expect(describeHolder(second.heldBy)).toBe(`host ${hostname()}, pid ${process.pid}, since ${info.started} (extract)`);
    await got.lock.release();
    expect(existsSync(path)).toBe(false);
    await got.lock.release();
  });

  it('takes over the lock of a dead process on this host and says whose it was', async () => {
    const path = join(dir, 'dead.lock');
    const pid = deadPid();
    await writeFile(path, JSON.stringify({ host: hostname(), pid, started: '2020-01-01T00:00:00.000Z' }));
    const got = await tryLock(path);
    if (!('lock' in got)) throw new Error('expected a takeover');
    expect(got.tookOver).toEqual({ host: hostname(), pid, started: '2020-01-01T00:00:00.000Z' });
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid);
    await got.lock.release();
  });

  it("another host's lock is live while its heartbeat is fresh, stale once the mtime is older than staleMs", async () => {
    const path = join(dir, 'remote.lock');
    await writeFile(path, JSON.stringify({ host: 'some-other-node', pid: 1, started: '2026-01-01T00:00:00.000Z' }));
    expect('heldBy' in (await tryLock(path, { staleMs: 60_000 }))).toBe(true);
    expect(await lockHeldElsewhere(path, 60_000)).toBe(true);
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    expect(await lockHeldElsewhere(path, 60_000)).toBe(false);
    const got = await tryLock(path, { staleMs: 60_000 });
    if (!('lock' in got)) throw new Error('expected a takeover');
    expect(got.tookOver?.host).toBe('some-other-node');
    await got.lock.release();
  });

  it('of many takers racing for one (stale) lock, exactly one wins', async () => {
    for (const stale of [false, true]) {
      const path = join(dir, `race-${stale}.lock`);
      if (stale) await writeFile(path, JSON.stringify({ host: hostname(), pid: deadPid(), started: 'x' }));
      const all = await Promise.all(Array.from({ length: 16 }, () => tryLock(path)));
      const winners = all.filter((g) => 'lock' in g);
      expect(winners.length).toBe(1);
      for (const w of winners) if ('lock' in w) await w.lock.release();
    }
  });

  it('never removes a lock that is no longer its own', async () => {
    const path = join(dir, 'stolen.lock');
    const got = await tryLock(path);
    if (!('lock' in got)) throw new Error('expected the lock');
    const theirs = JSON.stringify({ host: 'other', pid: 2, started: 'y' });
    await writeFile(path, theirs);
    await got.lock.release();
    expect(await readFile(path, 'utf8')).toBe(theirs);
  });

  it('the holder refreshes the mtime while it holds the lock', async () => {
    const path = join(dir, 'beat.lock');
    const got = await tryLock(path, { heartbeatMs: 1000 });
    if (!('lock' in got)) throw new Error('expected the lock');
    const old = new Date(Date.now() - 3600_000);
    await utimes(path, old, old);
    await new Promise((r) => setTimeout(r, 1600));
    expect(Date.now() - (await stat(path)).mtimeMs).toBeLessThan(600_000);
    await got.lock.release();
  });

  it('waitForLock waits for the holder, or gives up when told the unit is done', async () => {
    const path = join(dir, 'wait.lock');
    const first = await tryLock(path);
    if (!('lock' in first)) throw new Error('expected the lock');
    expect(await waitForLock(path, { pollMs: 20, giveUp: async () => true })).toBeNull();
    const waiting = waitForLock(path, { pollMs: 20 });
    setTimeout(() => void first.lock.release(), 100);
    const second = await waiting;
    expect(second).not.toBeNull();
    await second!.release();
  });
});

describe('removeDeadTemps and unit locks', () => {
  it("keeps a dead-pid temp whose unit another machine's live run has locked, removes it once the lock is gone", async () => {
    const d = await mkdtemp(join(dir, 'temps-'));
    const temp = join(d, `.shard-000000.msgpack.tmp-${deadPid()}-0123abcd`);
    await writeFile(temp, 'in flight on another machine');
    await writeFile(join(d, 'shard-000000.msgpack.lock'), JSON.stringify({ host: 'node-7', pid: 99, started: 'z' }));
    expect(await removeDeadTemps(d)).toBe(0);
    expect(existsSync(temp)).toBe(true);
    await rm(join(d, 'shard-000000.msgpack.lock'));
    expect(await removeDeadTemps(d)).toBe(1);
    expect(existsSync(temp)).toBe(false);
  });
});

describe('two extract runs on one out_path', () => {
  it('started together, they never write the same shard: every shard decodes in Python and holds the right clips', async () => {
    const work = await mkdtemp(join(dir, 'two-'));
    const shards = await makeSmallShards(work, 6, 1);
    const pattern = join(work, 'shards', 'shard-{000000..000005}.tar');
    await extract({ tarPath: pattern, outputDir: join(work, 'ref'), device: 'cpu', windowSeconds: 4, onWarning: () => {} });
    const out = join(work, 'out');
    const args = ['extract', `--tar_path=${pattern}`, `--out_path=${out}`, '--quiet', '--device=cpu', '--window_seconds=4', '--batch_size=1'];
    const runs = [startCli(args), startCli(args)].map(
      (child) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          let stderr = '';
          child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('close', (code) => resolve({ code, stderr }));
        }),
    );
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr).toBe(0);

    const ref = await featureShards(join(work, 'ref'));
    const got = await featureShards(out);
    expect(got.size).toBe(shards.length);
    for (const [name, bytes] of ref) expect(got.get(name)!.equals(bytes), name).toBe(true);
    // Each shard written by exactly one of the two runs; the other skipped it (output exists or locked).
    const logs = await runLogs(out);
    expect(logs.length).toBe(2);
    const written = logs.flatMap((l) => l.shard_results.filter((s: { status: string }) => s.status === 'written').map((s: { shard: string }) => s.shard));
    expect(written.sort()).toEqual([...ref.keys()].map((n) => n.replace('.msgpack', '')));
    for (const l of logs) {
      for (const s of l.shard_results) {
        expect(['written', 'skipped (output exists)', 'skipped (locked)']).toContain(s.status);
        if (s.status === 'skipped (locked)')
          expect(s.lockedBy).toMatch(/^locked by another run: host .+, pid \d+, since .+ \(extract\) holds .+\.msgpack\.lock$/);
      }
    }
    expect((await readdir(out)).filter((f) => f.endsWith('.lock') || f.endsWith('.journal') || f.includes('.tmp-'))).toEqual([]);

    if (!HAS_PY) {
      console.warn('lock.test: /usr/bin/python3 with msgpack + msgpack_numpy not found; Python decode check skipped');
      return;
    }
    const script = [
      'import json, sys, msgpack, msgpack_numpy',
      'out = {}',
      'for path in sys.argv[1:]:',
      '    with open(path, "rb") as f: recs = msgpack.unpackb(f.read(), object_hook=msgpack_numpy.decode)',
      '    out[path.split("/")[-1]] = [[r["filename"], r["id"], list(r["visual_features"][0]["feat_array"]["layer_0"].shape)] for r in recs]',
      'print(json.dumps(out))',
    ].join('\n');
    const decoded = JSON.parse(execFileSync(PYTHON, ['-c', script, ...[...got.keys()].map((n) => join(out, n))], { encoding: 'utf8' }));
    for (const [i, tar] of shards.entries()) {
      const listed = JSON.parse(await readFile(tar.replace(/\.tar$/, '.json'), 'utf8')) as Array<{ filename: string; id: string }>;
      const recs = decoded[`shard-00000${i}.msgpack`] as Array<[string, string, number[]]>;
      expect(recs.map((r) => [r[0], r[1]])).toEqual(listed.map((e) => [e.filename, e.id]));
      expect(recs.every((r) => r[2].length >= 1)).toBe(true);
    }
  }, 120_000);
});
