import { readFile, rm } from 'node:fs/promises';
import { Unpackr } from 'msgpackr';
import { join } from 'node:path';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import { itemSink } from '../stage/item-stage.js';
import type { WarningHandler } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { FaceItem, FaceSource } from './items.js';
import { writeMetadata, type FaceRow } from './metadata.js';

/** Per-video state for resuming, in the output folder. */
export const STATE_FILE = 'faces-videos.json';

export interface VideoLog {
  file: string;
  status: 'done' | 'failed' | 'skipped (done before)' | 'skipped (locked)';
  /** Stem of the video's clip keys (kept across reruns, see src/media/video-folder.ts). */
  key?: string;
  clips: string[];
  /** The video as displayed (after its rotation), and how many frames were sampled for detection. */
  width?: number;
  height?: number;
  rotation?: number;
  sampledFrames?: number;
  error?: string;
  /** The failure was one of circumstance (a decoder killed or stalled): the next run retries the video like any failed one. Absent when false. */
  transient?: true;
}

export interface RecordState {
  /** Resume state by relative path; updated and saved after every source. */
  videos: Record<string, VideoLog>;
  /** Every metadata row (earlier runs' included), saved after every source. */
  rows: FaceRow[];
  /** Logs of the sources this run processed, in the order they finished. */
  logs: Array<VideoLog & { index: number }>;
}

export interface RecordOptions {
  outputDir: string;
  /** All sources of the run, for the order of rows and state entries. */
  sources: FaceSource[];
  onWarning: WarningHandler;
  /** Called after each source is recorded, with its clips (none when it failed) and the clips it lost by failing. */
  onSource?: (log: VideoLog, clips: number, lost: number) => void;
  /**
   * Saves one source's outcome instead of the default (the whole table kept in `state` and
   * rewritten after every source): the job writes a per-video record and rebuilds the tables.
   */
  saveSource?: (source: FaceSource, log: VideoLog, rows: FaceRow[]) => Promise<void>;
}

/**
 * Sink: rows and source ends in; after each source, its log entry, the resume state and the
 * metadata files are written (atomically), so a run killed at any point keeps every finished
 * video. A source that failed (its decode, or one of its clips) keeps no rows, and the clip
 * files it wrote are removed; it is redone on the next run.
 *
 * @example
 * await pipeline(Readable.from(sources), sampleFrames, detect, track, crop, encode, facesRecordSink(state, options));
 * // state.rows, state.videos and state.logs now hold the run's outcome
 */
export function facesRecordSink(state: RecordState, o: RecordOptions) {
  const position = new Map(o.sources.map((s) => [s.path, s.index]));
  const order = (rel: string) => o.sources.find((s) => s.rel === rel)?.index ?? -1;
  const pending = new Map<FaceSource, { rows: FaceRow[]; error?: ClipstreamError }>();
  const of = (s: FaceSource) => {
    let p = pending.get(s);
    if (!p) {
      p = { rows: [] };
      pending.set(s, p);
    }
    return p;
  };
  const take = async (item: FaceItem): Promise<void> => {
    if (item.kind === 'row') of(item.source).rows.push(item.row);
    else if (item.kind === 'clip' && item.failure) of(item.source).error ??= item.failure.error;
    if (item.kind !== 'source-end') return;
    const { source } = item;
    const p = of(source);
    pending.delete(source);
    const error = item.error ?? p.error;
    const info = source.info;
    const seen = info ? { width: info.displayWidth, height: info.displayHeight, rotation: info.rotation, sampledFrames: item.samples ?? 0 } : {};
    let log: VideoLog;
    if (error) {
      const e = toClipstreamError(error, 'ERR_DECODE', { file: source.path });
      log = { file: source.rel, status: 'failed', key: source.key, clips: [], ...seen, error: e.message, ...(e.transient ? { transient: true as const } : {}) };
      o.onWarning(
        new ClipstreamError(e.code, `${e.message.includes(source.path) ? e.message : `${source.path}: ${e.message}`} (video skipped)`, {
          cause: e,
          where: { file: source.path },
        }),
      );
      for (const r of p.rows) {
        for (const f of [r.file_relative, r.audio_file]) if (f) await rm(join(o.outputDir, String(f)), { force: true });
      }
    } else {
      p.rows.sort((a, b) => Number(a.track) - Number(b.track));
      log = { file: source.rel, status: 'done', key: source.key, clips: p.rows.map((r) => String(r.clip_key)), ...seen };
    }
    state.logs.push({ ...log, index: source.index });
    if (o.saveSource) await o.saveSource(source, log, error ? [] : p.rows);
    else {
      if (!error) state.rows.push(...p.rows);
      state.videos[source.rel] = log;
      await save(state, o.outputDir, position, order);
    }
    o.onSource?.(log, error ? 0 : p.rows.length, error ? p.rows.length + (p.error ? 1 : 0) : 0);
  };
  return itemSink({ name: 'record', needs: ['row', 'source-end'] }, take);
}

/** Writes metadata.csv/msgpack and the resume state, rows and entries in source order. */
export async function save(state: RecordState, outputDir: string, position: Map<string, number>, order: (rel: string) => number): Promise<void> {
  const rank = (r: FaceRow) => position.get(String(r.file_original)) ?? -1;
  state.rows = state.rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i)
    .map(({ r }) => r);
  await writeTables(outputDir, state.rows, Object.fromEntries(Object.entries(state.videos).sort(([a], [b]) => order(a) - order(b))));
}

/**
 * The one writer of the faces tables: metadata.csv/msgpack (`rows`) and the resume state
 * faces-videos.json (`videos`, by relative path), each atomically, in the order given.
 */
export async function writeTables(outputDir: string, rows: FaceRow[], videos: Record<string, VideoLog>): Promise<void> {
  await writeMetadata(outputDir, rows);
  await writeFileAtomic(join(outputDir, STATE_FILE), `${JSON.stringify({ videos }, null, 2)}\n`);
}

/** The resume state of an earlier run in `outputDir` (empty when there is none). */
export async function readState(outputDir: string): Promise<Record<string, VideoLog>> {
  try {
    return (JSON.parse(await readFile(join(outputDir, STATE_FILE), 'utf8')) as { videos?: Record<string, VideoLog> }).videos ?? {};
  } catch {
    return {};
  }
}

/** The metadata rows of an earlier run in `outputDir` (none when there are none). */
export async function readRows(outputDir: string): Promise<FaceRow[]> {
  try {
    return new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(await readFile(join(outputDir, 'metadata.msgpack'))) as FaceRow[];
  } catch {
    return [];
  }
}
