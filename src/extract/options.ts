/**
 * Extract's options, checked before anything is opened (a bad value never leaves a model
 * loaded), and its models, opened and closed on every way out.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { Extractor } from '../infer/extractor.js';
import { parseDevice } from '../infer/session.js';
import type { FeedOptions } from '../stage/job-run.js';
import { DEFAULT_AUDIO_MODEL, DEFAULT_VISUAL_MODEL, shippedModelsDir } from '../models/models-dir.js';
import { resolveDecodeOptions, type DecodeOptions } from '../media/decode.js';
import type { ModelCache } from '../infer/model-cache.js';
import type { LockedPolicy } from '../util/unit-locks.js';
import type { ExtractProgress } from './results.js';
import { WHOLE } from '../util/partition.js';
import { expandShardUrls } from '../shards/shard-source.js';
import { defaultWarningHandler, type CommonJobOptions, type ModelOptions } from '../types.js';
import { validateBoolean, validateInteger, validateOneOf, validateString } from '../util/validate.js';

export interface ExtractOptions extends Omit<DecodeOptions, 'video' | 'audio'>, FeedOptions, CommonJobOptions<ExtractProgress>, ModelOptions {
  /** Tar shard paths or brace patterns, e.g. `data/shard-{000000..000099}.tar`. */
  tarPath: string | string[];
  /** Folder for feature shards and logs (the CLI's `--out_path`). */
  outputDir: string;
  format?: 'msgpack' | 'json';
  /** Folder with the models (default: the shipped `models/`). */
  modelDir?: string;
  /** Visual model file (relative to modelDir), or `null` to skip visual features. */
  visualModel?: string | null;
  /** Audio model file (relative to modelDir), or `null` to skip audio features. */
  audioModel?: string | null;
  /** Largest batch handed to a model; the actual size is set by backpressure. */
  batchSize?: number;
  /** ffmpeg decoders running at once. */
  parallelDecoders?: number;
  /** Recompute shards whose output exists (default: skip them). */
  overwrite?: boolean;
  /** Also warn when `device: 'auto'` finds no CUDA and uses the CPU (default: quiet). */
  verbose?: boolean;
  /** Only these shards (expanded urls) of the list: a queue worker runs the unit it was handed. */
  only?: readonly string[];
  /** A shard whose lock another live run holds: skip it (default) or wait for it. */
  onLocked?: LockedPolicy;
  /** Open models here and leave them open (a queue worker runs many units with the same models). */
  models?: ModelCache;
  /** A keep list (`clipstream dedup`'s keep.txt: one clip name a line): clips it does not name are skipped and counted, not failed. */
  keepList?: string;
  /** Called with the size of every batch each model ran, for statistics. */
  onBatch?: (kind: 'visual' | 'audio', size: number) => void;
}

function modelPath(dir: string, file: string | null | undefined, fallback: string): string | null {
  if (file === null) return null;
  const f = file ?? fallback;
  return isAbsolute(f) || f.includes('/') ? resolve(f) : join(dir, f);
}

/** Every option checked, with its default; the shard list expanded. */
export function resolveExtractOptions(options: ExtractOptions) {
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const outputDir = validateString(options.outputDir, 'options.outputDir');
  const format = validateOneOf(options.format ?? 'msgpack', 'options.format', ['msgpack', 'json'] as const);
  const batchSize = validateInteger(options.batchSize ?? 8, 'options.batchSize', 1, 1024);
  const parallelDecoders = validateInteger(options.parallelDecoders ?? 2, 'options.parallelDecoders', 1, 256);
  const overwrite = validateBoolean(options.overwrite ?? false, 'options.overwrite');
  const verbose = validateBoolean(options.verbose ?? false, 'options.verbose');
  if (options.intraOpThreads !== undefined) validateInteger(options.intraOpThreads, 'options.intraOpThreads', 1, 1024);
  const device = options.device ?? 'auto';
  parseDevice(device, 'options.device');
  const { video: _v, audio: _a, ...decodeOptions } = options as ExtractOptions & { video?: unknown; audio?: unknown };
  resolveDecodeOptions(decodeOptions);
  const partition = options.partition ?? WHOLE;
  const all = expandShardUrls(options.tarPath);
  if (all.length === 0)
    throw new ClipstreamError('ERR_INVALID_OPTION', `options.tarPath names no shard: ${JSON.stringify(options.tarPath)}`, {
      where: { option: 'options.tarPath' },
    });
  const modelDir = options.modelDir ?? shippedModelsDir();
  const visualPath = modelPath(modelDir, options.visualModel, DEFAULT_VISUAL_MODEL);
  const audioPath = modelPath(modelDir, options.audioModel, DEFAULT_AUDIO_MODEL);
  if (!visualPath && !audioPath) throw new ClipstreamError('ERR_INVALID_OPTION', 'nothing to extract: both visualModel and audioModel are null');
  const session = { device, intraOpThreads: options.intraOpThreads, onWarning, verbose };
  return { onWarning, outputDir, format, batchSize, parallelDecoders, overwrite, device, decodeOptions, partition, all, visualPath, audioPath, session };
}

function assertModels(visual: Extractor | null, audio: Extractor | null, visualPath: string | null, audioPath: string | null): void {
  if (visual && visual.kind !== 'visual')
    throw new ClipstreamError('ERR_MODEL', `${visualPath}: expected a visual model but its metadata says '${visual.kind}'`, { where: { file: visualPath! } });
  if (audio && audio.kind !== 'audio')
    throw new ClipstreamError('ERR_MODEL', `${audioPath}: expected an audio model but its metadata says '${audio.kind}'`, { where: { file: audioPath! } });
}

export type ResolvedExtractOptions = ReturnType<typeof resolveExtractOptions>;

export interface ExtractModels {
  visual: Extractor | null;
  audio: Extractor | null;
  close(): Promise<void>;
}

/** Opens the models (through `cache` when given: a cache owns its models and closes them itself). */
export async function openExtractModels(r: ResolvedExtractOptions, cache?: ModelCache): Promise<ExtractModels> {
  const load = (p: string) => (cache ? cache.load(p, r.session) : Extractor.load(p, r.session));
  const m: ExtractModels = {
    visual: null,
    audio: null,
    // An open session would keep the process alive.
    close: async () => {
      if (cache) return;
      await m.visual?.close();
      await m.audio?.close();
    },
  };
  try {
    m.visual = r.visualPath ? await load(r.visualPath) : null;
    m.audio = r.audioPath ? await load(r.audioPath) : null;
    assertModels(m.visual, m.audio, r.visualPath, r.audioPath);
    return m;
  } catch (err) {
    await m.close();
    throw err;
  }
}
