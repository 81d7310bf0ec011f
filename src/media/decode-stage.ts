/**
 * The decode stage: every live item's clip member decoded (./decode.ts) into `video` / `audio`,
 * the encoded bytes dropped; failures through `failItem` (src/stage/on-error.ts).
 */
import { ClipstreamError, type Where } from '../errors.js';
import { declareStage } from '../stage/contract.js';
import { failItem, type OnError } from '../stage/on-error.js';
import { AUDIO_EXTENSIONS, findVideoField, VIDEO_EXTENSIONS } from '../shards/clip-name.js';
import { isLive, type BaseSample, type Sample, type StreamItem } from '../types.js';
import { generatorStage, orderedMap, type StageOptions } from '../stage/generator.js';
import { validateInteger } from '../util/validate.js';
import { decodeClip, resolveDecodeOptions, type DecodeOptions, type ResolvedDecodeOptions } from './decode.js';

/** Tar fields that hold a video, in the order they are looked for: the entry join's list. */
export const VIDEO_FIELDS: readonly string[] = VIDEO_EXTENSIONS;
/** Fields that hold a clip when only the audio is decoded (no visual model). */
export const AUDIO_FIELDS: readonly string[] = AUDIO_EXTENSIONS;

export interface DecodeStageOptions extends DecodeOptions, StageOptions {
  /** ffmpeg processes running at once. */
  concurrency?: number;
  /** A clip that cannot be decoded: 'skip' (default) marks it failed and passes it on; 'throw' stops the stream. */
  onError?: OnError;
}

/**
 * Stage: decodes the video member of each sample into `sample.video` / `sample.audio` and
 * drops the encoded bytes. A clip that fails to decode is marked (`sample.failure`) and
 * passed on, so it never stops the stream (unless `onError` says 'throw'). Destroying the stage
 * kills its ffmpeg processes.
 *
 * @example
 * await pipeline(readShards(urls), decodeClips({ concurrency: 2 }), writer);
 */
export function decodeClips(options: DecodeStageOptions = {}) {
  const resolved = resolveDecodeOptions(options);
  const concurrency = validateInteger(options.concurrency ?? 2, 'options.concurrency', 1, 256);
  const stage = generatorStage<StreamItem, StreamItem>(
    (source, signal) =>
      orderedMap(
        source,
        async (item) => {
          if (!isLive(item)) return item;
          await decodeSample(item, resolved, signal, options.onError);
          return item;
        },
        concurrency,
      ),
    { writableHighWaterMark: options.writableHighWaterMark ?? concurrency, readableHighWaterMark: options.readableHighWaterMark ?? concurrency },
  );
  const adds = [...(resolved.video ? ['video'] : []), ...(resolved.audio ? ['audio'] : [])];
  return declareStage(stage, { name: 'decode', needs: ['files'], adds });
}

/** Decodes one item in place (any item with `files`); failures are recorded on it per `onError`, aborts are thrown. */
export async function decodeSample(
  sample: BaseSample & Pick<Sample, 'video' | 'audio'>,
  options: ResolvedDecodeOptions,
  signal?: AbortSignal,
  onError: OnError = 'skip',
): Promise<void> {
  const where: Where = { shard: sample.__url__, key: sample.__key__ };
  const key = sample.__key__;
  const field = findVideoField(Object.keys(sample.files), options.video ? VIDEO_FIELDS : [...VIDEO_FIELDS, ...AUDIO_FIELDS]);
  if (!field) {
    const err = new ClipstreamError('ERR_DECODE', `${key}: no video member (fields: ${Object.keys(sample.files).join(', ') || 'none'})`, { where });
    sample.failure = failItem(onError, 'decode', err, { key, code: 'ERR_DECODE', where });
    return;
  }
  where.file = `${sample.__key__}.${field}`;
  try {
    const clip = await decodeClip(sample.files[field]!, options, where, signal);
    if (clip.video) sample.video = clip.video;
    sample.audio = clip.audio;
  } catch (err) {
    if (signal?.aborted) throw err;
    const tooShort = (err as ClipstreamError | undefined)?.code === 'ERR_CLIP_TOO_SHORT';
    sample.failure = failItem(onError, 'decode', err, { key, code: 'ERR_DECODE', where, status: tooShort ? 'skipped' : 'failed' });
  } finally {
    // The encoded clip is no longer needed; dropping it keeps memory bounded.
    delete sample.files[field];
  }
}
