/**
 * The `score` job: clips that exist (a folder, or webdataset tar shards: brace ranges as
 * `extract` takes them) in, `scores.csv` out, one row per clip with the scores of
 * src/features/clip-scores.ts; with a filter, `kept` and `filter_reason` too. Units are the
 * inputs, run by the job runner (ranks, `only`, the run log, locks):
 *
 *   inputs → clips (tar members to temp files) → score (stage kit) → per-unit record → scores.csv
 *
 *   outputDir/scores.csv                 rebuilt from the records, in input order
 *   outputDir/.units/<unit>.json         one record per finished input
 *   outputDir/.scores/<unit>/<clip>.json each clip's scores as it is scored (a killed run resumes)
 *
 * The filter is applied when the table is written, from the kept scores: running again with
 * another filter re-decides without scoring anything again.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { countReasons, decide, parseFilter, type FilterRule } from '../clips/filter.js';
import { scoreItems, scoreStage, scoreUnits, type ScoreItem, type ScoreUnit, type ScoreUnitEnd } from '../clips/score-stage.js';
import { SCORES_DIR } from '../clips/stored-scores.js';
import { ClipstreamError } from '../errors.js';
import { parseScoreList, type ScoreName, type ScoreSetup } from '../features/clip-scores.js';
import { closeModels, openPluginScorers, PLUGIN_FRAMES, type ScorerSpec } from '../infer/scorers.js';
import { loadTextDetector, textArea, type TextBox } from '../infer/text-detector.js';
import { runJob } from '../run/runner.js';
import { expandShardPatterns } from '../shards/brace.js';
import { jsonRecords, UnitRecords } from '../sinks/unit-records.js';
import { pipeline } from '../stage/index.js';
import type { JobReport } from '../stage/job-run.js';
import { defaultWarningHandler, type CommonJobOptions, type WarningHandler } from '../types.js';
import { writeCsvAtomic } from '../util/csv.js';
import { fitName } from '../util/names.js';
import type { JobProgress } from '../util/progress.js';
import { validateInteger, validateString } from '../util/validate.js';

export interface ScoreOptions extends CommonJobOptions<JobProgress> {
  /** A folder of clips, or tar shard(s): a path or brace pattern (`shards/shard-{000000..000009}.tar`), or a list. */
  input: string | readonly string[];
  /** Folder for scores.csv (the CLI's `--out_dir`). */
  outputDir: string;
  /** Which scores (as the clips job's `scores`; default the pixel scores). */
  scores?: boolean | string | readonly string[];
  /** Plug-in ONNX scorers, as the clips job's `scorers`: columns `{name}_score` after the scores. */
  scorers?: string | readonly (string | ScorerSpec)[];
  /** Frames of each clip a plug-in scorer runs on, evenly spaced (default PLUGIN_FRAMES, 3). */
  scorerFrames?: number;
  /** Keep only clips passing every rule: `kept` and `filter_reason` columns. */
  filter?: string | readonly FilterRule[];
  ffmpegPath?: string;
}

/** One row of scores.csv. */
export interface ScoreRow {
  input: string;
  clip: string;
  error: string;
  [column: string]: string | number | boolean;
}

interface ScoreRecord {
  unit: string;
  columns: string[];
  rows: { clip: string; error: string; scores: Record<string, number | string> }[];
  error: string;
}

export interface ScoreReport {
  rows: ScoreRow[];
  scoresCsv: string;
  /** Clips that could not be scored (their row has an error). */
  failed: number;
  /** With a filter: how many clips each reason kept out. */
  filtered: Record<string, number>;
  run: JobReport;
}

async function inputsOf(input: string | readonly string[]): Promise<{ paths: string[]; folders: Set<string> }> {
  const list = typeof input === 'string' ? [input] : [...input];
  const paths: string[] = [];
  const folders = new Set<string>();
  for (const item of list) {
    const st = await stat(item).catch(() => null);
    if (st?.isDirectory()) {
      paths.push(item);
      folders.add(item);
    } else paths.push(...expandShardPatterns(item));
  }
  return { paths, folders };
}

/**
 * Scores clips that exist. A clip that cannot be decoded is a row with its error; the others go
 * on. Re-running resumes: finished inputs are kept, and clips scored before a kill are not scored again.
 *
 * @example const r = await score({ input: 'out/clips/clips', outputDir: 'out/scored', filter: 'motion>=0.02' });
 */
export async function score(options: ScoreOptions): Promise<ScoreReport> {
  const outputDir = validateString(options?.outputDir, 'options.outputDir');
  if (options.input === undefined || (typeof options.input === 'string' && options.input === ''))
    throw new ClipstreamError('ERR_INVALID_OPTION', 'options.input is required (a folder of clips or tar shards)', { where: { option: 'options.input' } });
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const names = parseScoreList(options.scores, 'options.scores');
  const plug = await openPluginScorers(
    options.scorers,
    validateInteger(options.scorerFrames ?? PLUGIN_FRAMES, 'options.scorerFrames', 1, 1000),
    'options.scorers',
  );
  if (names.length === 0 && plug.columns.length === 0)
    throw new ClipstreamError('ERR_INVALID_OPTION', 'options.scores: nothing to score', { where: { option: 'options.scores' } });
  const setup: ScoreSetup = plug.columns.length > 0 ? { names, columns: [...names, ...plug.columns], plugins: plug.plugins } : { names, columns: names };
  // text_area: PP-OCRv4 on a few frames of each clip at 640 px (src/clips/score-file.ts, textAreaOfFile).
  const detector = names.includes('text_area') ? await loadTextDetector({ onWarning: (m) => onWarning(new ClipstreamError('ERR_MODEL', m)) }) : undefined;
  if (detector) setup.textFile = { detector, area: (boxes, w, h) => textArea(boxes as TextBox[], w, h) };
  try {
    return await scoreWith(options, { outputDir, names, setup, onWarning });
  } finally {
    await closeModels(detector, plug.scorers);
  }
}

