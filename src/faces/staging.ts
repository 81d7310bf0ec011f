/**
 * The staging LMDB stores of `faces --make_lmdb`: one small lmdb-js environment per video, under
 * `.faces-staging/<key>.lmdb`, written only by the run holding that video's lock and moved into
 * place whole when the video is done. An LMDB environment must never be opened by two machines
 * at once (nor over NFS while another host writes it); with one store per video and per writer,
 * none is. The export to `faces.lmdb` merges the stores of every video done (its record says
 * so) in key order, under a lock, into one py-lmdb-readable file: no clip lost, none twice (a key
 * seen twice is an error). It is written once every video of the job's list is recorded, by the
 * run that records the last one, and not again while its inputs stay the same.
 */
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { tempPathFor, writeFileAtomic } from '../util/atomic.js';
import { lockHeldElsewhere, lockPathFor, waitForLock } from '../util/lock.js';
import type { FaceSource } from './items.js';
import { openFrameStore, type FrameStore } from './lmdb-store.js';
import type { LmdbV1Summary } from './lmdb-v1.js';
import { writeLmdbV1 } from './lmdb-v1.js';
import type { WarningHandler } from '../types.js';
import type { UnitRecords } from '../sinks/unit-records.js';
import { faceRecords, readAllRecords, recordPath, type VideoRecord } from './records.js';
import { pidAlive } from '../util/pid.js';

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
    if (pid === process.pid || pidAlive(pid)) continue;
    if (await lockHeldElsewhere(lockPathFor(recordPath(outputDir, m[1]!)))) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

/** The manifest of the last export, inside `faces.lmdb`: the staging stores it was made from. */
export const EXPORT_MANIFEST = 'clipstream-export.json';

/** A file as an export sees it: a store rewritten, or faces.lmdb replaced, changes at least one of these. */
interface FileId {
  size: number;
  mtimeMs: number;
  ino: number;
}

interface Manifest {
  format: 1;
  /** The staging stores merged, in merge order: key and its data.mdb as it was read. */
  stores: Array<{ key: string } & FileId>;
  /** faces.lmdb/data.mdb as this export left it. */
  data: FileId;
  summary: LmdbV1Summary;
}

/** What an export call found and did. */
export interface StoreExport {
  /**
   * `written`: faces.lmdb was written now. `current`: it already held exactly the stores to
   * export (its manifest says so) and was left untouched. `waiting`: not written, because
   * videos of the list have no final record yet.
   */
  outcome: 'written' | 'current' | 'waiting';
  /** The videos of the list (relative paths) the export waits for; [] unless `waiting`. */
  waitingFor: string[];
  /** What faces.lmdb holds when written or current; null while waiting. */
  summary: LmdbV1Summary | null;
}

const fileId = (st: { size: number; mtimeMs: number; ino: number }): FileId => ({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
const sameId = (a: FileId, b: FileId) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;

async function readManifest(lmdbDir: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(join(lmdbDir, EXPORT_MANIFEST), 'utf8')) as Manifest;
    return m?.format === 1 && Array.isArray(m.stores) && m.data && m.summary ? m : null;
  } catch {
    return null;
  }
}

/**
 * Writes `faces.lmdb` from the staging stores of every video done, merged in key order, under
 * `faces.lmdb.lock`. Stores are opened as the merge reaches their first key and closed once
 * read, so only stores whose keys interleave are open together.
 *
 * With `sources` (the job's whole list), it writes only once every video of the list has a
 * final record: failed, or done with its clips in its staging store (a video in progress or
 * still to do has none; one done without its store will be made again). Records are read here,
 * under the lock, and every run writes its records before it calls this, so of two runs
 * finishing the last videos at once, the later to take the lock sees every record and writes.
 *
 * An export whose stores are those the manifest in faces.lmdb names (same key, size, mtime and
 * inode of each data.mdb), while faces.lmdb/data.mdb is the file that manifest describes, is
 * skipped: rerunning a finished job leaves faces.lmdb untouched. The manifest is written
 * atomically after data.mdb is in place, and removed before it is replaced.
 */
export async function exportStores(
  outputDir: string,
  lmdbDir: string,
  onWarning: WarningHandler,
  o: { signal?: AbortSignal; sources?: readonly FaceSource[]; records?: UnitRecords<VideoRecord> } = {},
): Promise<StoreExport> {
  const lock = await waitForLock(lockPathFor(lmdbDir), { owner: 'faces', pollMs: 100, signal: o.signal });
  try {
    const records = await readAllRecords(o.records ?? faceRecords(outputDir, { onWarning }));
    // The staging store of every record done with clips in a store, when it is there.
    const stored = new Map<VideoRecord, FileId | null>();
    for (const r of records.values()) {
      if (r.log.status !== 'done' || !r.lmdb || r.log.clips.length === 0 || !r.log.key) continue;
      const st = await stat(join(stagingPath(outputDir, r.log.key), 'data.mdb')).catch(() => null);
      stored.set(r, st && fileId(st));
    }
    const final = (r: VideoRecord | undefined) =>
      r !== undefined && (r.log.status === 'failed' || (r.log.status === 'done' && (r.log.clips.length === 0 || (stored.get(r) ?? null) !== null)));
    const waitingFor = (o.sources ?? []).filter((s) => !final(records.get(s.rel))).map((s) => s.rel);
    if (waitingFor.length > 0) return { outcome: 'waiting', waitingFor, summary: null };

    const parts: Array<{ key: string; path: string; low: Buffer; id: FileId }> = [];
    for (const [r, id] of stored) {
      const path = stagingPath(outputDir, r.log.key!);
      if (!id) {
        // A video not in the list (or no list given) whose store is gone, e.g. while another run redoes it (--overwrite).
        onWarning(
          new ClipstreamError('ERR_IO', `${path}: staging store of ${r.rel} is missing; its clips are left out of this export`, { where: { file: path } }),
        );
        continue;
      }
      // Every key of the store starts with `{clip}/`: the smallest such prefix bounds them all from below.
      const low = r.log.clips.map((c) => Buffer.from(`${c}/`, 'utf8')).sort(Buffer.compare)[0]!;
      parts.push({ key: r.log.key!, path, low, id });
    }
    parts.sort((a, b) => Buffer.compare(a.low, b.low));
    const stores = parts.map((p) => ({ key: p.key, ...p.id }));

    const manifestPath = join(lmdbDir, EXPORT_MANIFEST);
    const before = await readManifest(lmdbDir);
    const data = await stat(join(lmdbDir, 'data.mdb')).catch(() => null);
    if (before && data && sameId(before.data, fileId(data)) && JSON.stringify(before.stores) === JSON.stringify(stores)) {
      return { outcome: 'current', waitingFor: [], summary: before.summary };
    }
    // No manifest while data.mdb is being replaced: a run killed meanwhile leaves one to export again.
    await rm(manifestPath, { force: true });
    const summary = await writeLmdbV1(lmdbDir, merged(parts));
    const written = await stat(join(lmdbDir, 'data.mdb'));
    const manifest: Manifest = { format: 1, stores, data: fileId(written), summary };
    await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
    return { outcome: 'written', waitingFor: [], summary };
  } finally {
    await lock?.release();
  }
}

type Cursor = { store: FrameStore; it: Iterator<[Buffer, Buffer]>; head: [Buffer, Buffer] };

async function* merged(parts: ReadonlyArray<{ path: string; low: Buffer }>): AsyncGenerator<[Buffer, Buffer]> {
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
