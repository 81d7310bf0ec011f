/**
 * Per-video records of `faces`: one file per finished (or failed) video under
 * `faces-records/`, written atomically by whichever run, rank, machine or queue worker did the
 * video. The shared outputs (metadata.csv/msgpack and faces-videos.json) are rebuilt from every
 * record present, under a lock and atomically, so any number of runs sharing one output folder
 * (NFS, a mounted bucket) never overwrite each other's videos.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { ClipstreamError } from '../errors.js';
import type { WarningHandler } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { waitForLock } from '../util/lock.js';
import type { FaceSource } from './items.js';
import { writeMetadata, type FaceRow } from './metadata.js';
import { readRows, readState, STATE_FILE, type VideoLog } from './record.js';

/** Folder of the per-video records, relative to the output folder. */
export const RECORDS_DIR = 'faces-records';
/** The lock that serialises rebuilding the shared tables (metadata.*, faces-videos.json). */
const TABLES_LOCK = '.faces-tables.lock';

export interface VideoRecord {
  /** Path relative to the input folder (the unit id). */
  rel: string;
  log: VideoLog;
  /** The video's metadata rows (none when it failed). */
  rows: FaceRow[];
  /** True when its clips are in its staging LMDB store (made with --make_lmdb). */
  lmdb: boolean;
}

// Plain maps, as metadata.msgpack: numbers (NaN included) come back exactly.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false });

export const recordPath = (outputDir: string, key: string): string => join(outputDir, RECORDS_DIR, `${key}.msgpack`);

export async function writeRecord(outputDir: string, key: string, record: VideoRecord): Promise<void> {
  await writeFileAtomic(recordPath(outputDir, key), packr.pack(record));
}

export async function removeRecord(outputDir: string, key: string): Promise<void> {
  await rm(recordPath(outputDir, key), { force: true });
}

/** One video's record, or null when it has none (or it cannot be read: then the video is redone). */
export async function readRecord(outputDir: string, key: string): Promise<VideoRecord | null> {
  try {
    const r = unpackr.unpack(await readFile(recordPath(outputDir, key))) as VideoRecord;
    return r && typeof r.rel === 'string' && r.log ? r : null;
  } catch {
    return null;
  }
}

/** Records read before, by file name, with the size and mtime they had: a rebuild rereads only files that changed. */
export type RecordCache = Map<string, { size: number; mtimeMs: number; record: VideoRecord }>;

/** Every record present, by relative path. A damaged record is warned about and left out (its video is redone). */
export async function readAllRecords(outputDir: string, onWarning: WarningHandler, cache?: RecordCache): Promise<Map<string, VideoRecord>> {
  const dir = join(outputDir, RECORDS_DIR);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.msgpack') && !n.startsWith('.')).sort();
  } catch {
    return new Map();
  }
  const out = new Map<string, VideoRecord>();
  const present = new Set(names);
  for (const name of cache?.keys() ?? []) if (!present.has(name)) cache!.delete(name);
  for (const name of names) {
    const st = cache ? await stat(join(dir, name)).catch(() => null) : null;
    const hit = st && cache!.get(name);
    let r = hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs ? hit.record : null;
    if (!r) {
      r = await readRecord(outputDir, name.slice(0, -'.msgpack'.length));
      if (r && st) cache!.set(name, { size: st.size, mtimeMs: st.mtimeMs, record: r });
    }
    if (r) out.set(r.rel, r);
    else onWarning(new ClipstreamError('ERR_IO', `${join(dir, name)}: unreadable video record; its video is done again`, { where: { file: join(dir, name) } }));
  }
  return out;
}

/**
 * Output made before records existed (faces-videos.json and metadata.msgpack only): each video
 * done there gets a record with its rows, so it is not redone. Its clips are not in any staging
 * store, so `--make_lmdb` redoes it.
 */
export async function migrateLegacyOutput(outputDir: string, inputDir: string, records: Map<string, VideoRecord>): Promise<void> {
  if (records.size > 0) return;
  const state = await readState(outputDir);
  if (Object.keys(state).length === 0) return;
  const rows = await readRows(outputDir);
  for (const [rel, log] of Object.entries(state)) {
    if (log.status !== 'done' || !log.key) continue;
    const mine = rows.filter((r) => r.file_original === join(inputDir, rel));
    if (mine.length !== log.clips.length) continue;
    const record: VideoRecord = { rel, log, rows: mine, lmdb: false };
    await writeRecord(outputDir, log.key, record);
    records.set(rel, record);
  }
}

/**
 * Rebuilds metadata.csv/msgpack and faces-videos.json from every record present, under a lock
 * (other runs sharing the folder wait for it), each file written atomically. Rows and entries
 * follow the order of `sources` (the whole input folder's list); records of videos not in it
 * come first, by path. Returns every row and record.
 */
export async function rebuildTables(
  outputDir: string,
  sources: readonly FaceSource[],
  onWarning: WarningHandler,
  o: { signal?: AbortSignal; cache?: RecordCache } = {},
): Promise<{ rows: FaceRow[]; records: VideoRecord[] }> {
  const lock = await waitForLock(join(outputDir, TABLES_LOCK), { owner: 'faces', pollMs: 100, signal: o.signal });
  try {
    const records = await readAllRecords(outputDir, onWarning, o.cache);
    const position = new Map(sources.map((s) => [s.rel, s.index]));
    const ordered = [...records.values()].sort(
      (a, b) => (position.get(a.rel) ?? -1) - (position.get(b.rel) ?? -1) || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0),
    );
    const rows = ordered.flatMap((r) => r.rows);
    await writeMetadata(outputDir, rows);
    const videos = Object.fromEntries(ordered.map((r) => [r.rel, r.log]));
    await writeFileAtomic(join(outputDir, STATE_FILE), `${JSON.stringify({ videos }, null, 2)}\n`);
    return { rows, records: ordered };
  } finally {
    await lock?.release();
  }
}
