import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { asDiskFull } from './disk.js';

/** A temporary name in the same folder as `finalPath`, so the final rename is atomic. */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Writes a file so that it appears whole or not at all: data goes to a temporary
 * name in the same folder, is fsynced, then renamed over `finalPath`.
 */
export async function writeFileAtomic(finalPath: string, data: Uint8Array | string): Promise<void> {
  await withAtomicFile(finalPath, (tmp) => writeFile(tmp, data));
}

const TEMP_NAME = /^\.(.+)\.tmp-(\d+)-[0-9a-f]{8}$/;

/** The final name and writer's pid of a temporary file named by `tempPathFor`; null for any other name. */
export function parseTempName(name: string): { finalName: string; pid: number } | null {
  const m = TEMP_NAME.exec(name);
  return m ? { finalName: m[1]!, pid: Number(m[2]) } : null;
}

/**
 * Produces a file so that it appears whole or not at all, however it is made: `produce` writes
 * (or has ffmpeg write) the temporary path it is given; the result is fsynced and renamed over
 * `finalPath`. On any error, including an abort, the temporary file is removed and the error
 * rethrown, so nothing half-made is ever left under the final name.
 *
 * @example await withAtomicFile('clips/a.mp4', (tmp) => runFfmpeg([...args, tmp]))
 */
export async function withAtomicFile<T>(finalPath: string, produce: (tmpPath: string) => Promise<T>): Promise<T> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tmp = tempPathFor(finalPath);
  try {
    const result = await produce(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, finalPath);
    return result;
  } catch (err) {
    await rm(tmp, { force: true, recursive: true });
    throw asDiskFull(err, finalPath);
  }
}
