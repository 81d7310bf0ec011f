/**
 * `segments`: long videos through a per-frame model, segment by segment (seed 001,
 * RVM_ON_SEGMENTS, rebuilt). On the job runner (src/run/runner.ts): the units are the input
 * videos (id: the input path), each locked beside its output; a video finished by an earlier
 * run with the same settings is skipped, a partly done one resumes from its segment records.
 * Each video goes through the stages of src/segments/stages.ts (prepare → split → infer →
 * join → remux). This file only composes them.
 */
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { resolveEncoder } from '../media/encoders.js';
import { listFolderVideos } from '../media/video-folder.js';
import { checkStages, pipeline } from '../stage/index.js';
import { runJob } from '../run/runner.js';
import type { JobReport } from '../stage/job-run.js';
import { MATTING_MODEL_FILE } from '../segments/matting-model.js';
import { FrameModel } from '../segments/model.js';
import { resolveSegmentsOptions, type SegmentsOptions } from '../segments/options.js';
import { outputNames } from '../segments/outputs.js';
import { fileSha256 } from '../segments/records.js';
import { finishedBefore } from '../segments/resume.js';
import { runKey, segmentsStages, segmentsItem, type SegmentsItem, type VideoReport } from '../segments/stages.js';
import type { WarningHandler } from '../types.js';
import { fitName } from '../util/names.js';
import { shippedModelsDir } from '../models/models-dir.js';

export interface SegmentsReport {
  videos: VideoReport[];
  provider: 'cuda' | 'cpu';
  modelKind: 'rvm' | 'image';
  seconds: number;
  framesPerSecond: number;
  /** Mean model batch size over the run. */
  meanBatch: number;
  /** The runner's report: one result per video of this run's share, the run log's path. */
  run: JobReport;
}

/**
 * The videos of a folder and where each one's output goes: `in/a/b.mkv` → `out/a/b.mp4`
 * (or `out/a/b/` for PNG); videos of one name in different containers get distinct outputs
 * (`x.mp4` and `x.mkv.mp4`, see outputNames). Outputs inside the input folder are never taken as inputs.
 *
 * @example await folderUnits('videos', 'matted', 'mp4') // { inputs: ['videos/a.mp4'], outputs: ['matted/a.mp4'] }
 */
export async function folderUnits(
  inputDir: string,
  outputDir: string,
  format: 'mp4' | 'png',
  onWarning: WarningHandler = () => {},
): Promise<{ inputs: string[]; outputs: string[] }> {
  const outAbs = resolve(outputDir) + sep;
  // The same listing as faces: recursive, sorted, hidden entries and non-regular files (a FIFO) skipped with a warning.
  const inputs = (await listFolderVideos(inputDir, {}, onWarning)).map((s) => s.path).filter((p) => !resolve(p).startsWith(outAbs));
  const outputs = outputNames(
    inputs.map((p) => relative(inputDir, p)),
    format,
  ).map((name) => join(outputDir, name));
  // An output named after its source must leave room for its lock, temps and work folder (src/util/names.ts).
  return { inputs, outputs: outputs.map((out) => join(dirname(out), fitName(basename(out)))) };
}

/** The videos and outputs the options name: `inputs`/`outputs`, or the listing of `inputDir`. */
export async function segmentsUnits(options: SegmentsOptions): Promise<{ inputs: string[]; outputs: string[] }> {
  if (options.inputDir !== undefined) return folderUnits(options.inputDir, options.outputDir ?? options.inputDir, options.format ?? 'mp4', options.onWarning);
  return { inputs: options.inputs ?? [], outputs: options.outputs ?? [] };
}

/**
 * Runs every video of the options (or this run's share of them, or `only` those). One failing
 * video never stops the others: it is reported `failed` with the reason, and a video with
 * failed segments `incomplete`. The run log goes to `logDir` (default: `outputDir`, else the
 * first output's folder).
 *
 * @example
 * const report = await segments({ inputs: ['talk.mp4'], outputs: ['talk_matted.mp4'], segmentSeconds: 15 });
 */
