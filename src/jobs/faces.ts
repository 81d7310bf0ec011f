import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Unpackr } from 'msgpackr';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import type { Detection } from '../faces/boxes.js';
import { decodeCropSpan, encodeFaceClip, extractAudioSpan, type EncodeOptions } from '../faces/clip-writer.js';
import { squareAndResize, trackCrop } from '../faces/crops.js';
import { loadFaceDetector, type DetectorFormat, type FaceDetector } from '../faces/detector.js';
import { decodeSampledFrames } from '../faces/frames.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { encodeFrames, openFrameStore, type FrameStore, type ImageFormat } from '../faces/lmdb-store.js';
import { writeMetadata, type FaceRow } from '../faces/metadata.js';
import { clipStats, detectionStats } from '../faces/scores.js';
import { loadScorer, type Scorer, type ScorerSpec } from '../faces/scorers.js';
import { SYNTHETIC_DETECTOR_FILE } from '../faces/synthetic-detector.js';
import { linkTracks, resolveTrackOptions, stableBlocks, type TrackOptions } from '../faces/tracker.js';
import { batchStage } from '../infer/batcher.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import type { Sample, ShardEnd, StreamItem, WarningHandler } from '../types.js';
import { defaultWarningHandler, isLive } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { orderedMap } from '../util/stage.js';
import { validateBoolean, validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import { shippedModelsDir } from './models-dir.js';
import { rankDir, shareOf, WHOLE, type Partition } from '../scale/partition.js';

/** Video file extensions looked for under `inputDir`. */
export const VIDEO_EXTENSIONS = ['.mp4', '.mkv', '.webm', '.mov', '.avi', '.m4v', '.mpg', '.ts'] as const;
/** Per-video state for resuming, in the output folder. */
export const STATE_FILE = 'faces-videos.json';
/** Where the transactional staging store lives; the py-lmdb-readable store is `faces.lmdb`. */
export const STAGING_LMDB = '.faces-staging.lmdb';
export const LMDB_DIR = 'faces.lmdb';

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
  /** This run's share of the videos (`--rank/--world`); with world > 1 outputs go to `outputDir/rank-R-of-W/`. */
  partition?: Partition;
  ffmpeg?: string;
  onWarning?: WarningHandler;
  onProgress?: (p: FacesProgress) => void;
  /** Called with the size of every detector batch, for statistics. */
  onBatch?: (size: number) => void;
  signal?: AbortSignal;
}

export interface FacesProgress {
  videosTotal: number;
  videosDone: number;
  videosFailed: number;
  clips: number;
  elapsedSeconds: number;
}

export interface VideoLog {
  file: string;
  status: 'done' | 'failed' | 'skipped (done before)';
  clips: string[];
  error?: string;
}

export interface FacesReport {
  videos: VideoLog[];
  rows: FaceRow[];
  seconds: number;
  lmdbPath: string | null;
}

interface VideoContext {
  index: number;
  path: string;
  rel: string;
  stem: string;
  probe: VideoInfo | null;
  frames: Array<{ frame: number; sample: number; detections: Detection[] }>;
}

interface FaceFrameSample extends Sample {
  face: { frame: number; sample: number; scale: number; sourceWidth: number; sourceHeight: number; detections?: Detection[] };
}

