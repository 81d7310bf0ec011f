import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Unpackr } from 'msgpackr';
import { ClipstreamError } from '../errors.js';
import type { EncodeOptions } from '../faces/clip-writer.js';
import { cropStage } from '../faces/crop.js';
import { detectStage } from '../faces/detect.js';
import { loadFaceDetector, type DetectorFormat, type FaceDetector } from '../faces/detector.js';
import { encodeStage, LMDB_DIR } from '../faces/encode.js';
import { openFrameStore, type FrameStore, type ImageFormat } from '../faces/lmdb-store.js';
import type { FaceRow } from '../faces/metadata.js';
import { recordSink, STATE_FILE, type RecordState, type VideoLog } from '../faces/record.js';
import { sampleFramesStage } from '../faces/sample-frames.js';
import { loadScorer, type Scorer, type ScorerSpec } from '../faces/scorers.js';
import { listSources, videoStem } from '../faces/sources.js';
import { SYNTHETIC_DETECTOR_FILE } from '../faces/synthetic-detector.js';
import { trackStage } from '../faces/track.js';
import { resolveTrackOptions, type TrackOptions } from '../faces/tracker.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { removeDeadTemps } from '../util/atomic.js';
import { validateBoolean, validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import { shippedModelsDir } from './models-dir.js';

export { LMDB_DIR } from '../faces/encode.js';
export { STATE_FILE, type VideoLog } from '../faces/record.js';
export { VIDEO_EXTENSIONS, videoStem } from '../faces/sources.js';
/** Where the transactional staging store lives; the py-lmdb-readable store is `faces.lmdb`. */
export const STAGING_LMDB = '.faces-staging.lmdb';

export interface FacesOptions extends TrackOptions, EncodeOptions {
  inputDir: string;
  outputDir: string;
  /** Face detector ONNX model (default: the shipped synthetic one, which only finds the fixture face). */
  detector?: string;
  detectorFormat?: DetectorFormat | 'auto';
  scoreThreshold?: number;
  nmsThreshold?: number;
  /** Faces smaller than this (shorter side, source pixels) are ignored. */
  minFaceSize?: number;
  /** Longest model-input side for detectors with a dynamic input size. */
  detectorInputSize?: number;
  /** Run the detector on every k-th frame (default 2). */
  sampleEvery?: number;
  batchSize?: number;
  /** Videos decoded for detection at once (default 2). */
  numWorkers?: number;
  device?: string;
  intraOpThreads?: number;
  /** Where the detector and scorers compute: a worker thread (default) or the main thread. */
  modelThread?: 'worker' | 'main';
  /** Crop enlargement around the track's box (default 1.4, seed 002). */
  enlarge?: number;
  cropMode?: 'union' | 'mean';
  /** Side of the square face clips (default 512). */
  size?: number;
  makeLmdb?: boolean;
  imageFormat?: ImageFormat;
  jpegQuality?: number;
  /** `embed` (default): audio in the mp4; `separate`: silent mp4 + WAV in audio/; `none`. */
  audio?: 'embed' | 'separate' | 'none';
  scorers?: ScorerSpec[];
  /** Frames per clip used for image statistics and scorers (default 8). */
  scoreFrames?: number;
  /** Redo videos already done (default: resume). */
  overwrite?: boolean;
  ffmpeg?: string;
  onWarning?: WarningHandler;
  onProgress?: (p: FacesProgress) => void;
  /** Called with the size of every detector batch, for statistics. */
  onBatch?: (size: number) => void;
  signal?: AbortSignal;
}

export interface FacesProgress { videosTotal: number; videosDone: number; videosFailed: number; clips: number; elapsedSeconds: number }

export interface FacesReport { videos: VideoLog[]; rows: FaceRow[]; seconds: number; lmdbPath: string | null }

/**
 * Builds a face clip dataset from a folder of videos: the stages under src/faces/ (sources →
 * sampled frames → detect, batched → track → crop → encode/LMDB → record) in one pipeline.
 * Videos finished in an earlier run are skipped; a video that cannot be decoded is recorded as
 * failed and the run goes on.
 *
 * @example
 * const report = await faces({ inputDir: 'videos', outputDir: 'faces', makeLmdb: true });
 */
export async function faces(options: FacesOptions): Promise<FacesReport> {
  const started = Date.now();
  const v = (name: string) => `options.${name}`;
  const inputDir = validateString(options.inputDir, v('inputDir'));
  const outputDir = validateString(options.outputDir, v('outputDir'));
  const sampleEvery = validateInteger(options.sampleEvery ?? 2, v('sampleEvery'), 1, 10_000);
  const batchSize = validateInteger(options.batchSize ?? 8, v('batchSize'), 1, 1024);
  const numWorkers = validateInteger(options.numWorkers ?? 2, v('numWorkers'), 1, 64);
  const size = validateInteger(options.size ?? 512, v('size'), 16, 4096);
  const enlarge = validateNumber(options.enlarge ?? 1.4, v('enlarge'), 0.1, 10);
  const cropMode = validateOneOf(options.cropMode ?? 'union', v('cropMode'), ['union', 'mean'] as const);
  const makeLmdb = validateBoolean(options.makeLmdb ?? false, v('makeLmdb'));
  const imageFormat = validateOneOf(options.imageFormat ?? 'jpeg', v('imageFormat'), ['jpeg', 'png'] as const);
  const jpegQuality = validateInteger(options.jpegQuality ?? 95, v('jpegQuality'), 1, 100);
  const audio = validateOneOf(options.audio ?? 'embed', v('audio'), ['embed', 'separate', 'none'] as const);
  const scoreFrames = validateInteger(options.scoreFrames ?? 8, v('scoreFrames'), 1, 1000);
  const overwrite = validateBoolean(options.overwrite ?? false, v('overwrite'));
  const modelThread = validateOneOf(options.modelThread ?? 'worker', v('modelThread'), ['worker', 'main'] as const);
  validateInteger(options.crf ?? 18, v('crf'), 0, 51);
  validateOneOf(options.preset ?? 'veryfast', v('preset'), ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo'] as const);
  const track = resolveTrackOptions(options);
  const ffmpeg = options.ffmpeg ?? ffmpegPath();
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const signal = options.signal;
  try {
    if (!(await stat(inputDir)).isDirectory()) throw new Error('not a folder');
  } catch (err) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `input folder ${inputDir} cannot be read: ${(err as Error).message}`, { cause: err, where: { option: 'inputDir', file: inputDir } });
  }

  // Temporary files of a run killed mid-write (kill -9): removed, their clips are redone.
  for (const sub of ['clips', 'audio', LMDB_DIR, '']) await removeDeadTemps(join(outputDir, sub));
  const state: RecordState = { videos: overwrite ? {} : await readState(outputDir), rows: [], logs: [] };
  if (!overwrite) state.rows = await readRows(outputDir);
  const sources = await listSources(inputDir, Object.fromEntries(Object.entries(state.videos).map(([rel, log]) => [rel, log.key ?? videoStem(rel)])), onWarning);
  let detector: FaceDetector | null = null;
  const scorers: Scorer[] = [];
  let store: FrameStore | null = null;
  try {
    const session = { device: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, onWarning, thread: modelThread };
    if (makeLmdb) {
      // A fresh run must not carry clips of videos from an earlier one into faces.lmdb.
      if (overwrite) await rm(join(outputDir, STAGING_LMDB), { recursive: true, force: true });
      store = await openFrameStore(join(outputDir, STAGING_LMDB));
    }
    const done = (rel: string) => state.videos[rel]?.status === 'done';
    // --make_lmdb over output made without it: videos done before whose clips are not in the store are made again.
    const unstored = sources.filter((s) => done(s.rel) && store && !state.videos[s.rel]!.clips.every((k) => store!.hasClip(k)));
    if (unstored.length > 0) onWarning(new ClipstreamError('ERR_IO', `${LMDB_DIR}: ${unstored.length} video(s) done before have clips missing from the store (made without --make_lmdb?); processing them again: ${unstored.map((s) => s.rel).join(', ')}`));
    for (const s of unstored) delete state.videos[s.rel];
    const skipped = sources.filter((s) => done(s.rel)).map((s) => ({ ...state.videos[s.rel]!, status: 'skipped (done before)' as const }));
    const todo = sources.filter((s) => !done(s.rel));
    const redo = new Set(todo.map((s) => s.path));
    state.rows = state.rows.filter((r) => !redo.has(String(r.file_original)));
    for (const s of todo) delete state.videos[s.rel];

    const progress: FacesProgress = { videosTotal: sources.length, videosDone: skipped.length, videosFailed: 0, clips: state.rows.length, elapsedSeconds: 0 };
    const report = () => options.onProgress?.({ ...progress, elapsedSeconds: (Date.now() - started) / 1000 });
    detector = await loadFaceDetector(options.detector ?? join(shippedModelsDir(), SYNTHETIC_DETECTOR_FILE), {
      ...session, format: options.detectorFormat ?? 'auto', scoreThreshold: options.scoreThreshold, nmsThreshold: options.nmsThreshold,
      minFaceSize: options.minFaceSize, inputSize: options.detectorInputSize,
    });
    for (const spec of options.scorers ?? []) scorers.push(await loadScorer(spec, session));
    const det = detector;
    report();
    await pipeline(
      Readable.from(todo),
      sampleFramesStage({ ffmpeg, sampleEvery, numWorkers, fit: (w, h) => det.fit(w, h), signal }),
      detectStage(det, { batchSize, onBatch: options.onBatch }),
      trackStage(track),
      cropStage({ ffmpeg, size, enlarge, cropMode, signal }),
      encodeStage({ ffmpeg, outputDir, audio, encode: options, store, imageFormat, jpegQuality, scorers, scoreFrames, signal }),
      recordSink(state, {
        outputDir, sources, onWarning,
        onSource: (log, clips) => {
          progress.videosDone++;
          if (log.status === 'failed') progress.videosFailed++;
          progress.clips += clips;
          report();
        },
      }),
      ...(signal ? [{ signal }] : []),
    );
    const lmdbPath = store ? join(outputDir, LMDB_DIR) : null;
    if (store) await store.exportTo(lmdbPath!);
    const logs = state.logs.sort((a, b) => a.index - b.index).map(({ index: _, ...log }) => log);
    return { videos: [...skipped, ...logs], rows: state.rows, seconds: (Date.now() - started) / 1000, lmdbPath };
  } finally {
    await store?.close();
    await detector?.close();
    for (const s of scorers) await s.close();
  }
}

async function readState(outputDir: string): Promise<Record<string, VideoLog>> {
  try {
    return (JSON.parse(await readFile(join(outputDir, STATE_FILE), 'utf8')) as { videos?: Record<string, VideoLog> }).videos ?? {};
  } catch {
    return {};
  }
}

async function readRows(outputDir: string): Promise<FaceRow[]> {
  try {
    return new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(await readFile(join(outputDir, 'metadata.msgpack'))) as FaceRow[];
  } catch {
    return [];
  }
}