export async function segments(options: SegmentsOptions): Promise<SegmentsReport> {
  const units = await segmentsUnits(options);
  const o = resolveSegmentsOptions({ ...options, ...units }, join(shippedModelsDir(), MATTING_MODEL_FILE));
  const started = Date.now();
  // NVENC without a GPU (or an ffmpeg without it) falls back to the CPU encoder of the same codec, with one warning.
  o.encoder = (await resolveEncoder(o.encoder, { onWarning: o.onWarning })).encoder;
  const model = await FrameModel.open(o.model, {
    kind: o.modelKind,
    device: o.device,
    intraOpThreads: o.intraOpThreads,
    batchSize: o.batchSize,
    onWarning: o.onWarning,
  });
  const outputOf = new Map(o.inputs.map((input, i) => [input, o.outputs[i]!] as const));
  const modelId = { sha256: await fileSha256(model.path), kind: model.kind };
  const reports = new Map<string, VideoReport>();
  const single = o.inputs.length === 1;
  let report: JobReport;
  try {
    ({ report } = await runJob(
      {
        job: 'segments',
        units: o.inputs,
        unitId: (input) => input,
        partition: options.partition,
        only: options.only,
        feed: options.feed,
        onUnitDone: options.onUnitDone,
        logDir: options.logDir !== undefined ? options.logDir : (options.outputDir ?? dirname(o.outputs[0]!)),
        logOptions: { segmentSeconds: o.segmentSeconds, state: o.state, model: o.model, format: o.format, step: o.step },
        locks: { finalPath: (input) => outputOf.get(input)! },
        resume: async (input) => {
          const v = await finishedBefore(input, outputOf.get(input)!, o, await runKey(input, o, modelId));
          if (!v) return null;
          reports.set(input, v);
          return { unit: input, outcome: 'skipped', status: 'skipped (done before)', output: v.output, frames: v.frames };
        },
        signal: o.signal,
        onWarning: o.onWarning,
        onProgress: options.onProgress,
      },
      async (run) => {
        const stages = checkStages(
          segmentsStages({
            model,
            options: o,
            // A bad option of the only video is the caller's error, not a failed video (unless the caller decides).
            onError: options.onError ?? ((err) => (err.code === 'ERR_INVALID_OPTION' && single ? 'throw' : 'skip')),
            onSegment: (p) => run.item(p.status === 'done' ? 'done' : p.status === 'failed' ? 'failed' : 'skipped', p.frames),
          }),
          ['input', 'output'],
        );
        const source = (async function* () {
          for await (const input of run.pending()) yield segmentsItem(input, outputOf.get(input)!);
        })();
        await pipeline(
          Readable.from(source, { highWaterMark: 1 }),
          ...stages,
          async function record(items: AsyncIterable<SegmentsItem>) {
            for await (const item of items) {
              const v = item.report;
              reports.set(item.key, v);
              const outcome = v.status === 'done' ? 'done' : 'failed';
              run.unitDone({ unit: item.key, outcome, status: v.status, error: v.error, output: v.output, frames: v.frames, segmentsRun: v.segmentsRun });
            }
          },
          { signal: o.signal },
        );
      },
    ));
  } finally {
    await model.close();
  }
  const videos = report.units.map((u) => reports.get(u.unit) ?? notRun(u.unit, outputOf.get(u.unit)!, u.status, u.lockedBy));
  const seconds = (Date.now() - started) / 1000;
  const frames = videos.reduce((n, v) => n + (v.status === 'failed' ? 0 : v.frames), 0);
  const sizes = model.batchSizes;
  return {
    videos,
    provider: model.provider,
    modelKind: model.kind,
    seconds,
    framesPerSecond: frames / Math.max(seconds, 1e-9),
    meanBatch: sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : 0,
    run: report,
  };
}

/** The report of a video this run did not work on (locked by another run). */
function notRun(input: string, output: string, status: string, lockedBy: unknown): VideoReport {
  const why = lockedBy ? `another run holds its lock (${typeof lockedBy === 'string' ? lockedBy : JSON.stringify(lockedBy)})` : status;
  return { input, output, workDir: '', status: 'failed', segments: 0, segmentsRun: 0, segmentsReused: 0, failed: [], frames: 0, error: why };
}
