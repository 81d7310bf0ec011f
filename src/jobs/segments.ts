/**
 * `segments`: long videos through a per-frame model, segment by segment (seed 001,
 * RVM_ON_SEGMENTS, rebuilt). Each video is planned as frame ranges, each range is decoded
 * straight from the source, run through the model with the recurrent state carried across
 * boundaries, encoded, recorded for resume, and finally joined without re-encoding and given
 * the source audio back. This file only composes the stages in src/segments/.
 */
import { join, relative, resolve, sep } from 'node:path';
import { resolveEncoder } from '../clips/encoders.js';
import type { ClipstreamError } from '../errors.js';
import { FrameModel } from '../segments/model.js';
import { resolveSegmentsOptions, type SegmentsOptions } from '../segments/options.js';
import { processVideo, type VideoReport } from '../segments/video.js';
import { MATTING_MODEL_FILE } from '../segments/matting-model.js';
import { listSources } from '../faces/sources.js';
import type { WarningHandler } from '../types.js';
import { shippedModelsDir } from './models-dir.js';

export interface SegmentsReport {
  videos: VideoReport[];
  provider: 'cuda' | 'cpu';
  modelKind: 'rvm' | 'image';
  seconds: number;
  framesPerSecond: number;
  /** Mean model batch size over the run. */
  meanBatch: number;
}

/**
 * The videos of a folder and where each one's output goes: `in/a/b.mkv` → `out/a/b.mp4`
 * (or `out/a/b/` for PNG). Outputs inside the input folder are never taken as inputs.
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
  const inputs = (await listSources(inputDir, {}, onWarning)).map((s) => s.path).filter((p) => !resolve(p).startsWith(outAbs));
  const outputs = inputs.map((p) => join(outputDir, relative(inputDir, p).replace(/\.[^./\\]+$/, format === 'mp4' ? '.mp4' : '')));
  return { inputs, outputs };
}

/**
 * Runs every video of `options.inputs` (a plain list, so it can be partitioned across
 * machines). One failing video never stops the others: it is reported `failed` with the
 * reason, and a video with failed segments `incomplete`.
 *
 * @example
 * const report = await segments({ inputs: ['talk.mp4'], outputs: ['talk_matted.mp4'], segmentSeconds: 15 });
 */
export async function segments(options: SegmentsOptions): Promise<SegmentsReport> {
  const o = resolveSegmentsOptions(options, join(shippedModelsDir(), MATTING_MODEL_FILE));
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
  const videos: VideoReport[] = [];
  try {
    for (const [i, input] of o.inputs.entries()) {
      const output = o.outputs[i]!;
      try {
        videos.push(await processVideo(input, output, model, o));
      } catch (err) {
        if (o.signal?.aborted) throw err;
        const e = err as ClipstreamError;
        if (e.code === 'ERR_INVALID_OPTION' && o.inputs.length === 1) throw err;
        videos.push({ input, output, workDir: '', status: 'failed', segments: 0, segmentsRun: 0, segmentsReused: 0, failed: [], frames: 0, error: e.message });
      }
    }
  } finally {
    await model.close();
  }
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
  };
}
