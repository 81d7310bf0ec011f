/**
 * The staging LMDB stores of `faces --make_lmdb`: one small lmdb-js environment per video, under
 * `.faces-staging/<key>.lmdb`, written only by the run holding that video's lock and moved into
 * place whole when the video is done. An LMDB environment must never be opened by two machines
 * at once (nor over NFS while another host writes it); with one store per video and per writer,
 * none is. The export to `faces.lmdb` merges the stores of every video done (its record says
 * so) in key order, under a lock, into one py-lmdb-readable file: no clip lost, none twice (a key
 * seen twice is an error).
 */
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { tempPathFor } from '../util/atomic.js';
import { lockHeldElsewhere, lockPathFor, waitForLock } from '../util/lock.js';
import type { FaceSource } from './items.js';
import { openFrameStore, type FrameStore } from './lmdb-store.js';
import type { LmdbV1Summary } from './lmdb-v1.js';
import { writeLmdbV1 } from './lmdb-v1.js';
import type { WarningHandler } from '../types.js';
import { readAllRecords, recordPath } from './records.js';

/** Folder of the per-video staging stores, relative to the output folder. */
export const STAGING_DIR = '.faces-staging';

export const stagingPath = (outputDir: string, key: string): string => join(outputDir, STAGING_DIR, `${key}.lmdb`);

/** The staging stores of the videos this run is writing: opened (under a temp name) on a video's first clip. */
export class UnitStores {
  readonly #open = new Map<FaceSource, { store: FrameStore; tmp: string }>();

  constructor(private readonly outputDir: string) {}

  /** The store a source's clips go to. */
  async storeFor(source: FaceSource): Promise<FrameStore> {
    let s = this.#open.get(source);
    if (!s) {
      // The temp name holds host and pid: a store of another machine's live run is never taken for dead.
      const tmp = tempPathFor(stagingPath(this.outputDir, `${source.key}.${hostTag()}`));
      s = { store: await openFrameStore(tmp), tmp };
      this.#open.set(source, s);
    }
    return s.store;
  }

  /** The source is done: its store (if it had clips) is closed and moved to its final name. */
  async commit(source: FaceSource): Promise<void> {
    const s = this.#open.get(source);
    this.#open.delete(source);
    const final = stagingPath(this.outputDir, source.key);
    if (!s) {
      // No clips: no store, and none of an earlier attempt left to be exported.
      await rm(final, { recursive: true, force: true });
      return;
    }
    await s.store.close();
    await rm(final, { recursive: true, force: true });
    await rename(s.tmp, final);
  }

  /** The source failed: its store is thrown away. */
  async discard(source: FaceSource): Promise<void> {
    const s = this.#open.get(source);
    this.#open.delete(source);
    if (!s) return;
    await s.store.close();
    await rm(s.tmp, { recursive: true, force: true });
  }

  async closeAll(): Promise<void> {
    for (const source of [...this.#open.keys()]) await this.discard(source);
  }
}

/** This host's name as it goes into temp names (no dots, which separate the parts). */
const hostTag = () => hostname().replace(/[^A-Za-z0-9-]/g, '-');

const TEMP = /^\.(.+)\.([^.]+)\.lmdb\.tmp-(\d+)-[0-9a-f]{8}$/;

/** Removes staging stores left under temp names by runs of this host that are gone (kill -9). */
export async function removeDeadStaging(outputDir: string): Promise<void> {
  const dir = join(outputDir, STAGING_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || m[2] !== hostTag()) continue;
    const pid = Number(m[3]);
    if (pid === process.pid || alive(pid)) continue;
    if (await lockHeldElsewhere(lockPathFor(recordPath(outputDir, m[1]!)))) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `faces.lmdb` from the staging stores of every video done (its record read here, under
 * the lock: a run that finishes a video writes its record before it exports, so the last export
 * has every clip), merged in key order. Stores are opened as the merge reaches their first key
 * and closed once read, so only stores whose keys interleave are open together.
 */
export async function exportStores(outputDir: string, lmdbDir: string, onWarning: WarningHandler, signal?: AbortSignal): Promise<LmdbV1Summary> {
  const lock = await waitForLock(lockPathFor(lmdbDir), { owner: 'faces', pollMs: 100, signal });
  try {
    const parts: Array<{ path: string; low: Buffer }> = [];
    for (const r of (await readAllRecords(outputDir, onWarning)).values()) {
      if (r.log.status !== 'done' || !r.lmdb || r.log.clips.length === 0 || !r.log.key) continue;
      const path = stagingPath(outputDir, r.log.key);
      if (!(await stat(path).catch(() => null))) {
        // Only while another run redoes the video (--overwrite): that run exports again when it is done.
        onWarning(
          new ClipstreamError('ERR_IO', `${path}: staging store of ${r.rel} is missing; its clips are left out of this export`, { where: { file: path } }),
        );
        continue;
      }
      // Every key of the store starts with `{clip}/`: the smallest such prefix bounds them all from below.
      const low = r.log.clips.map((c) => Buffer.from(`${c}/`, 'utf8')).sort(Buffer.compare)[0]!;
      parts.push({ path, low });
    }
    parts.sort((a, b) => Buffer.compare(a.low, b.low));
    return await writeLmdbV1(lmdbDir, merged(parts));
  } finally {
    await lock?.release();
  }
}

type Cursor = { store: FrameStore; it: Iterator<[Buffer, Buffer]>; head: [Buffer, Buffer] };

async function* merged(parts: Array<{ path: string; low: Buffer }>): AsyncGenerator<[Buffer, Buffer]> {
  const open: Cursor[] = [];
  let next = 0;
  const openNext = async () => {
    const store = await openFrameStore(parts[next++]!.path);
    const it = store.entries();
    const r = it.next();
    if (r.done) await store.close();
    else open.push({ store, it, head: r.value });
  };
  try {
    for (;;) {
      if (open.length === 0) {
        if (next >= parts.length) return;
        await openNext();
        continue;
      }
      let min = open[0]!;
      for (const c of open) if (Buffer.compare(c.head[0], min.head[0]) < 0) min = c;
      // A store not yet open may hold a smaller key: open it first.
      if (next < parts.length && Buffer.compare(parts[next]!.low, min.head[0]) <= 0) {
        await openNext();
        continue;
      }
      yield min.head;
      const r = min.it.next();
      if (r.done) {
        open.splice(open.indexOf(min), 1);
        await min.store.close();
      } else min.head = r.value;
    }
  } finally {
    for (const c of open) {
      c.it.return?.();
      await c.store.close();
    }
  }
}
