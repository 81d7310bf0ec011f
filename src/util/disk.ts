/**
 * A full disk is a fault of the run, not of an item: whatever hits ENOSPC/EDQUOT (a write of
 * ours, or an ffmpeg writing its output) becomes a DiskFullError, which stops the run with one
 * line naming the path and the space it needed, instead of being recorded as a failed item.
 */
import { statfsSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';

const ERRNO = new Set(['ENOSPC', 'EDQUOT']);
// What ffmpeg (and other tools) print for the same errnos.
const TEXT = /No space left on device|Disk quota exceeded/;

/** True when `err` (or what it wraps) is a full disk or an exceeded quota. */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof DiskFullError) return true;
    if (ERRNO.has((e as NodeJS.ErrnoException).code ?? '')) return true;
    if (TEXT.test(e.message) || TEXT.test((e as { stderrTail?: string }).stderrTail ?? '')) return true;
  }
  return false;
}

/** Free bytes for an unprivileged writer on the file system holding `path` (its folder, when it does not exist), or null. */
export function freeBytes(path: string): number | null {
  for (const p of [path, dirname(path)]) {
    try {
      const s = statfsSync(p);
      return s.bavail * s.bsize;
    } catch {
      // not there (yet): try its folder
    }
  }
  return null;
}

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The run's disk is full: names the path that could not be written and the space it needed. */
export class DiskFullError extends ClipstreamError {
  readonly path: string;
  readonly neededBytes: number | null;
  readonly freeBytes: number | null;

  constructor(path: string, cause: unknown, neededBytes: number | null = null) {
    const free = freeBytes(path);
    const what =
      (cause as NodeJS.ErrnoException | undefined)?.code === 'EDQUOT' || /quota/i.test(String((cause as Error)?.message))
        ? 'disk quota exceeded'
        : 'no space left on device';
    const need =
      neededBytes !== null
        ? `needs ${human(neededBytes)}${free !== null ? `, ${human(free)} free` : ''}`
        : `${free !== null ? `${human(free)} free, ` : ''}needs more`;
    super('ERR_IO', `${path}: ${what} (${need}); free some space and run again: the run resumes where it stopped`, { cause, where: { file: path } });
    this.name = 'DiskFullError';
    this.path = path;
    this.neededBytes = neededBytes;
    this.freeBytes = free;
  }
}

/** The final name a temporary one (src/util/atomic.ts's `.name.tmp-<pid>-<hex>`) stands for: what the user knows. */
function finalNameOf(path: string): string {
  const m = /^\.(.+)\.tmp-\d+-[0-9a-f]{8}$/.exec(basename(path));
  return m ? join(dirname(path), m[1]!) : path;
}

/** `err` as a DiskFullError about `path` when it is a full disk, else `err` unchanged. */
export function asDiskFull(err: unknown, path: string, neededBytes: number | null = null): unknown {
  if (err instanceof DiskFullError || !isDiskFull(err)) return err;
  // ffmpeg names the file it could not write ("Error writing trailer of /x/a.mp4: No space left on device"): that one, rather than the caller's guess.
  const named = /(\/[^\s:]+): (?:No space left on device|Disk quota exceeded)/.exec((err as Error).message);
  return new DiskFullError(finalNameOf(named?.[1] ?? path), err, neededBytes);
}

/**
 * Writes all of `data` at the file's position: a write(2) may write less than asked (a disk
 * filling up returns the bytes that fit, and ENOSPC only on the next call), and a short write
 * taken for a whole one leaves a truncated file that looks complete.
 */
export async function writeAll(fh: FileHandle, data: Uint8Array, path: string, neededBytes: number | null = null): Promise<void> {
  try {
    for (let done = 0; done < data.byteLength; ) done += (await fh.write(data, done, data.byteLength - done)).bytesWritten;
  } catch (err) {
    throw asDiskFull(err, path, neededBytes);
  }
}
