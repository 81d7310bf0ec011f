/**
 * A lock per output unit (`out/shard-000000.msgpack.lock`), so two runs, two queue workers or
 * two machines sharing an NFS folder never write the same unit. The lock file is created with
 * O_EXCL and says who holds it (host, pid, start time); a holder refreshes its mtime while it
 * works, so a lock left by a dead process is recognised: by its pid on this host, by a stale
 * mtime on another one.
 */
import { link, open, readdir, readFile, readlink, rm, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClipstreamError } from '../errors.js';
import { parseTempName, tempPathFor } from './atomic.js';
import { pidAlive, pidRunning } from './pid.js';

export interface LockInfo {
  host: string;
  pid: number;
  /** ISO time the lock was taken. */
  started: string;
  /** What the holder is (e.g. `extract`, `worker`), for the message a second run prints. */
  owner?: string;
}

export interface UnitLock {
  readonly path: string;
  readonly info: LockInfo;
  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

export interface LockOptions {
  /** Written into the lock for whoever finds it held. */
  owner?: string;
  /** A lock of another host whose mtime is older than this is taken as abandoned. Default 2 min (NFS attribute caches lag by up to a minute). */
  staleMs?: number;
  /** How often a holder refreshes its mtime. Default a tenth of staleMs. */
  heartbeatMs?: number;
}

export type LockAttempt = { lock: UnitLock; tookOver?: LockInfo } | { heldBy: LockInfo };

const DEFAULT_STALE_MS = 2 * 60_000;
// A lock-breaking marker older than this belongs to a process that died while breaking.
const BREAK_STALE_MS = 30_000;

/** `host vm-3, pid 4242, since 2026-12-01T08:00:00.000Z (extract)`. */
export function describeHolder(info: LockInfo): string {
  return `host ${info.host}, pid ${info.pid}, since ${info.started}${info.owner ? ` (${info.owner})` : ''}`;
}

async function readInfo(path: string): Promise<{ info: LockInfo; text: string; mtimeMs: number } | null> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(path, 'utf8');
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as LockInfo;
    if (typeof v.host === 'string' && typeof v.pid === 'number') return { info: v, text, mtimeMs };
  } catch {
    // Half-written by a holder killed between create and write: judged by its age below.
  }
  return { info: { host: '?', pid: -1, started: new Date(mtimeMs).toISOString() }, text, mtimeMs };
}

function isStale(found: { info: LockInfo; mtimeMs: number }, staleMs: number): boolean {
  if (found.info.host === hostname() && found.info.pid > 0) return !pidAlive(found.info.pid);
  return Date.now() - found.mtimeMs > staleMs;
}

