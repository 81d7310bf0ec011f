/**
 * The job runner: what every job (extract, clips, faces, segments) shares around its stages,
 * written once. A job hands it the full list of its units of work (a shard, a source video)
 * and a body that pushes the units through its stages; the runner does the rest:
 *
 * - this run's share of the units (`--rank/--world`, src/util/partition.ts) and, for a queue
 *   worker, only the unit(s) it was handed (`only`);
 * - resume: a unit finished by an earlier run is recorded as skipped and never reaches a stage;
 * - one lock per unit (src/util/lock.ts), so runs and machines sharing a folder never write one
 *   unit twice;
 * - the temp files of a killed run are removed before anything starts;
 * - progress events (units and items: clips, frames) for the progress display;
 * - the run log `log_<host>_<pid>_<ms>.json`, rewritten atomically after every unit, and
 *   marked `finished` only once every result is in it;
 * - no ffmpeg child left behind when the body returns or throws;
 * - the final report, one result per unit in the order of the list.
 *
 * @example
 * const { result, report } = await runJob(
 *   { job: 'segments', units: videos, unitId: (v) => v, logDir: 'out' },
 *   async (run) => {
 *     for await (const v of run.pending()) run.unitDone({ unit: v, outcome: 'done', status: 'written' });
 *   },
 * );
 */
import { ClipstreamError } from '../errors.js';
import { liveChildProcesses } from '../media/process.js';
import { JobRun, type JobReport, type JobRunOptions, type UnitResult } from '../stage/job-run.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { removeDeadLocks, removeDeadTemps } from '../util/lock.js';
import { shareOf, WHOLE, type Partition } from '../util/partition.js';
import { ensureOutputDir } from '../util/validate.js';

/** This run's units: the share of `partition`, then `only` (an id not among the units is an error). */
export function selectUnits<U>(o: Pick<JobRunOptions<U>, 'job' | 'units' | 'unitId' | 'only'>, partition: Partition): U[] {
  const share = shareOf(o.units, partition);
  if (!o.only) return share;
  const ids = new Map(o.units.map((u) => [o.unitId(u), u] as const));
  const unknown = o.only.filter((id) => !ids.has(id));
  if (unknown.length > 0)
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `${o.job}: unit(s) not among the job's units: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`,
      {
        where: { key: unknown[0]! },
      },
    );
  const wanted = new Set(o.only);
  return o.units.filter((u) => wanted.has(o.unitId(u)));
}

/** Waits a moment for children that are exiting on their own; warns about any still running. */
async function checkChildren(onWarning: WarningHandler): Promise<void> {
  for (let i = 0; i < 40 && liveChildProcesses() > 0; i++) await new Promise((r) => setTimeout(r, 50));
  const left = liveChildProcesses();
  if (left > 0)
    onWarning(
      new ClipstreamError('ERR_PIPELINE', `${left} child process(es) (ffmpeg, ffprobe, a decompressor, a pipe: command) still running after the job ended`),
    );
}

/**
 * Runs a job: selects its units, prepares the output folder, calls `body` with the run handle,
 * and returns the body's result with the report. The log is `finished: true` only when the
 * body returned; on an error or an abort it stays `finished: false` with every result recorded
 * so far, and the error is rethrown.
 */
export async function runJob<U, R>(o: JobRunOptions<U>, body: (run: JobRun<U>) => Promise<R>): Promise<{ result: R; report: JobReport }> {
  if (o.feed && (o.only || (o.partition && o.partition.world > 1)))
    throw new ClipstreamError('ERR_INVALID_OPTION', `${o.job}: a run fed its units takes neither 'only' nor a share (--rank/--world)`);
  const partition = o.feed ? WHOLE : (o.partition ?? WHOLE);
  const units = o.feed ? o.units : selectUnits(o, partition);
  const onWarning = o.onWarning ?? defaultWarningHandler;
  if (o.logDir !== null) await ensureOutputDir(o.logDir, `${o.job} output folder`);
  for (const dir of new Set([...(o.logDir !== null ? [o.logDir] : []), ...(o.tempDirs ?? [])])) {
    await removeDeadTemps(dir);
    await removeDeadLocks(dir);
  }
  const run = new JobRun(o, units, partition);
  await run.writeLog(false);
  let result: R;
  let finished = false;
  try {
    result = await body(run);
    finished = true;
  } finally {
    await run.close();
    await checkChildren(onWarning);
    // Every way out: the log holds every result recorded, and says `finished` only on success.
    // When the run is failing already (a full disk, most likely), its own error is the one to report.
    await run.writeLog(finished).catch((err: unknown) => {
      if (finished) throw err;
    });
  }
  const results = run.results();
  const p = run.progress();
  const count = (k: UnitResult['outcome']) => results.filter((r) => r.outcome === k).length;
  return {
    result,
    report: {
      job: o.job,
      logPath: run.logPath,
      partition,
      units: results,
      done: count('done'),
      skipped: count('skipped'),
      failed: count('failed'),
      items: { done: p.itemsDone, failed: p.itemsFailed, skipped: p.itemsSkipped },
      seconds: (Date.now() - run.started) / 1000,
    },
  };
}
