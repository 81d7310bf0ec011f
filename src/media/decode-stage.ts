/**
 * The decode stage: every live item's clip member decoded (./decode.ts) into `video` / `audio`,
 * the encoded bytes dropped; failures marked on the item by the stage kit (src/stage/).
 */
import { ClipstreamError, type Where } from '../errors.js';
import type { StageOptions } from '../stage/generator.js';
import { itemStage, itemStep, type StepContext } from '../stage/item-stage.js';
import type { OnError } from '../stage/on-error.js';
import { AUDIO_EXTENSIONS, findVideoField, VIDEO_EXTENSIONS } from '../shards/clip-name.js';
import type { BaseSample, Sample, StreamItem } from '../types.js';
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
 * kills its ffmpeg processes. Written with the stage kit's `itemStage`.
 *
 * @example
 * await pipeline(readShards(urls), decodeClips({ concurrency: 2 }), writer);
 */
export function decodeClips(options: DecodeStageOptions = {}) {
  const resolved = resolveDecodeOptions(options);
  const concurrency = validateInteger(options.concurrency ?? 2, 'options.concurrency', 1, 256);
  const adds = [...(resolved.video ? ['video'] : []), ...(resolved.audio ? ['audio'] : [])];
  return itemStage<StreamItem>(
    {
      ...decodeSpec(options.onError),
      needs: ['files'],
      adds,
      concurrency,
      writableHighWaterMark: options.writableHighWaterMark ?? concurrency,
      readableHighWaterMark: options.readableHighWaterMark ?? concurrency,
    },
    (item, ctx) => decodeOne(item as Sample, resolved, ctx),
  );
}

/** The decode stage's item handling, for the kit: live samples only, failures named by shard and key. */
function decodeSpec(onError: OnError | undefined) {
  return {
    name: 'decode',
    onError,
    accepts: (item: { kind: string }) => item.kind === 'sample',
    keyOf: (item: object) => (item as BaseSample).__key__,
    code: 'ERR_DECODE' as const,
    whereOf: (item: object): Where => ({ shard: (item as BaseSample).__url__, key: (item as BaseSample).__key__ }),
    statusOf: (err: unknown) => ((err as ClipstreamError | undefined)?.code === 'ERR_CLIP_TOO_SHORT' ? ('skipped' as const) : ('failed' as const)),
  };
}

/**
 * Decodes one item in place (any item with `files`); failures are recorded on it per `onError`, aborts are thrown.
 *
 * @internal used by the zoo tests only (the job runs it through decodeClips)
 */
export async function decodeSample(
  sample: BaseSample & Pick<Sample, 'video' | 'audio'>,
  options: ResolvedDecodeOptions,
  signal?: AbortSignal,
  onError: OnError = 'skip',
): Promise<void> {
  await itemStep<BaseSample & Pick<Sample, 'video' | 'audio'>>(decodeSpec(onError), (item, ctx) => decodeOne(item, options, ctx))(sample, signal);
}

/** Decodes one sample's clip member in place and drops the encoded bytes; throws what went wrong. */
async function decodeOne(sample: BaseSample & Pick<Sample, 'video' | 'audio'>, options: ResolvedDecodeOptions, ctx: StepContext): Promise<void> {
  const { where, signal } = ctx;
  const key = sample.__key__;
  const field = findVideoField(Object.keys(sample.files), options.video ? VIDEO_FIELDS : [...VIDEO_FIELDS, ...AUDIO_FIELDS]);
  if (!field)
    throw new ClipstreamError('ERR_DECODE', `${key}: no video member (fields: ${Object.keys(sample.files).join(', ') || 'none'})`, { where: { ...where } });
  where.file = `${sample.__key__}.${field}`;
  try {
    const clip = await decodeClip(sample.files[field]!, options, where, signal);
    if (clip.video) sample.video = clip.video;
    sample.audio = clip.audio;
  } finally {
    // The encoded clip is no longer needed; dropping it keeps memory bounded.
    delete sample.files[field];
  }
}
