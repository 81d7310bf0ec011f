/**
 * HTTP GET with retries and `Range` resume, in one place for the two readers that need it: the
 * clips downloader (src/media/download.ts, bytes to a `.part` file) and remote shards
 * (src/shards/shard-source.ts, bytes to a stream). Each request asks for the bytes from where
 * its reader stands; this module follows redirects, sorts answers into retryable and permanent
 * failures, pumps a body with backpressure and checks it arrived whole, and retries with
 * doubling delays.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

/** A failure no retry fixes (a 4xx answer, a size limit). `code: 'ENOENT'` for 404/410: the file does not exist. */
export class HttpPermanentError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The last failure after every try (or a permanent one); `cause` is that failure, `attempts` how many were made. */
export class HttpGaveUp extends Error {
  constructor(
    override readonly cause: unknown,
    readonly attempts: number,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
  /** ' after N attempts' when there was more than one, else ''. */
  get tries(): string {
    return this.attempts > 1 ? ` after ${this.attempts} attempts` : '';
  }
}

export interface HttpGetOptions {
  signal?: AbortSignal;
  /** Give up on a connection that sends nothing for this long; default 30 s. */
  idleTimeoutMs?: number;
}

/** One GET with an idle timeout. */
export function httpGet(url: string, headers: Record<string, string>, o: HttpGetOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { headers, signal: o.signal }, resolve);
    req.setTimeout(o.idleTimeoutMs ?? 30_000, () => req.destroy(new Error(`no data for ${o.idleTimeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
  });
}

/** The failure an answer other than 200/206 means: 404/410 and other 4xx (but 408, 429) are permanent. */
export function httpStatusError(res: http.IncomingMessage): Error {
  res.resume();
  const status = res.statusCode ?? 0;
  const msg = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status === 404 || status === 410) return new HttpPermanentError(msg, 'ENOENT');
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return new HttpPermanentError(msg);
  return new Error(msg);
}

export interface RangeAnswer {
  res: http.IncomingMessage;
  status: number;
  /** For 206, the first byte of the body by its Content-Range (-1 when it has none); 0 otherwise. */
  start: number;
  /** The whole file's size, when the answer says it (Content-Range, or Content-Length of a 200). */
  total: number | null;
  contentRange: string | undefined;
}

/**
 * GETs `url` asking for the bytes from `offset` on (a `Range` request when offset > 0),
 * following up to 5 redirects. Answers 200, 206 and 416 come back for the caller to judge
 * (a 416 or a 206 at the wrong byte means different things to a file and to a stream); any
 * other status is thrown as `httpStatusError` says.
 */
export async function rangeGet(url: string, offset: number, o: HttpGetOptions, redirects = 0): Promise<RangeAnswer> {
  const res = await httpGet(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, o);
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location) {
    res.resume();
    if (redirects >= 5) throw new HttpPermanentError('too many redirects');
    return rangeGet(new URL(res.headers.location, url).toString(), offset, o, redirects + 1);
  }
  const contentRange = res.headers['content-range'];
  if (status === 416) return { res, status, start: 0, total: Number(/\/(\d+)$/.exec(contentRange ?? '')?.[1]), contentRange };
  if (status !== 200 && status !== 206) throw httpStatusError(res);
  if (status === 206) {
    const m = /bytes (\d+)-\d+\/(\d+|\*)/.exec(contentRange ?? '');
    return { res, status, start: m ? Number(m[1]) : -1, total: m && m[2] !== '*' ? Number(m[2]) : null, contentRange };
  }
  return { res, status, start: 0, total: res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : null, contentRange };
}

export interface PumpOptions {
  /** The byte the body starts at (counted into the position). */
  start: number;
  /** The size the position must reach at the end, when known. */
  total: number | null;
  /** Leading body bytes to drop (a server that ignored Range resent them). */
  skip?: number;
  /** Takes a chunk; false asks to wait for `drain`. */
  write(chunk: Buffer): boolean;
  /** Calls `resume` once the sink drained. */
  drain(resume: () => void): void;
  /** A failure to stop at after a chunk (a size limit), or null. */
  check?(position: number): Error | null;
  /** Lets the sink fail the pump (its own write error). */
  watch?(fail: (err: Error) => void): void;
}

/** Pumps a response body into a sink; resolves with the end position once it ended complete. */
export function pumpBody(res: http.IncomingMessage, o: PumpOptions): Promise<number> {
  let position = o.start;
  let skip = o.skip ?? 0;
  return new Promise<number>((resolve, reject) => {
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      res.destroy();
      reject(err);
    };
    res.on('data', (chunk: Buffer) => {
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
        if (chunk.length === 0) return;
      }
      position += chunk.length;
      const stop = o.check?.(position);
      if (stop) {
        fail(stop);
        return;
      }
      if (!o.write(chunk)) {
        res.pause();
        o.drain(() => res.resume());
      }
    });
    res.on('aborted', () => fail(new Error(`connection dropped after ${position} bytes`)));
    res.on('error', (err) => fail(new Error(`connection failed after ${position} bytes: ${err.message}`)));
    res.on('end', () => {
      if (failed) return;
      if (o.total !== null && position !== o.total) fail(new Error(`connection closed after ${position} of ${o.total} bytes`));
      else resolve(position);
    });
    o.watch?.(fail);
  });
}

export interface RetryOptions {
  /** Attempts after the first. */
  retries: number;
  /** Wait before the first retry, doubled each time. */
  retryDelayMs: number;
  /** Aborting stops the retries: the failure is rethrown as it is. */
  signal?: AbortSignal;
}

/**
 * Runs `attempt` until it succeeds, retrying failures other than `HttpPermanentError` up to
 * `retries` times; then throws `HttpGaveUp` with the last failure. After an abort the failure is
 * rethrown unwrapped.
 */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, o: RetryOptions): Promise<T> {
  let delay = o.retryDelayMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      if (err instanceof HttpPermanentError || n >= o.retries) throw new HttpGaveUp(err, n + 1);
      await sleep(delay, undefined, { signal: o.signal }).catch(() => {});
      delay *= 2;
    }
  }
}
