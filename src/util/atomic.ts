import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { asDiskFull } from './disk.js';
import { lockHeldElsewhere, lockPathFor } from './lock.js';
import { pidAlive } from './pid.js';

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

/**
 * Removes the temporary files (tempPathFor's naming) that processes killed mid-write left in
 * `dir`, optionally only those of `finalName`. Files of live processes, and of units whose lock
 * (./lock.ts) another live process holds, are left alone, so two runs sharing a folder (or
 * machines sharing it over NFS) do not delete each other's work. Returns how many were removed.
 *
 * @example await removeDeadTemps('out') // after a `kill -9` during a write
 */
export async function removeDeadTemps(dir: string, finalName?: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || (finalName !== undefined && m[1] !== finalName)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || pidAlive(pid)) continue;
    // Another machine's run writing this unit: its pid is not ours to judge.
    if (await lockHeldElsewhere(lockPathFor(join(dir, m[1]!)))) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
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