async function listVideos(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `cannot read input folder ${d}: ${(err as Error).message}`, { cause: err, where: { file: d } });
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((VIDEO_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** `sub/dir/video.mp4` → `sub__dir__video`: clip keys hold no `/`, which separates frame numbers in the LMDB keys. */
export function videoStem(rel: string): string {
  return rel.slice(0, rel.length - extname(rel).length).split(sep).join('__').split('/').join('__');
}

/**
 * Builds a face clip dataset from a folder of videos: detects faces on every k-th frame
 * (batched by backpressure), links them into tracks, keeps stable blocks, crops one square
 * per block, writes the face clips (mp4, optional WAV), an optional LMDB frame store, and
 * `metadata.csv` / `metadata.msgpack`. Videos finished in an earlier run are skipped; a video
 * that cannot be decoded is recorded as failed and the run goes on.
 *
 * @example
 * const report = await faces({ inputDir: 'videos', outputDir: 'faces', makeLmdb: true });
 */
export async function faces(options: FacesOptions): Promise<FacesReport> {
  const started = Date.now();
  const inputDir = validateString(options.inputDir, 'options.inputDir');
  const outputDir = rankDir(validateString(options.outputDir, 'options.outputDir'), options.partition ?? WHOLE);
  const sampleEvery = validateInteger(options.sampleEvery ?? 2, 'options.sampleEvery', 1, 10_000);
  const batchSize = validateInteger(options.batchSize ?? 8, 'options.batchSize', 1, 1024);
  const numWorkers = validateInteger(options.numWorkers ?? 2, 'options.numWorkers', 1, 64);
  const size = validateInteger(options.size ?? 512, 'options.size', 16, 4096);
  const enlarge = validateNumber(options.enlarge ?? 1.4, 'options.enlarge', 0.1, 10);
  const cropMode = validateOneOf(options.cropMode ?? 'union', 'options.cropMode', ['union', 'mean'] as const);
  const makeLmdb = validateBoolean(options.makeLmdb ?? false, 'options.makeLmdb');
  const imageFormat = validateOneOf(options.imageFormat ?? 'jpeg', 'options.imageFormat', ['jpeg', 'png'] as const);
  const jpegQuality = validateInteger(options.jpegQuality ?? 95, 'options.jpegQuality', 1, 100);
  const audioMode = validateOneOf(options.audio ?? 'embed', 'options.audio', ['embed', 'separate', 'none'] as const);
  const scoreFrames = validateInteger(options.scoreFrames ?? 8, 'options.scoreFrames', 1, 1000);
  const overwrite = validateBoolean(options.overwrite ?? false, 'options.overwrite');
  validateInteger(options.crf ?? 18, 'options.crf', 0, 51);
  validateOneOf(options.preset ?? 'veryfast', 'options.preset', ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo'] as const);
  const track = resolveTrackOptions(options);
  const ffmpeg = options.ffmpeg ?? ffmpegPath();
  const onWarning = options.onWarning ?? defaultWarningHandler;
  // Our own controller, so that a failure inside the run also kills the ffmpeg processes in flight.
  const internal = new AbortController();
  const userSignal = options.signal;
  if (userSignal?.aborted) internal.abort(userSignal.reason);
  else userSignal?.addEventListener('abort', () => internal.abort(userSignal.reason), { once: true });
  const signal = internal.signal;
  const detectorPath = options.detector ?? join(shippedModelsDir(), SYNTHETIC_DETECTOR_FILE);

  try {
    if (!(await stat(inputDir)).isDirectory()) throw new Error('not a folder');
  } catch (err) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `input folder ${inputDir} cannot be read: ${(err as Error).message}`, { cause: err, where: { option: 'inputDir', file: inputDir } });
  }
  const videos = shareOf(await listVideos(inputDir), options.partition ?? WHOLE);

  // Resume: rows and states of videos finished before.
  let state: Record<string, VideoLog> = {};
  let rows: FaceRow[] = [];
  if (!overwrite) {
    try {
      state = (JSON.parse(await readFile(join(outputDir, STATE_FILE), 'utf8')) as { videos: Record<string, VideoLog> }).videos ?? {};
      rows = new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(await readFile(join(outputDir, 'metadata.msgpack'))) as FaceRow[];
    } catch {
      state = {};
      rows = [];
    }
  }
  const logs: VideoLog[] = [];
  const contexts: VideoContext[] = [];
  for (const [index, path] of videos.entries()) {
    const rel = relative(inputDir, path);
    if (state[rel]?.status === 'done') {
      logs.push({ ...state[rel]!, status: 'skipped (done before)' });
      continue;
    }
    rows = rows.filter((r) => r.file_original !== path);
    delete state[rel];
    contexts.push({ index, path, rel, stem: videoStem(rel), probe: null, frames: [] });
  }
  const progress: FacesProgress = { videosTotal: videos.length, videosDone: logs.length, videosFailed: 0, clips: rows.length, elapsedSeconds: 0 };
  const report = () => options.onProgress?.({ ...progress, elapsedSeconds: (Date.now() - started) / 1000 });

  const session = { device: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, onWarning };
  let detector: FaceDetector | null = null;
  const scorers: Scorer[] = [];
  let store: FrameStore | null = null;
  // Work still running when the pipeline is torn down (abort, error): awaited before the
  // sessions close and before we return, so no ffmpeg outlives the call.
  const inflight = new Set<Promise<unknown>>();
  const tracked = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    p.then(() => inflight.delete(p), () => inflight.delete(p));
    return p;
  };
  try {
    detector = await loadFaceDetector(detectorPath, {
      ...session,
      format: options.detectorFormat ?? 'auto',
      scoreThreshold: options.scoreThreshold,
      nmsThreshold: options.nmsThreshold,
      minFaceSize: options.minFaceSize,
      inputSize: options.detectorInputSize,
    });
    for (const spec of options.scorers ?? []) scorers.push(await loadScorer(spec, session));
    if (makeLmdb) {
      // A fresh run must not carry clips of videos from an earlier one into faces.lmdb.
      if (overwrite) await rm(join(outputDir, STAGING_LMDB), { recursive: true, force: true });
      store = await openFrameStore(join(outputDir, STAGING_LMDB));
    }
    const det = detector;

    // Stage 1: decode sampled frames of each video (numWorkers at once), as frame samples and a video-end marker.
    async function* frameItems(): AsyncGenerator<StreamItem> {
      const decoded = orderedMap(Readable.from(contexts), (ctx) => tracked(decodeVideo(ctx)), numWorkers);
      for await (const items of decoded) yield* items;
    }

    async function decodeVideo(ctx: VideoContext): Promise<StreamItem[]> {
      const end: ShardEnd = { kind: 'shard-end', shard: { url: ctx.path, name: ctx.rel, index: ctx.index }, samples: 0 };
      try {
        ctx.probe = await probeVideo(ctx.path, { signal });
        const fit = det.fit(ctx.probe.width, ctx.probe.height);
        const { frames, count } = await decodeSampledFrames(ffmpeg, ctx.path, { sampleEvery, ...fit, signal });
        const bytes = fit.width * fit.height * 3;
        const items: StreamItem[] = [];
        for (let i = 0; i < count; i++) {
          const s: FaceFrameSample = {
            kind: 'sample', __key__: `${ctx.stem}/${i}`, __url__: ctx.path, shard: end.shard, index: i, files: {},
            entry: { filename: ctx.rel, id: ctx.stem, segment: [(i * sampleEvery) / ctx.probe.fps, (i * sampleEvery) / ctx.probe.fps] },
            video: { frames: frames.subarray(i * bytes, (i + 1) * bytes), numFrames: 1, width: fit.width, height: fit.height, decodedFrames: 1 },
            face: { frame: i * sampleEvery, sample: i, scale: fit.scale, sourceWidth: ctx.probe.width, sourceHeight: ctx.probe.height },
          };
          items.push(s);
        }
        end.samples = count;
        items.push(end);
        return items;
      } catch (err) {
        if (signal?.aborted) throw err;
        end.error = toClipstreamError(err, 'ERR_DECODE', { file: ctx.path });
        return [end];
      }
    }

    // Stage 2: the detector, batched by backpressure.
    const detect = batchStage({
      batchSize,
      accept: isLive,
      onBatch: options.onBatch,
      run: async (batch) => {
        const samples = batch as FaceFrameSample[];
        const found = await tracked(det.detect(samples.map((s) => ({
          rgb: s.video!.frames, width: s.video!.width, height: s.video!.height, scale: s.face.scale,
          sourceWidth: s.face.sourceWidth, sourceHeight: s.face.sourceHeight,
        }))));
        samples.forEach((s, i) => {
          s.face.detections = found[i]!;
          delete s.video; // the frame is no longer needed
        });
      },
    });

    // Stage 3: per video, tracks → clips → rows; state and metadata saved after each video.
    const byPath = new Map(contexts.map((c) => [c.path, c]));
    const consume = async (source: AsyncIterable<StreamItem>) => {
      for await (const item of source) {
        if (item.kind === 'sample') {
          const s = item as FaceFrameSample;
          byPath.get(s.__url__)!.frames.push({ frame: s.face.frame, sample: s.face.sample, detections: s.face.detections ?? [] });
          continue;
        }
        const ctx = byPath.get(item.shard.url)!;
        let log: VideoLog;
        try {
          if (item.error) throw item.error;
          const made = await tracked(processVideo(ctx));
          rows.push(...made);
          log = { file: ctx.rel, status: 'done', clips: made.map((r) => String(r.clip_key)) };
          progress.clips += made.length;
        } catch (err) {
          if (signal?.aborted) throw err;
          const e = toClipstreamError(err, 'ERR_DECODE', { file: ctx.path });
          log = { file: ctx.rel, status: 'failed', clips: [], error: e.message };
          onWarning(new ClipstreamError(e.code, `${e.message.includes(ctx.path) ? e.message : `${ctx.path}: ${e.message}`} (video skipped)`, { cause: e, where: { file: ctx.path } }));
          progress.videosFailed++;
        }
        ctx.frames = [];
        logs.push(log);
        state[ctx.rel] = log;
        progress.videosDone++;
        await writeMetadata(outputDir, rows);
        await writeFileAtomic(join(outputDir, STATE_FILE), `${JSON.stringify({ videos: state }, null, 2)}\n`);
        report();
      }
    };

    async function processVideo(ctx: VideoContext): Promise<FaceRow[]> {
      const probe = ctx.probe!;
      const out: FaceRow[] = [];
      const blocks = linkTracks(ctx.frames, track).flatMap((t) => stableBlocks(t, probe.width, probe.height, track));
      for (const [k, block] of blocks.entries()) {
        const dets = block.detections;
        const clipKey = `${ctx.stem}_${String(k).padStart(3, '0')}`;
        const crop = trackCrop(dets, probe.width, probe.height, { enlarge, mode: cropMode });
        const startFrame = dets[0]!.frame;
        const endFrame = dets[dets.length - 1]!.frame;
        const inner = await decodeCropSpan(ffmpeg, ctx.path, startFrame, endFrame, crop, signal);
        const frames: Uint8Array[] = [];
        for (const f of inner) frames.push(await squareAndResize(f, crop, size));
        const startTime = startFrame / probe.fps;
        const fileRelative = join('clips', `${clipKey}.mp4`);
        await encodeFaceClip(ffmpeg, frames, size, probe.fps, { source: ctx.path, startTime, withAudio: audioMode === 'embed' && (probe.audioCodec !== null) }, join(outputDir, fileRelative), options, signal);
        let audioFile = '';
        if (audioMode === 'separate' && (probe.audioCodec !== null)) {
          const rel = join('audio', `${clipKey}.wav`);
          if (await extractAudioSpan(ffmpeg, ctx.path, startTime, frames.length / probe.fps, join(outputDir, rel), signal)) audioFile = rel;
        }
        if (store) {
          const encoded = await encodeFrames(frames, size, size, imageFormat, jpegQuality);
          await store.putClip(clipKey, encoded, {
            clip_key: clipKey, num_frames: frames.length, width: size, height: size, fps: probe.fps, format: imageFormat,
            file_original: ctx.path, start_frame: startFrame, end_frame: startFrame + frames.length - 1,
          });
        }
        const row: FaceRow = {
          file_original: ctx.path,
          file_relative: fileRelative,
          lmdb_file: store ? LMDB_DIR : '',
          audio_file: audioFile,
          clip_key: clipKey,
          track: k,
          start_frame: startFrame,
          end_frame: startFrame + frames.length - 1,
          start_time: startTime,
          end_time: (startFrame + frames.length) / probe.fps,
          num_frames: frames.length,
          width: size,
          height: size,
          original_fps: probe.fps,
          original_duration: probe.durationS,
          original_width: probe.width,
          original_height: probe.height,
          original_resolution: `${probe.width}x${probe.height}`,
          crop_x: crop.x,
          crop_y: crop.y,
          crop_size: crop.size,
          ...detectionStats(dets, probe.width, probe.height),
          ...clipStats(frames, size, size, scoreFrames),
        };
        for (const s of scorers) row[s.column] = await s.score(frames, size, scoreFrames);
        out.push(row);
      }
      return out;
    }

    report();
    await pipeline(Readable.from(frameItems()), detect, consume, { signal });
    await writeMetadata(outputDir, rows);
    let lmdbPath: string | null = null;
    if (store) {
      lmdbPath = join(outputDir, LMDB_DIR);
      await store.exportTo(lmdbPath);
    }
    return { videos: logs, rows, seconds: (Date.now() - started) / 1000, lmdbPath };
  } catch (err) {
    internal.abort(err);
    throw err;
  } finally {
    await Promise.allSettled([...inflight]);
    await store?.close();
    await detector?.close();
    for (const s of scorers) await s.close();
  }
}
