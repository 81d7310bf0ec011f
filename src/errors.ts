/**
 * One error base class for the whole library. `code` is stable and machine-readable;
 * `where` names the shard, clip key or file the error is about, so a line in a log
 * is enough to find the culprit.
 */

/**
 * Every code a ClipstreamError carries, with the kind of failure it names. Every error the
 * library throws at a user is a ClipstreamError with one of these (test/unit/errors.test.ts checks
 * the exported error classes against this list).
 */
export const ERROR_CODES = {
  /** An option or CLI argument is missing, of the wrong type, out of range or inconsistent with another. */
  ERR_INVALID_OPTION: 'an option or argument is wrong',
  /** A tar shard is missing, truncated or corrupt (or its compression cannot be undone). */
  ERR_TAR: 'a tar shard cannot be read',
  /** One member of a tar shard is unusable (no extension, unreadable); the rest of the shard goes on. */
  ERR_TAR_MEMBER: 'a member of a tar shard is unusable',
  /** A file cannot be read as media: ffprobe fails, no video stream, no frame rate, no packets. */
  ERR_PROBE: 'a file cannot be probed as media',
  /** Media could not be decoded: ffmpeg failed or gave fewer frames or samples than it must. */
  ERR_DECODE: 'media cannot be decoded',
  /** A child process made no progress (or ran past its limit) and the watchdog killed it. */
  ERR_DECODE_TIMEOUT: 'a child process stalled or ran too long and was killed',
  /** Media could not be written: an encode, cut or mux failed, or its output is not what was asked. */
  ERR_ENCODE: 'media cannot be encoded or written',
  /** An external program (ffmpeg, ffprobe, a decompressor, yt-dlp) cannot be started. */
  ERR_TOOL: 'an external program cannot be run',
  /** A clip (or its audio) is too short for the model; the item is skipped, not failed. */
  ERR_CLIP_TOO_SHORT: 'a clip is too short for the model',
  /** A clip is not in the keep list given (`--keep_list`, e.g. a duplicate `dedup` dropped); the item is skipped, not failed. */
  ERR_NOT_KEPT: 'a clip is not in the keep list',
  /** A model file is missing, unreadable, of the wrong kind, or cannot be built or converted. */
  ERR_MODEL: 'a model cannot be loaded or built',
  /** A model failed while running (ONNX Runtime, its worker thread). */
  ERR_INFERENCE: 'a model failed while running',
  /** Data is not in the format expected (a record, a table, a checkpoint, a pickle). */
  ERR_FORMAT: 'data is not in the expected format',
  /** A file, folder or network read or write failed (including a full disk). */
  ERR_IO: 'a file or network operation failed',
  /** Another run holds the unit or its lock; it is left for that run. */
  ERR_BUSY: 'another run holds the unit',
  /** The work was stopped before it finished: a signal, or a queue worker handing a unit back. */
  ERR_ABORTED: 'the work was stopped before it finished',
  /** The pipeline itself failed: a stage misused, destroyed early, or an internal invariant broken. */
  ERR_PIPELINE: 'the pipeline itself failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** True for a code of the list above (a Node errno code such as `ENOENT` is not one). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

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

/** A failure of a system call (Node's errno errors: `code: 'ENOENT'`, `syscall: 'open'`). */
function isSystemError(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown } | null;
  return err instanceof Error && typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) && typeof e.syscall === 'string';
}

/**
 * Wraps anything thrown into a ClipstreamError without losing the original as `cause`. A
 * ClipstreamError keeps its code, message and `where`; fields of `where` it lacks are added
 * (the caller's context: the shard, the clip key), none it has are overwritten. `code` is the
 * kind of failure the caller was at; a failed system call (a file that cannot be opened,
 * written or renamed) is `ERR_IO` whatever the caller was doing.
 */
export function toClipstreamError(err: unknown, code: ErrorCode, where: Where = {}): ClipstreamError {
  if (err instanceof ClipstreamError) {
    const own = err.where as Record<string, string | undefined>;
    for (const [k, v] of Object.entries(where)) if (own[k] === undefined && v !== undefined) own[k] = v;
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ClipstreamError(isSystemError(err) ? 'ERR_IO' : code, message, { cause: err, where });
}
