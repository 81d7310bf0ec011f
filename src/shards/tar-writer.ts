import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import { withAtomicFile } from '../util/atomic.js';

/** Fixed tar header fields, so the same files always give byte-identical shards. */
export const FIXED_TAR_HEADER = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) } as const;

export interface TarMember {
  /** Name inside the tar (webdataset key + extension, e.g. `yt-Abc_30.mp4`). */
  name: string;
  /** File whose bytes become the member. */
  path: string;
  /** Size in bytes, when already known (saves a stat). */
  size?: number;
}

/**
 * Streams files into a tar at a temporary name, fsyncs, then renames: readers never see half
 * a shard, and a failure leaves nothing behind.
 *
 * @example await writeTarAtomic('shards/shard-000000.tar', [{ name: 'a_0.mp4', path: 'clips/a_0.mp4' }]);
 */
export async function writeTarAtomic(finalPath: string, members: TarMember[]): Promise<void> {
  try {
    await withAtomicFile(finalPath, (tmp) => packInto(tmp, members));
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `Cannot write shard ${finalPath}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      where: { file: finalPath },
    });
  }
}

async function packInto(path: string, members: TarMember[]): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(path);
  const written = pipeline(pack, out);
  try {
    for (const m of members) {
      const size = m.size ?? (await stat(m.path)).size;
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ ...FIXED_TAR_HEADER, name: m.name, size, type: 'file' }, (err) => {
          if (err) reject(toClipstreamError(err, 'ERR_IO', { file: m.path }));
          else resolve();
        });
        pipeline(createReadStream(m.path), entry).catch(reject);
      });
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy();
    out.destroy();
    // The file must be closed before withAtomicFile removes it.
    await once(out, 'close').catch(() => {});
    throw err;
  }
}
