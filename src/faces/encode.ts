import { join } from 'node:path';
import { rgbEncodeColour } from '../media/rgb-encode.js';
import type { ClipstreamError } from '../errors.js';
import { itemStage, type OnError } from '../stage/index.js';
import { encodeFaceClip, extractAudioSpan, type EncodeOptions } from './clip-writer.js';
import type { ClipItem, FaceItem, FaceSource } from './items.js';
import { encodeFrames, type FrameStore, type ImageFormat } from './lmdb-store.js';
import type { FaceRow } from './metadata.js';
import { clipStats, detectionStats } from './scores.js';
import { spreadIndices } from '../infer/scorers.js';
import type { Scorer } from '../infer/scorers.js';
import { PreviewWriter } from '../sinks/preview.js';

/** Where the LMDB frame store is, relative to the output folder (the `lmdb_file` column). */
export const LMDB_DIR = 'faces.lmdb';
/** Frames encoded and written to the store per transaction: a long clip is never in memory whole. */
const LMDB_CHUNK = 32;

export interface EncodeStageOptions {
  ffmpeg: string;
  outputDir: string;
  /** `embed`: audio in the mp4; `separate`: silent mp4 + WAV in audio/; `none`. */
  audio: 'embed' | 'separate' | 'none';
  encode?: EncodeOptions;
  /** Staging frame store, when the LMDB is made: one for all sources, or one per source. */
  store?: FrameStore | ((source: FaceSource) => Promise<FrameStore>) | null;
  imageFormat: ImageFormat;
  jpegQuality: number;
  scorers: Scorer[];
  /** Frames per clip used for image statistics and scorers. */
  scoreFrames: number;
  /** Also write `previews/<clip_key>.webp` (PreviewWriter) from the frames encoded. */
  previews?: boolean;
  signal?: AbortSignal;
  /** A clip that cannot be made: 'skip' (default: its source is recorded as failed, the run goes on), 'throw', or a function. */
  onError?: OnError;
}

/**
 * Stage: clips in, metadata rows out. Each clip's frames stream once through the H.264 encoder
 * (with the source's audio), into the LMDB store in chunks, and past the statistics, which keep
 * only the `scoreFrames` frames they score. A clip that fails is passed on marked
 * (`clip.failure`); later clips of that source are marked skipped, not made (the source is
 * recorded as failed and redone on a rerun). Written with the stage kit's `itemStage`.
 *
 * @example
 * encodeStage({ ffmpeg, outputDir: 'out', audio: 'embed', imageFormat: 'jpeg', jpegQuality: 95, scorers: [], scoreFrames: 8 })
 */
export function encodeStage(o: EncodeStageOptions) {
  // The first failure of each source whose source-end has not come yet.
  const failed = new Map<FaceSource, ClipstreamError>();
  return itemStage<FaceItem>(
    {
      name: 'encode',
      needs: ['clip', 'frames', 'info'],
      adds: ['row'],
      drops: ['clip', 'frames'],
      onError: o.onError,
      signal: o.signal,
      accepts: (item) => item.kind === 'clip' || item.kind === 'source-end',
      keyOf: (item) => (item as ClipItem).clipKey,
      code: 'ERR_IO',
      whereOf: (item) => ({ file: item.source.path }),
      onFailure: (item, failure) => failed.set(item.source, failure.error),
      writableHighWaterMark: 4,
      readableHighWaterMark: 4,
    },
    async (item, { signal }): Promise<FaceItem | undefined> => {
      if (item.kind === 'source-end') {
        failed.delete(item.source);
        return;
      }
      const clip = item as ClipItem;
      const error = failed.get(clip.source);
      if (error) {
        clip.failure = { stage: 'encode', error, status: 'skipped' };
        return;
      }
      return { kind: 'row', source: clip.source, row: await writeClip(clip, o, signal) };
    },
  );
}

async function writeClip(clip: ClipItem, o: EncodeStageOptions, stageSignal: AbortSignal): Promise<FaceRow> {
  const signal = o.signal ? AbortSignal.any([o.signal, stageSignal]) : stageSignal;
  const { source, clipKey, size, numFrames, detections } = clip;
  const info = source.info!;
  const startFrame = detections[0]!.frame;
  const store = typeof o.store === 'function' ? await o.store(source) : (o.store ?? null);
  const picks = new Set(spreadIndices(numFrames, o.scoreFrames));
  const picked: Uint8Array[] = [];
  let chunk: Uint8Array[] = [];
  let written = 0;
  const preview = o.previews ? new PreviewWriter({ outputDir: o.outputDir, clipId: clipKey }) : null;
  const flush = async () => {
    if (!store || chunk.length === 0) return;
    await store.putFrames(clipKey, written, await encodeFrames(chunk, size, size, o.imageFormat, o.jpegQuality));
    written += chunk.length;
    chunk = [];
  };
  async function* frames(): AsyncGenerator<Uint8Array> {
    let i = 0;
    for await (const f of clip.frames) {
      if (picks.has(i)) picked.push(f);
      await preview?.push({ index: i, rgb: f, width: size, height: size });
      if (store) {
        chunk.push(f);
        if (chunk.length >= LMDB_CHUNK) await flush();
      }
      i++;
      yield f;
    }
    await flush();
  }
  if (store) await store.beginClip(clipKey);
  const hasAudio = info.audioCodec !== null;
  const fileRelative = join('clips', `${clipKey}.mp4`);
  await encodeFaceClip(
    o.ffmpeg,
    frames(),
    numFrames,
    size,
    info.fps,
    { source: source.path, startTime: clip.startTime, withAudio: o.audio === 'embed' && hasAudio },
    join(o.outputDir, fileRelative),
    o.encode,
    signal,
    rgbEncodeColour(info.facts),
  );
  await preview?.finish();
  let audioFile = '';
  if (o.audio === 'separate' && hasAudio) {
    const rel = join('audio', `${clipKey}.wav`);
    if (await extractAudioSpan(o.ffmpeg, source.path, clip.startTime, numFrames / info.fps, join(o.outputDir, rel), signal)) audioFile = rel;
  }
  const endFrame = startFrame + numFrames - 1;
  if (store) {
    await store.endClip(clipKey, {
      clip_key: clipKey,
      num_frames: numFrames,
      width: size,
      height: size,
      fps: info.fps,
      format: o.imageFormat,
      file_original: source.path,
      start_frame: startFrame,
      end_frame: endFrame,
    });
  }
  // Frame arithmetic where the frame's time is frame / fps (constant rate), else the frame's own time.
  const cfr = clip.startTime === startFrame / info.fps;
  const { displayWidth: w, displayHeight: h } = info;
  const row: FaceRow = {
    file_original: source.path,
    file_relative: fileRelative,
    lmdb_file: store ? LMDB_DIR : '',
    audio_file: audioFile,
    clip_key: clipKey,
    track: clip.track,
    start_frame: startFrame,
    end_frame: endFrame,
    start_time: clip.startTime,
    end_time: cfr ? (startFrame + numFrames) / info.fps : clip.startTime + numFrames / info.fps,
    num_frames: numFrames,
    width: size,
    height: size,
    original_fps: info.fps,
    original_duration: info.durationS,
    original_width: w,
    original_height: h,
    original_resolution: `${w}x${h}`,
    crop_x: clip.crop.x,
    crop_y: clip.crop.y,
    crop_size: clip.crop.size,
    ...detectionStats(detections, w, h),
    ...clipStats(picked, size, size, o.scoreFrames),
  };
  for (const s of o.scorers) row[s.column] = await s.score(picked, size, o.scoreFrames);
  return row;
}
