/**
 * Per-video records of `faces`: one file per finished (or failed) video under
 * `faces-records/`, written atomically by whichever run, rank, machine or queue worker did the
 * video. The shared outputs (metadata.csv/msgpack and faces-videos.json) are rebuilt from every
 * record present, under a lock and atomically, so any number of runs sharing one output folder
 * (NFS, a mounted bucket) never overwrite each other's videos.
 */
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { ClipstreamError } from '../errors.js';
import { UnitRecords, type RecordFormat } from '../sinks/unit-records.js';
import type { WarningHandler } from '../types.js';
import type { FaceSource } from './items.js';
import type { FaceRow } from './metadata.js';
import { readRows, readState, writeTables, type VideoLog } from './record.js';

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

/** A video's record as `faces-records/<key>.msgpack`. */
const FORMAT: RecordFormat<VideoRecord> = {
  suffix: '.msgpack',
  encode: (record) => packr.pack(record),
  decode: (bytes) => {
    const r = unpackr.unpack(bytes) as VideoRecord;
    return r && typeof r.rel === 'string' && r.log ? r : null;
  },
};

/**
 * The record store of an output folder's videos (src/sinks/unit-records.ts), by key, with the
 * tables lock; a damaged record is warned about and its video done again.
 */
export function faceRecords(outputDir: string, o: { onWarning?: WarningHandler; signal?: AbortSignal } = {}): UnitRecords<VideoRecord> {
  const { onWarning } = o;
  return new UnitRecords(join(outputDir, RECORDS_DIR), FORMAT, {
    tablesLock: join(outputDir, TABLES_LOCK),
    owner: 'faces',
    ...(o.signal ? { signal: o.signal } : {}),
    ...(onWarning
      ? {
          onBad: (path: string) =>
            onWarning(new ClipstreamError('ERR_IO', `${path}: unreadable video record; its video is done again`, { where: { file: path } })),
        }
      : {}),
  });
}

export const recordPath = (outputDir: string, key: string): string => faceRecords(outputDir).path(key);

/** Every record present, by relative path. A damaged record is warned about (by the store's `onBad`) and left out (its video is redone). */
export async function readAllRecords(records: UnitRecords<VideoRecord>): Promise<Map<string, VideoRecord>> {
  return new Map([...(await records.readAll()).values()].map((r) => [r.rel, r]));
}

/**
 * Output made before records existed (faces-videos.json and metadata.msgpack only): each video
 * done there gets a record with its rows, so it is not redone. Its clips are not in any staging
 * store, so `--make_lmdb` redoes it.
 */
export async function migrateLegacyOutput(
  store: UnitRecords<VideoRecord>,
  outputDir: string,
  inputDir: string,
  records: Map<string, VideoRecord>,
): Promise<void> {
  if (records.size > 0) return;
  const state = await readState(outputDir);
  if (Object.keys(state).length === 0) return;
  const rows = await readRows(outputDir);
  for (const [rel, log] of Object.entries(state)) {
    if (log.status !== 'done' || !log.key) continue;
    const mine = rows.filter((r) => r.file_original === join(inputDir, rel));
    if (mine.length !== log.clips.length) continue;
    const record: VideoRecord = { rel, log, rows: mine, lmdb: false };
    await store.write(log.key, record);
    records.set(rel, record);
  }
}

/**
 * Rebuilds metadata.csv/msgpack and faces-videos.json from every record present, under the
 * tables lock (other runs sharing the folder wait for it), each file written atomically. Rows
 * and entries follow the order of `sources` (the whole input folder's list); records of videos
 * not in it come first, by path. Returns every row and record.
 */
export function rebuildTables(
  store: UnitRecords<VideoRecord>,
  outputDir: string,
  sources: readonly FaceSource[],
): Promise<{ rows: FaceRow[]; records: VideoRecord[] }> {
  return store.rebuild(async (found) => {
    const position = new Map(sources.map((s) => [s.rel, s.index]));
    const ordered = [...new Map([...found.values()].map((r) => [r.rel, r])).values()].sort(
      (a, b) => (position.get(a.rel) ?? -1) - (position.get(b.rel) ?? -1) || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0),
    );
    const rows = ordered.flatMap((r) => r.rows);
    await writeTables(outputDir, rows, Object.fromEntries(ordered.map((r) => [r.rel, r.log])));
    return { rows, records: ordered };
  });
}
