/**
 * Options of the segments job, validated once at the start with messages that name the
 * option (the CLI maps `options.segmentSeconds` to `--segment_seconds`).
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ENCODERS, type Encoder } from '../media/encoders.js';
import { InvalidOptionError } from '../errors.js';
import type { JobProgress } from '../util/progress.js';
import type { CommonJobOptions, ModelOptions } from '../types.js';
import { validateInteger, validateNumber, validateOneOf } from '../util/validate.js';
import { workDirFor } from './outputs.js';
import { parseColour, type OutputType } from './compose.js';
import type { FeedOptions } from '../stage/job-run.js';

export type Step = 'all' | 'split' | 'infer' | 'join' | 'remux';
export type StateMode = { mode: 'carry' } | { mode: 'reset' } | { mode: 'warmup'; frames: number };

export interface SegmentsProgress {
  video: string;
  segment: number;
  segments: number;
  status: 'done' | 'reused' | 'failed';
  frames: number;
  error?: string;
}

export interface SegmentsOptions extends FeedOptions, CommonJobOptions<JobProgress>, ModelOptions {
  /** One video, or several; each goes to the output of the same position. */
  inputs?: string[];
  outputs?: string[];
  /** Instead of `inputs`/`outputs`: every video under `inputDir` (recursive), written to the same relative names under `outputDir`. */
  inputDir?: string;
  /** Only these videos (unit ids: the input paths as given or listed); a queue worker runs the one it was handed. */
  only?: readonly string[];
  /** Where the run log goes (default: `outputDir`, else the first output's folder); null for none. */
  logDir?: string | null;
  model?: string;
  modelKind?: 'auto' | 'rvm' | 'image';
  segmentSeconds?: number;
  /** `carry` (default), `reset`, or `warmup:N` (N frames). */
  state?: string;
  outputType?: OutputType;
  format?: 'mp4' | 'png';
  /** `green` (RVM's [0.47, 1, 0.6]), `r,g,b` or `#rrggbb`. */
  background?: string;
  encoder?: Encoder;
  crf?: number;
  /** Target video bit rate in bit/s (the seed: 40 Mbit/s); overrides crf. */
  bitRate?: number;
  preset?: string;
  encoderThreads?: number;
  audio?: 'copy' | 'none';
  /** RVM's downsample ratio, or `auto` (RVM's rule: min(1, 512 / longest side)). */
  downsampleRatio?: number | 'auto';
  /** Segments decoded and batched together in warmup/reset modes. */
  parallelSegments?: number;
  keepSegments?: boolean;
  step?: Step;
  /** Each segment done, reused or failed. */
  onSegment?: (p: SegmentsProgress) => void;
}

export type ResolvedSegmentsOptions = Required<
  Omit<
    SegmentsOptions,
    | 'model'
    | 'bitRate'
    | 'onSegment'
    | 'onWarning'
    | 'signal'
    | 'state'
    | 'background'
    | 'intraOpThreads'
    | 'inputDir'
    | 'outputDir'
    | 'only'
    | 'partition'
    | 'logDir'
    | 'onProgress'
    | 'onError'
    | keyof FeedOptions
  >
> &
  Pick<SegmentsOptions, 'bitRate' | 'onSegment' | 'onWarning' | 'signal' | 'intraOpThreads'> & {
    model: string;
    state: StateMode;
    background: [number, number, number];
  };

/** Parses `--state`. */
export function parseStateMode(value: unknown, name = 'options.state'): StateMode {
  if (value === 'carry' || value === 'reset') return { mode: value };
  const m = typeof value === 'string' ? /^warmup:(\d+)$/.exec(value) : null;
  if (m && Number(m[1]) >= 1) return { mode: 'warmup', frames: Number(m[1]) };
  throw new InvalidOptionError(`Expected 'carry', 'reset' or 'warmup:N' (N ≥ 1 frames) for ${name} but received ${JSON.stringify(value)}`, name);
}

