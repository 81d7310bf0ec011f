/**
 * The clips tables as a view over per-video records, so that any number of runs (ranks,
 * queue workers, machines on one NFS folder) can share one output folder:
 *
 *   outputDir/.units/<video_id>.json   one record per finished video (its videos.csv row, its
 *                                   clips.csv rows, its span issues), written atomically
 *   outputDir/videos.csv, clips.csv, span_issues.csv
 *                                   rebuilt from every record present, under one lock
 *                                   (`outputDir/.tables.lock`), each written atomically
 *
 * Rows follow the order of the source list; a listed video without a record yet has a
 * pending row (not downloaded, not failed, no clips). Records of videos not in the list are
 * left alone and not shown.
 *
 * A rebuild reads every record, so it costs O(list) and rebuilding after every video costs
 * O(list²) per dataset. `update()` decides, under the table lock, whether one is due
 * (`outputDir/.tables.json` says for which list the tables were last written, when, and how long
 * that took): the rebuild that makes the tables complete always runs, others at most once per
 * max(`everyS`, TABLES_FACTOR × the last rebuild's duration) for the whole folder.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { jsonRecords, UnitRecords } from '../sinks/unit-records.js';
import type { WarningHandler } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { writeCsvAtomic } from '../util/csv.js';
import { fitName } from '../util/names.js';
import { VIDEO_COLUMNS, type VideoRow } from './item.js';
import { clipTable, type ClipRecord } from '../sinks/clip-table.js';
import { writeClipShards, type ShardOutput } from './package.js';
import type { SpanIssue } from './plan.js';
import { SHOT_COLUMNS, type RecordedShots } from './shots.js';

export const UNITS_DIR = '.units';
/** The stamp of the last rebuild in a folder: `{ list, ms, at }`. */
export const TABLES_STAMP = '.tables.json';
/** Default least seconds between two throttled rebuilds: the tables are a progress view, half a minute behind is current enough. */
export const TABLES_EVERY_S = 30;
/** A throttled rebuild waits at least this many times the last rebuild's duration: tables cost at most ~1/(1+factor) of the folder's time. */
export const TABLES_FACTOR = 10;
export const ISSUE_COLUMNS = ['video_id', 'span', 'action', 'reason'] as const;

/** What a finished video leaves for the tables. */
export interface UnitRecord {
  video_id: string;
  row: VideoRow;
  clips: ClipRecord[];
  issues: SpanIssue[];
  /** `--split=shots`: the video's shots (shots.csv), with the settings they were found with. */
  shots?: RecordedShots;
}

const isUnitRecord = (v: unknown): boolean => {
  const r = v as Partial<UnitRecord> | null;
  return (
    typeof r === 'object' && r !== null && typeof r.video_id === 'string' && typeof r.row === 'object' && Array.isArray(r.clips) && Array.isArray(r.issues)
  );
};

/**
 * The record store of an output folder's videos (src/sinks/unit-records.ts): `.units/<id>.json`,
 * the id made safe for a file name without two ids meeting (`a.b` and `a-b` stay apart), and
 * the table lock `.tables.lock`.
 */
export function clipRecords(outputDir: string, o: { signal?: AbortSignal; onWarning?: WarningHandler } = {}): UnitRecords<UnitRecord> {
  return new UnitRecords<UnitRecord>(join(outputDir, UNITS_DIR), jsonRecords({ check: isUnitRecord }), {
    fileStem: (videoId) => fitName(encodeURIComponent(videoId).replace(/\*/g, '%2A')),
    tablesLock: join(outputDir, '.tables.lock'),
    owner: 'clips',
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onWarning
      ? {
          onBad: (path: string, why: string) =>
            o.onWarning!(new ClipstreamError('ERR_FORMAT', `${path}: not a clips unit record (${why}); its video is done again`, { where: { file: path } })),
        }
      : {}),
  });
}