async function createExclusive(path: string, text: string): Promise<boolean> {
  // The lock appears with its contents or not at all: written to a temp name, then linked into
  // place. link() fails with EEXIST like O_EXCL (also on NFS), and no reader ever sees an empty
  // lock between its creation and its write, which another run would take for "host ?, pid -1".
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new ClipstreamError('ERR_IO', `cannot create lock ${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Removes a stale lock, unless another process is already doing so or the lock changed
 * since it was judged stale: a second marker file (`.break`, also O_EXCL) makes the
 * check-and-remove one step, so two processes cannot both break and both take the lock.
 */
async function breakStale(path: string, judged: string): Promise<void> {
  const marker = `${path}.break`;
  if (!(await createExclusive(marker, String(process.pid)))) {
    const age = await stat(marker).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > BREAK_STALE_MS) await rm(marker, { force: true });
    return;
  }
  try {
    const now = await readInfo(path);
    if (now && now.text === judged) await rm(path, { force: true });
  } finally {
    await rm(marker, { force: true });
  }
}

/**
 * Tries once to take the lock at `path`. Returns the lock, or who holds it. A stale lock (dead
 * pid on this host, or no heartbeat from another host for `staleMs`) is taken over and its
 * former holder reported as `tookOver`.
 *
 * @example
 * const got = await tryLock('out/shard-000000.msgpack.lock', { owner: 'extract' });
 * if ('heldBy' in got) console.log(`busy: ${describeHolder(got.heldBy)}`);
 * else try { ... } finally { await got.lock.release(); }
 */
export async function tryLock(path: string, options: LockOptions = {}): Promise<LockAttempt> {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const info: LockInfo = { host: hostname(), pid: process.pid, started: new Date().toISOString(), ...(options.owner ? { owner: options.owner } : {}) };
  const text = JSON.stringify(info);
  let tookOver: LockInfo | undefined;
  for (let round = 0; round < 5; round++) {
    if (await createExclusive(path, text))
      return { lock: holdLock(path, info, text, options.heartbeatMs ?? Math.max(1000, staleMs / 10)), ...(tookOver ? { tookOver } : {}) };
    const found = await readInfo(path);
    if (!found) continue; // released between our create and our read
    if (!isStale(found, staleMs)) return { heldBy: found.info };
    tookOver = found.info;
    await breakStale(path, found.text);
  }
  const found = await readInfo(path);
  return { heldBy: found?.info ?? { host: '?', pid: -1, started: new Date().toISOString() } };
}

/**
 * Takes the lock, waiting while a live process holds it. Resolves null when `giveUp()` says
 * waiting is pointless (e.g. the unit's output appeared meanwhile); rejects when aborted.
 */
export async function waitForLock(
  path: string,
  options: LockOptions & { pollMs?: number; signal?: AbortSignal; giveUp?: () => Promise<boolean> } = {},
): Promise<UnitLock | null> {
  for (;;) {
    const got = await tryLock(path, options);
    if ('lock' in got) return got.lock;
    if (options.giveUp && (await options.giveUp())) return null;
    await sleep(options.pollMs ?? 500, undefined, { signal: options.signal });
  }
}

function holdLock(path: string, info: LockInfo, text: string, heartbeatMs: number): UnitLock {
  let released = false;
  const timer = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now).catch(() => {});
  }, heartbeatMs);
  timer.unref();
  return {
    path,
    info,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      // Never remove a lock that is no longer ours (broken as stale and taken by another).
      const found = await readInfo(path).catch(() => null);
      if (found && found.text === text) await rm(path, { force: true });
    },
  };
}

/**
 * True when another live process (here or on another host) holds the lock at `path`. Temp-file
 * cleanup asks this first: a pid in a temp name means nothing on a folder shared by machines.
 */
export async function lockHeldElsewhere(path: string, staleMs = DEFAULT_STALE_MS): Promise<boolean> {
  const found = await readInfo(path).catch(() => null);
  if (!found) return false;
  if (found.info.host === hostname() && found.info.pid === process.pid) return false;
  return !isStale(found, staleMs);
}

/**
 * Removes the temporary files (tempPathFor's naming) that processes killed mid-write left in
 * `dir`, optionally only those of `finalName`. Files of live processes, and of units whose lock
 * (lockPathFor) another live process holds, are left alone, so two runs sharing a folder (or
 * machines sharing it over NFS) do not delete each other's work. Returns how many were removed.
 *
 * @example await removeDeadTemps('out') // after a `kill -9` during a write
 */
export async function removeDeadTemps(dir: string, finalName?: string): Promise<number> {
  await killOrphanWriters(dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const temp = parseTempName(name);
    if (!temp || (finalName !== undefined && temp.finalName !== finalName)) continue;
    const { pid } = temp;
    if (pid === process.pid || pidAlive(pid)) continue;
    // Another machine's run writing this unit: its pid is not ours to judge.
    if (await lockHeldElsewhere(lockPathFor(join(dir, temp.finalName)))) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

/**
 * Kills the processes of this host still writing a temp file in `dir` for a run that is gone: a
 * run killed with SIGKILL leaves its ffmpeg children running (nothing kills them with it), and one
 * that opens its output after the next run swept the folder would leave a stale temp file behind
 * it. Such a writer is known by its arguments: a path in `dir` under tempPathFor's naming whose pid
 * is dead. Linux only (reads /proc); elsewhere it does nothing. Returns how many it killed.
 */
export async function killOrphanWriters(dir: string): Promise<number> {
  const pids = await readdir('/proc').catch(() => [] as string[]);
  const where = resolve(dir);
  const killed: number[] = [];
  for (const name of pids) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const args = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    for (const arg of args.split('\0')) {
      const temp = parseTempName(basename(arg));
      if (!temp || temp.pid === process.pid || pidAlive(temp.pid)) continue;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => null);
      if (cwd === null || dirname(resolve(cwd, arg.replace(/^file:/, ''))) !== where) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // gone meanwhile, or not ours to kill
      }
      break;
    }
  }
  // SIGKILL is not instant: wait (briefly) until each is gone, so the sweep after this sees its last write.
  for (let i = 0; i < 100 && killed.some(pidRunning); i++) await sleep(20);
  return killed.length;
}

/**
 * Removes the locks in `dir` whose holder is gone (a dead pid on this host; no heartbeat for
 * `staleMs` from another one) and whose unit is final (the file the lock is named after,
 * `x.lock` → `x`, exists): a run killed between a unit's final rename and its lock's removal
 * leaves its lock behind, and the runs after it may never take that unit again (it is done, or
 * another rank's) to clear it. Whoever finds such a lock removes it (the same check-and-remove
 * as a takeover, so a lock taken meanwhile is left alone). The lock of an unfinished unit is
 * left to whoever takes the unit over, who says so. Returns how many were removed.
 *
 * @example await removeDeadLocks('out') // after a run killed right after writing shard-000000.msgpack
 */
export async function removeDeadLocks(dir: string, staleMs = DEFAULT_STALE_MS): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.endsWith('.lock')) continue;
    const path = join(dir, name);
    if (!(await stat(path.slice(0, -'.lock'.length)).catch(() => null))) continue;
    const found = await readInfo(path).catch(() => null);
    if (!found || !isStale(found, staleMs)) continue;
    await breakStale(path, found.text);
    if (!(await stat(path).catch(() => null))) removed++;
  }
  return removed;
}

/** Where the lock of an output unit lives: beside the unit's final file. */
export function lockPathFor(finalPath: string): string {
  return `${finalPath}.lock`;
}
