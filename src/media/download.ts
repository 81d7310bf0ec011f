import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { runTool } from './process.js';
import { HttpGaveUp, HttpPermanentError, httpStatusError, pumpBody, rangeGet, withRetries } from '../util/http-fetch.js';

export interface DownloadOptions {
  /** Attempts after the first one; default 3. Client errors (4xx) and the size limit are not retried. */
  retries?: number;
  /** Wait before the first retry, doubled each time; default 1000 ms. */
  retryDelayMs?: number;
  /** Refuse files bigger than this many bytes; default no limit. */
  maxBytes?: number;
  /** Give up on a connection that sends nothing for this long; default 30 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  bytes: number;
  /** Attempts that resumed a partial file with a Range request. */
  resumed: number;
  attempts: number;
}

async function sizeOf(p: string): Promise<number> {
  try {
    return (await stat(p)).size;
  } catch {
    return 0;
  }
}

/** One attempt: appends to `part` from its current size; resolves when the file is complete. */
async function attempt(url: string, part: string, o: DownloadOptions, stats: { resumed: number }): Promise<void> {
  const offset = await sizeOf(part);
  const { res, status, start, total } = await rangeGet(url, offset, o);
  if (status === 416) {
    res.resume();
    if (offset === 0) throw httpStatusError(res);
    if (total === offset) return;
    // The partial file does not match the server's file any more: start over.
    await rm(part, { force: true });
    throw new Error(`server refused to resume at byte ${offset} (HTTP 416)`);
  }
  if (status === 206) {
    if (start !== offset) {
      res.resume();
      await rm(part, { force: true });
      throw new Error(`server answered the range request at byte ${start} instead of ${offset}`);
    }
    stats.resumed++;
  }
  if (o.maxBytes !== undefined && total !== null && total > o.maxBytes) {
    res.destroy();
    throw new HttpPermanentError(`the file is ${total} bytes, over the size limit of ${o.maxBytes} bytes`);
  }
  const max = o.maxBytes;
  const out = createWriteStream(part, { flags: status === 206 ? 'a' : 'w' });
  let ended = false;
  const end = () =>
    new Promise<void>((resolve, reject) => {
      if (ended) return resolve();
      ended = true;
      out.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  try {
    await pumpBody(res, {
      start,
      total,
      write: (chunk) => out.write(chunk),
      drain: (resume) => out.once('drain', resume),
      check: (written) => (max !== undefined && written > max ? new HttpPermanentError(`the download passed the size limit of ${max} bytes`) : null),
      watch: (fail) => out.on('error', fail),
    });
    await end();
  } catch (err) {
    // What arrived stays in the part file (flushed) for the next attempt to resume from.
    await end().catch(() => {});
    if (err instanceof HttpPermanentError) await rm(part, { force: true });
    throw err;
  }
}

/**
 * Downloads `url` to `dest`. Bytes go to `dest.part`, which survives a dropped connection
 * (and a killed process), so the next attempt or the next run resumes with a Range request;
 * `dest` itself appears only when the file is complete. An existing `dest` is not fetched again.
 *
 * @example await downloadFile('https://example.org/v.mp4', 'downloads/v.mp4', { maxBytes: 2 ** 30 });
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  if ((await sizeOf(dest)) > 0) return { bytes: await sizeOf(dest), resumed: 0, attempts: 0 };
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const stats = { resumed: 0 };
  try {
    const attempts = await withRetries(
      async (n) => {
        await attempt(url, part, options, stats);
        return n + 1;
      },
      { retries: options.retries ?? 3, retryDelayMs: options.retryDelayMs ?? 1000, signal: options.signal },
    );
    await rename(part, dest);
    return { bytes: await sizeOf(dest), resumed: stats.resumed, attempts };
  } catch (err) {
    if (options.signal?.aborted) throw new ClipstreamError('ERR_PIPELINE', 'aborted', { cause: options.signal.reason, where: { file: url } });
    const e = err instanceof HttpGaveUp ? err : new HttpGaveUp(err, 1);
    throw new ClipstreamError('ERR_IO', `download of ${url} failed${e.tries}: ${e.message}`, { cause: e.cause, where: { file: url } });
  }
}

/** The yt-dlp binary: `options.ytDlpPath`, `YTDLP_PATH`, or `yt-dlp` on PATH. */
export function ytDlpPath(explicit?: string): string {
  return explicit ?? process.env.YTDLP_PATH ?? 'yt-dlp';
}

/**
 * Downloads a YouTube video with yt-dlp into `dest` (mp4). Without yt-dlp the error says
 * so; the caller records it for this video only.
 *
 * @example await downloadYouTube('dQw4w9WgXcQ', 'downloads/dQw4w9WgXcQ.mp4');
 */
export async function downloadYouTube(idOrUrl: string, dest: string, options: { ytDlpPath?: string; signal?: AbortSignal } = {}): Promise<void> {
  if ((await sizeOf(dest)) > 0) return;
  const bin = ytDlpPath(options.ytDlpPath);
  const url = /^https?:/.test(idOrUrl) ? idOrUrl : `https://www.youtube.com/watch?v=${idOrUrl}`;
  const work = join(dirname(dest), `.${basename(dest)}.yt-dlp`);
  await mkdir(work, { recursive: true });
  try {
    let res: Awaited<ReturnType<typeof runTool>>;
    try {
      res = await runTool(
        bin,
        [
          '--no-playlist',
          '--quiet',
          '--no-warnings',
          '-f',
          'bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/bv*+ba/b',
          '--merge-output-format',
          'mp4',
          '-o',
          join(work, 'video.%(ext)s'),
          url,
        ],
        { signal: options.signal, stallTimeoutMs: 600_000, where: { file: url } },
      );
    } catch (err) {
      if ((err as ClipstreamError).code === 'ERR_PIPELINE') throw err;
      throw new ClipstreamError(
        'ERR_IO',
        `${idOrUrl}: YouTube videos need yt-dlp, which is not installed (or not at '${bin}'); install it (pip install yt-dlp) or give a path/url column for this video`,
        { cause: err, where: { file: url } },
      );
    }
    if (res.code !== 0)
      throw new ClipstreamError('ERR_IO', `${idOrUrl}: yt-dlp failed: ${res.stderr.trim().split('\n').pop() ?? `exit ${res.code}`}`, { where: { file: url } });
    const got = (await readdir(work)).find((n) => n.startsWith('video.') && !n.endsWith('.part'));
    if (!got) throw new ClipstreamError('ERR_IO', `${idOrUrl}: yt-dlp finished but wrote no video`, { where: { file: url } });
    await rename(join(work, got), dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
