/**
 * The clips tables as a view over per-video records, so that any number of runs (ranks,
 * queue workers, machines on one NFS folder) can share one output folder:
 *
 *   outDir/.units/<video_id>.json   one record per finished video (its videos.csv row, its
 *                                   clips.csv rows, its span issues), written atomically
 *   outDir/videos.csv, clips.csv, span_issues.csv
 *                                   rebuilt from every record present, under one lock
 *                                   (`outDir/.tables.lock`), each written atomically
 *
 * Rows follow the order of the source list; a listed video without a record yet has a
 * pending row (not downloaded, not failed, no clips). Records of videos not in the list are
 * left alone and not shown.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { writeCsvAtomic } from '../util/csv.js';
import { waitForLock } from '../util/lock.js';
import { VIDEO_COLUMNS, type VideoRow } from './item.js';
import { CLIP_COLUMNS, writeClipShards, type ClipRecord, type ShardOutput } from './package.js';
import type { SpanIssue } from './plan.js';

export const UNITS_DIR = '.units';
export const ISSUE_COLUMNS = ['video_id', 'span', 'action', 'reason'] as const;

/** What a finished video leaves for the tables. */
export interface UnitRecord {
  video_id: string;
  row: VideoRow;
  clips: ClipRecord[];
  issues: SpanIssue[];
}

/** The record file of a video: its id made safe for a file name without two ids meeting (`a.b` and `a-b` stay apart). */
export function unitRecordPath(outDir: string, videoId: string): string {
  return join(outDir, UNITS_DIR, `${encodeURIComponent(videoId).replace(/\*/g, '%2A')}.json`);
}

/** Writes a video's record atomically: a reader sees the whole record or none. */
export async function writeUnitRecord(outDir: string, record: UnitRecord): Promise<void> {
  const path = unitRecordPath(outDir, record.video_id);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(record)}\n`);
}

export const pendingRow = (videoId: string): VideoRow => ({
  video_id: videoId,
  downloaded: false,
  failed: false,
  error: '',
  path: '',
  duration: '',
  num_clips: 0,
});

export interface TablesView {
  rows: VideoRow[];
  clips: ClipRecord[];
  issues: SpanIssue[];
  /** The records found, by video id (listed videos only). */
  records: Map<string, UnitRecord>;
  /** Every listed video has a record. */
  complete: boolean;
}

/**
 * The tables of one output folder for one source list. `rebuild()` reads the records (only
 * those changed since the last read) and rewrites the three tables under the folder's table
 * lock; calls made while one runs are folded into one more run after it.
 */
export class ClipTables {
  readonly videosCsv: string;
  readonly clipsCsv: string;
  readonly issuesCsv: string;
  readonly #cache = new Map<string, { key: string; record: UnitRecord }>();
  #running: Promise<TablesView> | null = null;
  #again: Promise<TablesView> | null = null;

  /** `listIssues`: issues of the list itself (spans of unlisted videos), first in span_issues.csv. */
  constructor(
    readonly outDir: string,
    readonly videoIds: readonly string[],
    readonly listIssues: readonly SpanIssue[] = [],
    readonly signal?: AbortSignal,
  ) {
    this.videosCsv = join(outDir, 'videos.csv');
    this.clipsCsv = join(outDir, 'clips.csv');
    this.issuesCsv = join(outDir, 'span_issues.csv');
  }

  /** Reads every record of a listed video (a changed file is read again). */
  async read(): Promise<TablesView> {
    const dir = join(this.outDir, UNITS_DIR);
    const names = new Set(await readdir(dir).catch(() => [] as string[]));
    const records = new Map<string, UnitRecord>();
    for (const id of this.videoIds) {
      const path = unitRecordPath(this.outDir, id);
      if (!names.has(path.slice(dir.length + 1))) continue;
      const st = await stat(path).catch(() => null);
      if (!st) continue;
      const key = `${st.mtimeMs}:${st.size}`;
      let hit = this.#cache.get(id);
      if (hit?.key !== key) {
        let record: UnitRecord;
        try {
          record = JSON.parse(await readFile(path, 'utf8')) as UnitRecord;
        } catch (err) {
          throw new ClipstreamError('ERR_FORMAT', `${path}: not a clips unit record (${(err as Error).message}); remove it to redo video ${id}`, {
            cause: err,
            where: { file: path, key: id },
          });
        }
        hit = { key, record };
        this.#cache.set(id, hit);
      }
      records.set(id, hit.record);
    }
    const listed = this.videoIds.map((id) => records.get(id));
    return {
      rows: listed.map((r, i) => r?.row ?? pendingRow(this.videoIds[i]!)),
      clips: listed.flatMap((r) => r?.clips ?? []),
      issues: [...this.listIssues, ...listed.flatMap((r) => r?.issues ?? [])],
      records,
      complete: records.size === this.videoIds.length,
    };
  }

  /** Rewrites videos.csv, clips.csv and span_issues.csv from the records, under the table lock. */
  rebuild(): Promise<TablesView> {
    if (this.#running) {
      this.#again ??= this.#running.then(
        () => this.#start(),
        () => this.#start(),
      );
      return this.#again;
    }
    return this.#start();
  }

  #start(): Promise<TablesView> {
    this.#again = null;
    const p = this.locked(async () => {
      const view = await this.read();
      await writeCsvAtomic(this.videosCsv, VIDEO_COLUMNS, view.rows);
      await writeCsvAtomic(this.clipsCsv, CLIP_COLUMNS, view.clips);
      // Always written, so an empty table says "nothing was lost" rather than "not checked".
      await writeCsvAtomic(
        this.issuesCsv,
        ISSUE_COLUMNS,
        view.issues.map((x) => ({ video_id: x.videoId, span: x.span, action: x.action, reason: x.reason })),
      );
      return view;
    });
    this.#running = p;
    void p.finally(() => {
      if (this.#running === p) this.#running = null;
    });
    return p;
  }

  /**
   * The tar shards, from the full clips table, once every listed video has a record:
   * whichever run finishes the last video writes them (under the table lock, so two runs
   * ending together write them once). Shards are numbered over the whole table, so ranks
   * sharing the folder never make two shards of one clip nor leave a clip out. Returns []
   * while videos are still to do.
   */
  async writeShards(clipsDir: string, shardsDir: string, shardSize: number): Promise<{ shards: ShardOutput[]; complete: boolean }> {
    return this.locked(async () => {
      const view = await this.read();
      if (!view.complete) return { shards: [], complete: false };
      return { shards: await writeClipShards(view.clips, clipsDir, shardsDir, shardSize), complete: true };
    });
  }

  async locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await waitForLock(join(this.outDir, '.tables.lock'), { owner: 'clips', pollMs: 100, signal: this.signal });
    try {
      return await fn();
    } finally {
      await lock!.release();
    }
  }
}
