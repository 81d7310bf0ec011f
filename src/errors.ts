/**
 * One error base class for the whole library. `code` is stable and machine-readable;
 * `where` names the shard, clip key or file the error is about, so a line in a log
 * is enough to find the culprit.
 */
export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_BAD_ARGUMENT'
  | 'ERR_TAR'
  | 'ERR_TAR_MEMBER'
  | 'ERR_DECODE'
  | 'ERR_DECODE_TIMEOUT'
  | 'ERR_CLIP_TOO_SHORT'
  | 'ERR_MODEL'
  | 'ERR_INFERENCE'
  | 'ERR_FORMAT'
  | 'ERR_IO'
  | 'ERR_PIPELINE';

export interface Where {
  shard?: string;
  key?: string;
  file?: string;
  option?: string;
}

export class ClipstreamError extends Error {
  readonly code: ErrorCode;
  readonly where: Where;
  /**
   * True for a failure of the run's circumstances, not of the input: a child killed by the
   * watchdog or by a signal the run did not send, a spawn refused for lack of processes, files
   * or memory. Such a failure is retried (in the run, then by the next run); any other is
   * permanent.
   */
  readonly transient: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; where?: Where; transient?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClipstreamError';
    this.code = code;
    this.where = options.where ?? {};
    this.transient = options.transient ?? isTransient(options.cause);
  }

  /** Plain object for logs (JSON.stringify drops Error fields otherwise). */
  toJSON(): { code: ErrorCode; message: string; where: Where } {
    return { code: this.code, message: this.message, where: this.where };
  }
}

/** True when `err` (or what it wraps) is a transient failure (see ClipstreamError.transient). */
export function isTransient(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = (e as Error).cause, depth++) {
    if (e instanceof ClipstreamError) return e.transient;
  }
  return false;
}

/** Thrown by option validation; the message names the option path. */
export class InvalidOptionError extends ClipstreamError {
  constructor(message: string, option: string) {
    super('ERR_INVALID_OPTION', message, { where: { option } });
    this.name = 'InvalidOptionError';
  }
}

/**
 * Wraps anything thrown into a ClipstreamError without losing the original as `cause`. A
 * ClipstreamError keeps its code, message and `where`; fields of `where` it lacks are added
 * (the caller's context: the shard, the clip key), none it has are overwritten.
 */
export function toClipstreamError(err: unknown, code: ErrorCode, where: Where = {}): ClipstreamError {
  if (err instanceof ClipstreamError) {
    const own = err.where as Record<string, string | undefined>;
    for (const [k, v] of Object.entries(where)) if (own[k] === undefined && v !== undefined) own[k] = v;
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ClipstreamError(code, message, { cause: err, where });
}