async function scoreWith(
  options: ScoreOptions,
  { outputDir, names, setup, onWarning }: { outputDir: string; names: readonly ScoreName[]; setup: ScoreSetup; onWarning: WarningHandler },
): Promise<ScoreReport> {
  const rules = options.filter === undefined ? [] : parseFilter(options.filter, setup.columns, 'options.filter');
  for (const r of rules)
    if (!setup.columns.includes(r.column))
      throw new ClipstreamError(
        'ERR_INVALID_OPTION',
        `options.filter: filter term '${r.column}${r.op}${r.value}': score filters only on scores (${setup.columns.join(', ')})`,
        {
          where: { option: 'options.filter' },
        },
      );
  const { paths, folders } = await inputsOf(options.input);
  const units = scoreUnits(paths, (p) => folders.has(p));
  const ids = new Set<string>();
  for (const u of units) {
    if (ids.has(u.id)) throw new ClipstreamError('ERR_INVALID_OPTION', `options.input: two inputs are named ${u.id}`, { where: { option: 'options.input' } });
    ids.add(u.id);
  }
  const records = new UnitRecords<ScoreRecord>(join(outputDir, '.units'), jsonRecords<ScoreRecord>(), {
    fileStem: (id) => fitName(encodeURIComponent(id)),
    tablesLock: join(outputDir, '.tables.lock'),
    owner: 'score',
    ...(options.signal ? { signal: options.signal } : {}),
  });
  await mkdir(join(outputDir, '.units'), { recursive: true });
  const scoresDir = join(outputDir, SCORES_DIR);
  const workDir = join(outputDir, '.work');
  const { report: run } = await runJob(
    {
      job: 'score',
      units,
      unitId: (u) => u.id,
      partition: options.partition,
      only: options.only,
      logDir: outputDir,
      tempDirs: [join(outputDir, '.units'), workDir],
      logOptions: { input: options.input, scores: names },
      locks: { finalPath: (u) => records.path(u.id) },
      resume: async (u) => {
        const r = await records.read(u.id).catch(() => null);
        return r && setup.columns.every((c) => r.columns.includes(c)) ? { unit: u.id, outcome: 'skipped', status: 'exists', clips: r.rows.length } : null;
      },
      signal: options.signal,
      onWarning,
      onProgress: options.onProgress,
      unitNoun: 'inputs',
      itemNoun: 'clips',
    },
    async (job) => {
      let rows: ScoreRecord['rows'] = [];
      await pipeline(
        Readable.from(scoreItems(job.pending(), workDir), { objectMode: true, highWaterMark: 1 }),
        scoreStage({ setup, scoresDir, ffmpegPath: options.ffmpegPath, signal: options.signal }),
        async (source: AsyncIterable<ScoreItem | ScoreUnitEnd>) => {
          for await (const item of source) {
            if ('unitEnd' in item) {
              const record: ScoreRecord = { unit: item.unitEnd.id, columns: [...setup.columns], rows, error: item.error ?? '' };
              await records.write(record.unit, record);
              const failed = rows.filter((r) => r.error !== '').length;
              job.unitDone({
                unit: record.unit,
                outcome: item.error && rows.length === 0 ? 'failed' : 'done',
                status: item.error ? 'damaged' : 'written',
                ...(item.error ? { error: item.error } : {}),
                clips: rows.length,
                failed,
              });
              rows = [];
              continue;
            }
            const error = item.failure ? item.failure.error.message : '';
            if (error) onWarning(item.failure!.error);
            job.item(error ? 'failed' : 'done');
            rows.push({ clip: item.key, error, scores: item.scores ?? {} });
          }
        },
        { signal: options.signal },
      );
    },
  );
  // The table over every input's record, in input order; the filter decided now, from the kept scores.
  const all: ScoreRow[] = [];
  const got = await Promise.all(units.map((u: ScoreUnit) => records.read(u.id).catch(() => null)));
  for (const [i, rec] of got.entries()) {
    if (!rec) continue;
    for (const r of rec.rows) {
      const row: ScoreRow = { input: units[i]!.path, clip: r.clip, error: r.error };
      for (const c of setup.columns) row[c] = r.scores[c] ?? '';
      if (rules.length > 0) {
        const v = r.error ? { kept: false, reason: 'error' } : decide(rules, { start_s: 0, end_s: 0, num_frames: 0, scores: r.scores });
        row.kept = v?.kept ?? false;
        row.filter_reason = v?.reason ?? '';
      }
      all.push(row);
    }
  }
  const scoresCsv = join(outputDir, 'scores.csv');
  await writeCsvAtomic(scoresCsv, ['input', 'clip', 'error', ...setup.columns, ...(rules.length > 0 ? ['kept', 'filter_reason'] : [])], all);
  return {
    rows: all,
    scoresCsv,
    failed: all.filter((r) => r.error !== '').length,
    filtered: countReasons(all.map((r) => ({ kept: r.kept as boolean | undefined, filter_reason: r.filter_reason as string | undefined }))),
    run,
  };
}