/** The record file of a video. */
export function unitRecordPath(outputDir: string, videoId: string): string {
  return clipRecords(outputDir).path(videoId);
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

/** When `update()` is called: at the start of a run, after a video is recorded, at the end of a run. */
export type TablesMoment = 'start' | 'video' | 'end';

export interface TablesUpdate {
  /** The tables were rewritten by this call. */
  rebuilt: boolean;
  /** Every listed video has a record (by the names in `.units/`; not checked by a `start` that wrote nothing: false). */
  complete: boolean;
  /** The view written, when rebuilt or when shards were written. */
  view?: TablesView;
  /** Written at the end of a run that found the list complete; [] otherwise. */
  shards: ShardOutput[];
}

export interface TablesPolicy {
  /** Least seconds between two rebuilds that do not complete the tables (0: no throttle). Default TABLES_EVERY_S. */
  everyS?: number;
  /** The end of this run rebuilds whatever the throttle says (a run over the whole list, world 1, no `only`). */
  wholeList?: boolean;
  /** With `shardSize > 0`, the end of a run that finds the list complete writes the tar shards. */
  shards?: { clipsDir: string; shardsDir: string; shardSize: number; keep?: ReadonlySet<string> };
  /** Also write `shots.csv` (`--split=shots`): the shots of every recorded video. */
  shotsTable?: boolean;
  /** Hears of a record file that holds no record (its video shows as pending, and the next run of it writes it anew). */
  onWarning?: WarningHandler;
}

/** Table work of one ClipTables, for the report. */
export interface TablesStats {
  rebuilds: number;
  skipped: number;
  /** Seconds spent in `update()` (lock, completeness check, rebuilds, shards). */
  seconds: number;
}

interface Stamp {
  list: string;
  ms: number;
  at: number;
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
  /** Written with `policy.shotsTable` only. */
  readonly shotsCsv: string;
  /** The videos' records (`.units/`) and the table lock. */
  readonly records: UnitRecords<UnitRecord>;
  #running: Promise<TablesView> | null = null;
  #again: Promise<TablesView> | null = null;
  readonly #stampPath: string;
  #listKey: string | null = null;
  /** This instance's last update was a complete rebuild and it has recorded nothing since. */
  #finalHere = false;
  /** What this instance's last `video` update found (null before its first). */
  #lastVideoComplete: boolean | null = null;
  readonly stats: TablesStats = { rebuilds: 0, skipped: 0, seconds: 0 };

  /** `listIssues`: issues of the list itself (spans of unlisted videos), first in span_issues.csv. */
  constructor(
    readonly outputDir: string,
    readonly videoIds: readonly string[],
    readonly listIssues: readonly SpanIssue[] = [],
    readonly signal?: AbortSignal,
    readonly policy: TablesPolicy = {},
  ) {
    this.videosCsv = join(outputDir, 'videos.csv');
    this.clipsCsv = join(outputDir, 'clips.csv');
    this.issuesCsv = join(outputDir, 'span_issues.csv');
    this.shotsCsv = join(outputDir, 'shots.csv');
    this.#stampPath = join(outputDir, TABLES_STAMP);
    this.records = clipRecords(outputDir, { ...(signal ? { signal } : {}), ...(policy.onWarning ? { onWarning: policy.onWarning } : {}) });
  }

  /** What the tables depend on besides the records: the list and its own issues. */
  get listKey(): string {
    this.#listKey ??= createHash('sha256')
      .update(JSON.stringify([this.videoIds, this.listIssues]))
      .digest('hex');
    return this.#listKey;
  }

  /** Every listed video has a record: one readdir of `.units/` against the listed ids' file names, no stat or parse per record. */
  isComplete(): Promise<boolean> {
    return this.records.hasAll(this.videoIds);
  }

  async #readStamp(): Promise<Stamp | null> {
    try {
      const s = JSON.parse(await readFile(this.#stampPath, 'utf8')) as Stamp;
      return typeof s.list === 'string' && Number.isFinite(s.ms) && Number.isFinite(s.at) ? s : null;
    } catch {
      return null;
    }
  }

  /** The tables exist, were last written for this list, that recently (see TABLES_FACTOR). */
  #throttled(stamp: Stamp | null, now: number): boolean {
    const everyS = this.policy.everyS ?? TABLES_EVERY_S;
    if (!stamp || stamp.list !== this.listKey || everyS <= 0) return false;
    const age = now - stamp.at;
    return age >= 0 && age < Math.max(everyS * 1000, TABLES_FACTOR * stamp.ms);
  }

  /**
   * Rebuilds the tables if one is due at this moment, all under the table lock:
   * - `start`: only when the tables do not exist yet or were written for another list (so a
   *   crashed run still shows what was planned);
   * - `video`: when the list is complete (the run recording the last video, whichever it is,
   *   leaves final tables), else when the throttle allows;
   * - `end`: when complete, unless this run already rebuilt them complete since its last
   *   video; else for a whole-list run, or when the throttle allows. A complete list also gets
   *   its shards.
   * Records are written before this is called, so of two runs recording the last videos at
   * once the second to take the lock sees both records, finds the list complete and rebuilds.
   */
  async update(moment: TablesMoment): Promise<TablesUpdate> {
    const t0 = performance.now();
    if (moment === 'video') this.#finalHere = false;
    try {
      return await this.locked(async () => {
        // The start does not need it (it only checks that the tables are there and for this list).
        // Nor does the end of a run whose last video found the list incomplete: the record then
        // missing is written before its own run's check, which comes after ours and completes.
        const complete = moment !== 'start' && !(moment === 'end' && this.#lastVideoComplete === false) && (await this.isComplete());
        if (moment === 'video') this.#lastVideoComplete = complete;
        const stamp = await this.#readStamp();
        let due: boolean;
        if (moment === 'start') due = stamp?.list !== this.listKey || !(await stat(this.videosCsv).catch(() => null));
        else if (moment === 'video') due = complete || !this.#throttled(stamp, Date.now());
        // Complete and already rebuilt complete by this run since its last video: final as they are.
        else if (complete) due = !this.#finalHere;
        else due = this.policy.wholeList === true || !this.#throttled(stamp, Date.now());
        let view: TablesView | undefined;
        if (due) {
          view = await this.#write();
          this.#finalHere = view.complete;
          this.stats.rebuilds++;
        } else this.stats.skipped++;
        // The tar shards, from the full clips table, once every listed video has a record, under
        // the table lock (two runs ending together write them once). Numbered over the whole
        // table, so ranks sharing the folder never make two shards of one clip nor leave one out.
        let shards: ShardOutput[] = [];
        const sh = this.policy.shards;
        if (moment === 'end' && (view?.complete ?? complete) && sh && sh.shardSize > 0) {
          view ??= await this.read();
          if (view.complete) shards = await writeClipShards(view.clips, sh.clipsDir, sh.shardsDir, sh.shardSize, sh.keep);
        }
        return { rebuilt: due, complete: view?.complete ?? complete, ...(view ? { view } : {}), shards };
      });
    } finally {
      this.stats.seconds += (performance.now() - t0) / 1000;
    }
  }

  /** The records of these videos (this run's), in list order, without reading the others. */
  readSome(videoIds: Iterable<string>): Promise<Map<string, UnitRecord>> {
    const want = new Set(videoIds);
    return this.records.readMany(this.videoIds.filter((id) => want.has(id)));
  }

  /** Reads every record of a listed video (a changed file is read again). */
  async read(): Promise<TablesView> {
    const records = await this.records.readMany(this.videoIds);
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
    const p = this.locked(() => this.#write());
    this.#running = p;
    void p.finally(() => {
      if (this.#running === p) this.#running = null;
    });
    return p;
  }

  /** Reads the records and rewrites the three tables and the stamp; the caller holds the table lock. */
  async #write(): Promise<TablesView> {
    const t0 = performance.now();
    const view = await this.read();
    await writeCsvAtomic(this.videosCsv, VIDEO_COLUMNS, view.rows);
    const clips = clipTable(view.clips);
    await writeCsvAtomic(this.clipsCsv, clips.columns, clips.rows);
    // Always written, so an empty table says "nothing was lost" rather than "not checked".
    await writeCsvAtomic(
      this.issuesCsv,
      ISSUE_COLUMNS,
      view.issues.map((x) => ({ video_id: x.videoId, span: x.span, action: x.action, reason: x.reason })),
    );
    if (this.policy.shotsTable) {
      const shots = this.videoIds.flatMap((id) => view.records.get(id)?.shots?.rows ?? []);
      await writeCsvAtomic(this.shotsCsv, SHOT_COLUMNS, shots);
    }
    const stamp: Stamp = { list: this.listKey, ms: Math.round(performance.now() - t0), at: Date.now() };
    await writeFileAtomic(this.#stampPath, `${JSON.stringify(stamp)}\n`);
    return view;
  }

  /** Runs `fn` holding the folder's table lock. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.records.locked(fn);
  }
}
