/**
 * The one record store for per-unit results: one file per unit (a video, a segment, a shard)
 * in a folder, written atomically (src/util/atomic.ts) by whichever run, rank, queue worker or
 * machine did the unit, so a reader sees a unit's whole record or none; and the tables that are
 * rebuilt from every record present, under one lock (src/util/lock.ts), so any number of runs
 * sharing an output folder leave the tables of one run. The payload and its file format are
 * each job's own (a RecordFormat); the store knows files, not what is in them.
 *
 * A file that holds no record (cut short by a copy or a full disk, damaged, or of another
 * version that cannot be read) counts as no record: its unit is done again, and `onBad`
 * hears about it.
 *
 * Used by clips (`.units/<video>.json`, videos/clips/span_issues.csv), faces
 * (`faces-records/<key>.msgpack`, metadata.* and faces-videos.json), segments
 * (`records/seg_NNNNNN.json` and `done.json` in a video's work folder) and extract (the
 * `<shard>.incomplete.json` marker beside an incomplete feature shard).
 *
 * @example
 * const store = new UnitRecords<{ n: number }>('out/.units', jsonRecords(), { tablesLock: 'out/.tables.lock', owner: 'mine' });
 * await store.write('video-a', { n: 3 });
 * await store.rebuild(async (records) => writeCsvAtomic('out/table.csv', ['id', 'n'], [...records].map(([id, r]) => ({ id, n: r.n }))));
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { waitForLock } from '../util/lock.js';

/** How a job's records are kept in their files. */
export interface RecordFormat<T> {
  /** What every record file's name ends with (`.json`, `.msgpack`, `.incomplete.json`). */
  suffix: string;
  encode(record: T): Uint8Array | string;
  /** The record these bytes hold, or null when they hold none. A throw counts as none. */
  decode(bytes: Buffer): T | null;
}

/**
 * Records as JSON text and a newline; `indent` as JSON.stringify's, `check` says whether a parsed
 * value is a record at all.
 */
export function jsonRecords<T>(o: { suffix?: string; indent?: number; check?: (value: unknown) => boolean } = {}): RecordFormat<T> {
  return {
    suffix: o.suffix ?? '.json',
    encode: (record) => `${JSON.stringify(record, null, o.indent)}\n`,
    decode: (bytes) => {
      const value: unknown = JSON.parse(bytes.toString('utf8'));
      return !o.check || o.check(value) ? (value as T) : null;
    },
  };
}

export interface UnitRecordsOptions {
  /** The unit id → its file's name without the suffix. Default: the id itself. */
  fileStem?: (id: string) => string;
  /**
   * Hears about a file that `readMany`/`readAll` found holding no record (its unit counts as
   * having none, so it is redone): the file and why.
   */
  onBad?: (path: string, why: string) => void;
  /** The lock file under which tables are rebuilt (`locked`, `rebuild`). Default: `<dir>.lock`. */
  tablesLock?: string;
  /** Written into the tables lock for whoever finds it held (e.g. `clips`). */
  owner?: string;
  /** Aborts a wait for the tables lock. */
  signal?: AbortSignal;
}

/** readMany lists the folder first when asked for more units than this. */
const LIST_FROM = 16;

/** A record file read before, with the size and mtime it had: read again (and, holding none, said again) only when one changed. */
interface Cached<T> {
  size: number;
  mtimeMs: number;
  record: T | null;
}

/** The records of one folder, one file per unit, of one format. */
export class UnitRecords<T> {
  readonly #cache = new Map<string, Cached<T>>();
  /** File names by unit id, made once: a completeness check over a long list asks for every one each time. */
  readonly #names = new Map<string, string>();
  readonly tablesLock: string;

  constructor(
    readonly dir: string,
    readonly format: RecordFormat<T>,
    readonly options: UnitRecordsOptions = {},
  ) {
    this.tablesLock = options.tablesLock ?? `${dir}.lock`;
  }

  /** The name of a unit's record file in `dir`. */
  fileName(id: string): string {
    const known = this.#names.get(id);
    if (known !== undefined) return known;
    const stem = this.options.fileStem ? this.options.fileStem(id) : id;
    if (stem.length === 0 || stem === '.' || stem === '..' || stem.includes('/') || stem.includes('\\')) {
      throw new ClipstreamError('ERR_INVALID_OPTION', `unit ${JSON.stringify(id)} cannot name a record file in ${this.dir}`, { where: { key: id } });
    }
    const name = `${stem}${this.format.suffix}`;
    this.#names.set(id, name);
    return name;
  }