/** Parses a bit rate such as `40M`, `8000k` or `5000000`. */
export function parseBitRate(value: string, name = 'options.bitRate'): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value.trim());
  if (!m || Number(m[1]) <= 0) throw new InvalidOptionError(`Expected a bit rate such as 40M or 8000k for ${name} but received '${value}'`, name);
  return Number(m[1]) * (m[2]!.toLowerCase() === 'm' ? 1e6 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1);
}

export function resolveSegmentsOptions(o: SegmentsOptions & { inputs: string[]; outputs: string[] }, defaultModel: string): ResolvedSegmentsOptions {
  if (o.inputs.length === 0) throw new InvalidOptionError('Expected at least one video for options.inputs but received none', 'options.inputs');
  if (o.inputs.length !== o.outputs.length) throw new InvalidOptionError('options.inputs and options.outputs must have the same length', 'options.outputs');
  // Two videos writing one output (or one work folder) would overwrite each other and both be reported complete.
  const seen = new Map<string, string>();
  o.inputs.forEach((input, i) => {
    const out = o.outputs[i]!;
    for (const [key, what] of [
      [`o:${resolve(out)}`, `write ${out}`],
      [`w:${resolve(workDirFor(out))}`, `use the work folder ${workDirFor(out)}`],
    ] as const) {
      const other = seen.get(key);
      if (other !== undefined)
        throw new InvalidOptionError(`options.outputs: ${other} and ${input} would both ${what}; give them distinct outputs`, 'options.outputs');
      seen.set(key, input);
    }
  });
  const background = parseColour(o.background ?? 'green');
  if (!background)
    throw new InvalidOptionError(`Expected 'green', 'r,g,b' or '#rrggbb' for options.background but received '${o.background}'`, 'options.background');
  const ratio = o.downsampleRatio ?? 'auto';
  if (ratio !== 'auto') validateNumber(ratio, 'options.downsampleRatio', 1e-3, 1);
  return {
    inputs: o.inputs,
    outputs: o.outputs,
    model: o.model ?? defaultModel,
    modelKind: validateOneOf(o.modelKind ?? 'auto', 'options.modelKind', ['auto', 'rvm', 'image'] as const),
    segmentSeconds: validateNumber(o.segmentSeconds ?? 15, 'options.segmentSeconds', 0.04),
    state: parseStateMode(o.state ?? 'carry'),
    outputType: validateOneOf(o.outputType ?? 'composite', 'options.outputType', ['composite', 'alpha', 'foreground'] as const),
    format: validateOneOf(o.format ?? 'mp4', 'options.format', ['mp4', 'png'] as const),
    background,
    encoder: validateOneOf(o.encoder ?? 'libx264', 'options.encoder', ENCODERS),
    crf: validateInteger(o.crf ?? 18, 'options.crf', 0, 51),
    bitRate: o.bitRate === undefined ? undefined : validateNumber(o.bitRate, 'options.bitRate', 1),
    preset: o.preset ?? 'veryfast',
    encoderThreads: validateInteger(o.encoderThreads ?? Math.min(4, availableParallelism()), 'options.encoderThreads', 1, 64),
    audio: validateOneOf(o.audio ?? 'copy', 'options.audio', ['copy', 'none'] as const),
    downsampleRatio: ratio,
    device: o.device ?? 'auto',
    intraOpThreads: o.intraOpThreads === undefined ? undefined : validateInteger(o.intraOpThreads, 'options.intraOpThreads', 1, 256),
    batchSize: validateInteger(o.batchSize ?? 4, 'options.batchSize', 1, 256),
    parallelSegments: validateInteger(o.parallelSegments ?? 2, 'options.parallelSegments', 1, 64),
    keepSegments: o.keepSegments ?? false,
    step: validateOneOf(o.step ?? 'all', 'options.step', ['all', 'split', 'infer', 'join', 'remux'] as const),
    onSegment: o.onSegment,
    onWarning: o.onWarning,
    signal: o.signal,
  };
}

/** RVM's automatic ratio: the longest side becomes at most 512 px inside the model. */
export function autoDownsampleRatio(width: number, height: number): number {
  return Math.min(1, 512 / Math.max(width, height));
}
