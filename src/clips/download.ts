import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClipstreamError } from '../errors.js';
import { runTool } from '../media/process.js';

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

class Permanent extends Error {}

async function sizeOf(p: string): Promise<number> {
  try {
    return (await stat(p)).size;
  } catch {
    return 0;
  }
}

/** One GET with an idle timeout; shared with the remote shard reader (src/shards/shard-source.ts). */
export function get(url: string, headers: Record<string, string>, o: DownloadOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { headers, signal: o.signal }, resolve);
    req.setTimeout(o.idleTimeoutMs ?? 30_000, () => req.destroy(new Error(`no data for ${o.idleTimeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
  });
}

/** One attempt: appends to `part` from its current size; resolves when the file is complete. */
async function attempt(url: string, part: string, o: DownloadOptions, stats: { resumed: number }, redirects = 0): Promise<void> {
  const offset = await sizeOf(part);
  const res = await get(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, o);
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location) {
    res.resume();
    if (redirects >= 5) throw new Permanent('too many redirects');
    return attempt(new URL(res.headers.location, url).toString(), part, o, stats, redirects + 1);
  }
  if (status === 416 && offset > 0) {
    res.resume();
    const total = Number(/\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1]);
    if (total === offset) return;
    // The partial file does not match the server's file any more: start over.
    await rm(part, { force: true });
    throw new Error(`server refused to resume at byte ${offset} (HTTP 416)`);
  }
  if (status !== 200 && status !== 206) {
    res.resume();
    const msg = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) throw new Permanent(msg);
    throw new Error(msg);
  }
  let start = 0;
  let total: number | null = null;
  if (status === 206) {
    const m = /bytes (\d+)-\d+\/(\d+|\*)/.exec(res.headers['content-range'] ?? '');
    start = m ? Number(m[1]) : -1;
    if (start !== offset) {
      res.resume();
      await rm(part, { force: true });
      throw new Error(`server answered the range request at byte ${start} instead of ${offset}`);
    }
    if (m && m[2] !== '*') total = Number(m[2]);
    stats.resumed++;
  } else if (res.headers['content-length'] !== undefined) {
    total = Number(res.headers['content-length']);
  }
  if (o.maxBytes !== undefined && total !== null && total > o.maxBytes) {
    res.destroy();
    throw new Permanent(`the file is ${total} bytes, over the size limit of ${o.maxBytes} bytes`);
  }
  let written = start;
  const out = createWriteStream(part, { flags: status === 206 ? 'a' : 'w' });
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        res.destroy();
        out.end(() => reject(err));
      };
      res.on('data', (chunk: Buffer) => {
        written += chunk.length;
        if (o.maxBytes !== undefined && written > o.maxBytes) {
          fail(new Permanent(`the download passed the size limit of ${o.maxBytes} bytes`));
          return;
        }
        if (!out.write(chunk)) {
          res.pause();
          out.once('drain', () => res.resume());
        }
      });
      res.on('aborted', () => fail(new Error(`connection dropped after ${written} bytes`)));
      res.on('error', (err) => fail(new Error(`connection failed after ${written} bytes: ${err.message}`)));
      res.on('end', () => {
        if (failed) return;
        out.end((err?: Error | null) => {
          if (err) reject(err);
          else if (total !== null && written !== total) reject(new Error(`connection closed after ${written} of ${total} bytes`));
          else resolve();
        });
      });
      out.on('error', fail);
    });
  } catch (err) {
    if (err instanceof Permanent) await rm(part, { force: true });
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
  const retries = options.retries ?? 3;
  let delay = options.retryDelayMs ?? 1000;
  const stats = { resumed: 0 };
  for (let n = 0; ; n++) {
    try {
      await attempt(url, part, options, stats);
      await rename(part, dest);
      return { bytes: await sizeOf(dest), resumed: stats.resumed, attempts: n + 1 };
    } catch (err) {
      if (options.signal?.aborted) throw new ClipstreamError('ERR_PIPELINE', 'aborted', { cause: options.signal.reason, where: { file: url } });
      const msg = err instanceof Error ? err.message : String(err);
      if (err instanceof Permanent || n >= retries) {
        throw new ClipstreamError('ERR_IO', `download of ${url} failed${n > 0 ? ` after ${n + 1} attempts` : ''}: ${msg}`, {
          cause: err,
          where: { file: url },
        });
      }
      await sleep(delay, undefined, { signal: options.signal }).catch(() => {});
      delay *= 2;
    }
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