  /** Where a unit's record lives (its lock, if the runner takes one, goes beside it). */
  path(id: string): string {
    return join(this.dir, this.fileName(id));
  }

  /** Writes a unit's record atomically (the folder made if need be): readers see the old record or the new one, never part of one. */
  async write(id: string, record: T): Promise<void> {
    await writeFileAtomic(this.path(id), this.format.encode(record));
  }

  /** A unit's record, read afresh; null when it has none or its file holds none (said by the listing reads, not here). */
  async read(id: string): Promise<T | null> {
    return this.#readFile(this.fileName(id), false);
  }

  /** Removes a unit's record (before its unit is redone). */
  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  /** Removes every record: the folder and all in it. */
  async clear(): Promise<void> {
    this.#cache.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The record files present (temp files of writes in flight left out): one readdir, nothing parsed. */
  async fileNames(): Promise<Set<string>> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    // A temp file's name ends in `.tmp-<pid>-<hex>`, a lock's in `.lock`: neither has the suffix.
    return new Set(names.filter((n) => n.endsWith(this.format.suffix) && n.length > this.format.suffix.length));
  }

  /** Every one of these units has a record file (by name: nothing read). */
  async hasAll(ids: Iterable<string>): Promise<boolean> {
    const present = await this.fileNames();
    for (const id of ids) if (!present.has(this.fileName(id))) return false;
    return true;
  }

  /** The records of these units that have one, in the order given; files unchanged since this store last read them are not read again. */
  async readMany(ids: Iterable<string>): Promise<Map<string, T>> {
    const list = [...ids];
    // Many units: one readdir spares a stat per unit without a record; a few: a stat each.
    const present = list.length > LIST_FROM ? await this.fileNames() : null;
    const out = new Map<string, T>();
    for (const id of list) {
      const name = this.fileName(id);
      if (present && !present.has(name)) continue;
      const record = await this.#readCached(name);
      if (record !== null) out.set(id, record);
    }
    return out;
  }

  /** Every record present, by file stem in name order; files unchanged since this store last read them are not read again. */
  async readAll(): Promise<Map<string, T>> {
    const present = await this.fileNames();
    for (const name of this.#cache.keys()) if (!present.has(name)) this.#cache.delete(name);
    const out = new Map<string, T>();
    for (const name of [...present].sort()) {
      const record = await this.#readCached(name);
      if (record !== null) out.set(name.slice(0, -this.format.suffix.length), record);
    }
    return out;
  }

  /** Runs `fn` holding the tables lock (others sharing the folder wait for it). */
  async locked<R>(fn: () => Promise<R>): Promise<R> {
    const lock = await waitForLock(this.tablesLock, { owner: this.options.owner, pollMs: 100, signal: this.options.signal });
    try {
      return await fn();
    } finally {
      await lock?.release();
    }
  }

  /**
   * Rebuilds the tables: under the tables lock, every record present is read and handed to
   * `write`, which writes each table atomically. Records are written before a rebuild, so of
   * two runs recording their last units at once, the later to take the lock sees both.
   */
  rebuild<R>(write: (records: Map<string, T>) => Promise<R>): Promise<R> {
    return this.locked(async () => write(await this.readAll()));
  }

  async #readCached(name: string): Promise<T | null> {
    const st = await stat(join(this.dir, name)).catch(() => null);
    if (!st) return null;
    const hit = this.#cache.get(name);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.record;
    const record = await this.#readFile(name, true);
    this.#cache.set(name, { size: st.size, mtimeMs: st.mtimeMs, record });
    return record;
  }

  async #readFile(name: string, report: boolean): Promise<T | null> {
    const path = join(this.dir, name);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new ClipstreamError('ERR_IO', `${path}: cannot read record (${(err as Error).message})`, { cause: err, where: { file: path } });
    }
    let record: T | null;
    let why = 'not a record of this kind';
    try {
      record = this.format.decode(bytes);
    } catch (err) {
      record = null;
      why = (err as Error).message;
    }
    if (record === null && report) this.options.onBad?.(path, why);
    return record;
  }
}
