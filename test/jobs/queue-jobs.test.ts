/**
 * The queue and its workers for every job, from one fixture table (test/helpers/queue-jobs.ts):
 * three workers on a real redis-server, one killed by kill -9 in the middle of a unit; every
 * unit must be done exactly once and the outputs byte-identical to the plain command's.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_DEFINITIONS } from '../../src/cli/jobs.js';
import { queueStatus } from '../../src/scale/queue.js';
import { doneBeforeUnits, doneUnits, QUEUE_JOB_FIXTURES, readLogs } from '../helpers/queue-jobs.js';
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';
import { startWorker, until, type Running } from '../helpers/workers.js';
import { runCli, runCliAsync } from '../helpers/run-cli.js';

if (NO_REDIS) console.warn(`queue-jobs.test: ${NO_REDIS}`);

/** Every `*.lock` under `dir`, recursively. */
async function locksUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.lock')) found.push(join(d, e.name));
    }
  };
  await walk(dir);
  return found;
}

/** The pid in a lock file; -1 while it is gone, or empty between its creation and its first write. */
async function lockPid(path: string): Promise<number> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { pid: number }).pid;
  } catch {
    return -1;
  }
}

let redis: RedisServer;
const workers: Running[] = [];
beforeAll(async () => {
  if (!NO_REDIS) redis = await startRedis();
});
afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  await redis?.stop();
});

for (const fx of QUEUE_JOB_FIXTURES) {
  const missing = JOB_DEFINITIONS[fx.job] ? null : `JOB_DEFINITIONS.${fx.job} is missing (${fx.definedIn}, listed in src/cli/jobs.ts)`;
  if (missing) console.warn(`queue-jobs.test: ${fx.job} skipped: ${missing}`);

  describe.skipIf(NO_REDIS !== null || missing !== null)(`queue: ${fx.job}${missing ? ` (skipped: ${missing})` : ''}`, () => {
    let dir: string;
    let units: number;
    let args: (out: string) => string[];
    let ref: Map<string, Buffer>;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `clipstream-queue-${fx.job}-`));
      ({ units, args } = await fx.prepare(dir));
      const plain = await runCliAsync([fx.job, ...args(join(dir, 'ref')), '--quiet']);
      expect(plain.code, plain.stderr).toBe(0);
      ref = await fx.outputs(join(dir, 'ref'));
      expect(ref.size, `the plain ${fx.job} run wrote no output to compare`).toBeGreaterThan(0);
    }, 300_000);
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it(`three workers (one with --concurrency=2), one killed -9 mid-unit: every ${fx.job} unit done exactly once, outputs byte-identical to the plain command`, async () => {
      const out = join(dir, 'out');
      const queue = `kill-${fx.job}`;
      const add = ['queue', 'add', fx.job, ...args(out), `--redis=${redis.url}`, `--queue=${queue}`];
      const first = runCli(add);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(`added ${units} ${fx.job} unit(s) to queue '${queue}' at ${redis.url}; 0 were queued already`);
      // Idempotent: the same units again add nothing.
      expect(runCli(add).stderr).toContain(`added 0 ${fx.job} unit(s) to queue '${queue}' at ${redis.url}; ${units} were queued already`);

      const pool = [startWorker(redis.url, queue, 2, '--concurrency=2'), startWorker(redis.url, queue, 2), startWorker(redis.url, queue, 2)];
      workers.push(...pool);
      let victim: Running | null = null;
      let victimLock = '';
      await until(
        `a worker in the middle of a ${fx.job} unit`,
        async () => {
          // Unit locks only: a table or store lock held for a moment after the unit is not "mid-unit".
          for (const lock of (await locksUnder(out)).filter((l) => !/(tables|\.lmdb)\.lock$/.test(l))) {
            const holder = await lockPid(lock);
            const worker = pool.find((w) => w.child.pid === holder);
            if (worker && (!fx.midUnit || (await fx.midUnit(out, relative(out, lock))))) {
              worker.child.kill('SIGKILL');
              victim = worker;
              victimLock = lock;
              return true;
            }
          }
          return false;
        },
        90_000,
      );
      const killed = victim as unknown as Running;
      await killed.exited;
      expect(killed.child.signalCode).toBe('SIGKILL');
      // The unit may have ended between reading its lock and the kill: then there is nothing to take over.
      const diedHolding = (await lockPid(victimLock)) === killed.child.pid;

      await until('every unit done', async () => (await queueStatus(redis.url, queue)).done === units, 240_000);
      const survivors = pool.filter((w) => w !== killed);
      for (const w of survivors) w.child.kill('SIGTERM');
      for (const w of survivors) expect(await w.exited, w.stderr()).toBe(0);

      expect(await queueStatus(redis.url, queue)).toMatchObject({ waiting: 0, active: 0, done: units, failed: 0 });
      const got = await fx.outputs(out);
      expect([...got.keys()]).toEqual([...ref.keys()]);
      for (const [name, bytes] of ref) expect(got.get(name)!.equals(bytes), name).toBe(true);
      // Exactly once: every unit finished by one run only (the killed run finished nothing it had in hand).
      // The killed worker writes no log: a unit it completed but had not acknowledged is found done
      // by the survivor that takes it over (whether the kill came before or after its lock was let
      // go). That can only be the victim's one unit; it then counts as done once, by the victim.
      const logs = await readLogs(fx.logDir(out));
      const done = logs.flatMap(doneUnits).sort();
      const doneBefore = logs.flatMap(doneBeforeUnits);
      expect(doneBefore.length, `units found done before: ${doneBefore.join(', ')}`).toBeLessThanOrEqual(1);
      for (const u of doneBefore) expect(done, `${u} was found done before and also done again`).not.toContain(u);
      // No unit done twice by the runs that wrote logs. A unit the killed worker finished and
      // acknowledged before the kill shows in no log at all (nobody takes it over): those are the
      // rest, and the byte-identical outputs above prove they were done.
      const seen = new Set([...done, ...doneBefore]);
      expect(seen.size, `units done twice: ${done.join(', ')}`).toBe(done.length + doneBefore.length);
      expect(seen.size).toBeLessThanOrEqual(units);
      expect(seen.size, 'the surviving workers did the units the killed one had not finished').toBeGreaterThanOrEqual(1);
      if (diedHolding) expect(survivors.map((w) => w.stderr()).join('')).toMatch(/took over the lock .*\.lock left by a run that is gone/);
      expect((await locksUnder(out)).map((l) => relative(out, l))).toEqual([]);
    }, 360_000);
  });
}
