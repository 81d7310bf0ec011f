/**
 * What a stage does with an item it cannot process, as webdataset's `handler=`: `'skip'` marks
 * the item failed and passes it on (the default: one broken clip never stops a shard),
 * `'throw'` stops the pipeline, and a function decides per error (return 'throw' to stop,
 * anything else to skip). The failure keeps the stage, the cause and where it happened.
 *
 * @example
 * decodeClips({ onError: (err, key) => (err.code === 'ERR_DECODE_TIMEOUT' ? 'throw' : 'skip') })
 */
import { toClipstreamError, type ErrorCode, type Where } from '../errors.js';
import type { ItemFailure, OnError } from '../types.js';
import { asDiskFull, isDiskFull } from '../util/disk.js';

export type { OnError } from '../types.js';

export type { ItemFailure };

/**
 * Records that `stage` could not process an item: returns the failure to put on the item, or
 * throws (per `onError`). `err` is wrapped, keeping its own `where` and adding `where`.
 */
export function failItem(
  onError: OnError | undefined,
  stage: string,
  err: unknown,
  o: { key: string; code: ErrorCode; where?: Where; status?: 'skipped' | 'failed' },
): ItemFailure {
  // A full disk fails every item after this one too: it stops the run (see src/util/disk.ts).
  if (isDiskFull(err)) throw asDiskFull(err, o.where?.file ?? o.key);
  const error = toClipstreamError(err, o.code, { key: o.key, ...o.where });
  const decision = typeof onError === 'function' ? (onError(error, o.key) ?? 'skip') : (onError ?? 'skip');
  if (decision === 'throw') throw error;
  return { stage, error, status: o.status ?? 'failed' };
}
