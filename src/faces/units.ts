/**
 * What the `faces` job tells the job runner about its units (the source videos): which were
 * done before (their record says so), how each one's outcome is saved (a per-video record, then
 * the shared tables rebuilt), and the report's video list.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import type { UnitRecords } from '../sinks/unit-records.js';
import type { JobRun, UnitResult } from '../stage/job-run.js';
import type { WarningHandler } from '../types.js';
import { LMDB_DIR } from './encode.js';
import type { FaceSource } from './items.js';
import type { FaceRow } from './metadata.js';
import type { VideoLog } from './record.js';
import { faceRecords, migrateLegacyOutput, readAllRecords, rebuildTables, RECORDS_DIR, type VideoRecord } from './records.js';
import { exportStores, removeDeadStaging, STAGING_DIR, stagingPath, type StoreExport, type UnitStores } from './staging.js';

export interface UnitsOptions {
  inputDir: string;
  outputDir: string;
  makeLmdb: boolean;
  overwrite: boolean;
  /** The run redoes every video of the folder (overwrite, one rank, no `only`): earlier records are cleared. */
  clearAll: boolean;
  onWarning: WarningHandler;
  signal?: AbortSignal;
}

/** The videos of the input folder with their keys (kept from earlier records), and the runner's resume hooks. */
export class FaceUnits {
  /** Videos done before whose clips are not in a staging store while --make_lmdb asks for them. */
  readonly #unstored = new Set<string>();
  #records = new Map<string, VideoRecord>();
  /** Logs of the videos skipped as done before, by path. */
  readonly #before = new Map<string, VideoLog>();
  /** Clips of the videos skipped as done before (the progress counts them). */
  clipsBefore = 0;

  private constructor(
    readonly o: UnitsOptions,
    readonly sources: FaceSource[],
    /** The videos' records (`faces-records/<key>.msgpack`) and the tables lock. */
    readonly store: UnitRecords<VideoRecord>,
  ) {}

  static async open(o: UnitsOptions, list: (previousKeys: Record<string, string>) => Promise<FaceSource[]>): Promise<FaceUnits> {
    if (o.clearAll) for (const d of [RECORDS_DIR, STAGING_DIR]) await rm(join(o.outputDir, d), { recursive: true, force: true });
    await mkdir(join(o.outputDir, RECORDS_DIR), { recursive: true });
    await removeDeadStaging(o.outputDir);
    const store = faceRecords(o.outputDir, { onWarning: o.onWarning, ...(o.signal ? { signal: o.signal } : {}) });
    const records = await readAllRecords(store);
    await migrateLegacyOutput(store, o.outputDir, o.inputDir, records);
    // Keys are given over the whole folder, then each rank takes its share: every rank agrees on them.
    const keys = Object.fromEntries([...records.values()].filter((r) => r.log.key).map((r) => [r.rel, r.log.key!]));
    const units = new FaceUnits(o, await list(keys), store);
    units.#records = records;
    return units;
  }

  /** Says which of this run's videos are done but must be made again for the LMDB store (one warning for all). */
  checkStored(run: JobRun<FaceSource>): void {
    if (!this.o.makeLmdb || this.o.overwrite) return;
    const unstored = run.units.filter((s) => {
      const r = this.#records.get(s.rel);
      return r?.log.status === 'done' && r.log.clips.length > 0 && !r.lmdb;
    });
    for (const s of unstored) this.#unstored.add(s.rel);
    if (unstored.length > 0)
      this.o.onWarning(
        new ClipstreamError(
          'ERR_IO',
          `${LMDB_DIR}: ${unstored.length} video(s) done before have clips missing from the store (made without --make_lmdb?); processing them again: ${unstored.map((s) => s.rel).join(', ')}`,
        ),
      );
    this.#records = new Map();
  }

  /** The video's record when it is done and need not be made again (read afresh: another machine may have done it). */
  async doneRecord(s: FaceSource): Promise<VideoRecord | null> {
    if (this.o.overwrite || this.#unstored.has(s.rel)) return null;
    const r = await this.store.read(s.key);
    if (!r || r.rel !== s.rel || r.log.status !== 'done') return null;
    if (this.o.makeLmdb && r.log.clips.length > 0 && !(r.lmdb && (await stat(stagingPath(this.o.outputDir, s.key)).catch(() => null)))) return null;
    return r;
  }

  /** The runner's resume hook: a video done before is skipped; one to redo loses its old record first. */
  resume = async (s: FaceSource): Promise<UnitResult | null> => {
    const r = await this.doneRecord(s);
    if (!r) {
      await this.store.remove(s.key);
      return null;
    }
    this.clipsBefore += r.log.clips.length;
    this.#before.set(s.rel, r.log);
    return { unit: s.rel, outcome: 'skipped', status: 'skipped (done before)', key: s.key, clips: r.log.clips.length };
  };

  /** The record sink's save hook: the video's record, its staging store in place, the tables rebuilt. */
  save = async (stores: UnitStores | null, source: FaceSource, log: VideoLog, rows: FaceRow[]): Promise<void> => {
    if (stores) await (log.status === 'done' ? stores.commit(source) : stores.discard(source));
    await this.store.write(source.key, { rel: source.rel, log, rows, lmdb: stores !== null && log.status === 'done' });
    await this.rebuild();
  };

  /**
   * Exports faces.lmdb from the staging stores once every video of the list has a final record
   * (see exportStores); otherwise says which videos it waits for.
   */
  exportLmdb(): Promise<StoreExport> {
    return exportStores(this.o.outputDir, join(this.o.outputDir, LMDB_DIR), this.o.onWarning, {
      signal: this.o.signal,
      sources: this.sources,
      records: this.store,
    });
  }

  /** Rebuilds metadata.csv/msgpack and faces-videos.json from every record; returns rows and records. */
  rebuild(): Promise<{ rows: FaceRow[]; records: VideoRecord[] }> {
    return rebuildTables(this.store, this.o.outputDir, this.sources);
  }

  /** The report's videos: those skipped (in list order), then those this run processed (in list order). */
  videos(run: JobRun<FaceSource>, processed: Array<VideoLog & { index: number }>): VideoLog[] {
    const skipped = run
      .results()
      .filter((r) => r.outcome === 'skipped')
      .map((r): VideoLog => ({ ...(this.#before.get(r.unit) ?? { file: r.unit, clips: [] }), status: r.status as VideoLog['status'] }));
    return [...skipped, ...processed.sort((a, b) => a.index - b.index).map(({ index: _, ...log }) => log)];
  }
}
