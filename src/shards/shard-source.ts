/**
 * Where a shard's bytes come from: a local file, an `http(s)://` URL (streamed, retried,
 * resumed with `Range`) or webdataset's `pipe:COMMAND` (the command's stdout). Also the shard
 * list forms webdataset accepts: brace ranges in any of these, and `a.tar::b.tar` lists.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';
import { stderrTail, toolReadable } from '../media/process.js';
import { HttpGaveUp, HttpPermanentError, httpStatusError, pumpBody, rangeGet, withRetries } from '../util/http-fetch.js';
import { expandShardPatterns } from './brace.js';

export interface ShardSourceOptions {
  /** HTTP: attempts after the first; default 5. 4xx other than 408/429 is not retried. */
  retries?: number;
  /** HTTP: wait before the first retry, doubled each time; default 500 ms. */
  retryDelayMs?: number;
  /** HTTP: give up on a connection that sends nothing this long; default 30 s. */
  idleTimeoutMs?: number;
}

const PIPE = 'pipe:';
// An IPv6 literal (`http://[::1]:80/a.tar`) holds `::` too; only a `::` outside brackets separates.
const LIST_SEPARATOR = /::(?![^[]*\])/;

/** True for shards that are not local files. */
export function isRemoteShard(url: string): boolean {
  return url.startsWith(PIPE) || /^https?:\/\//i.test(url);
}

/**
 * Expands shard patterns the way webdataset does: each pattern may be a `::`-separated list,
 * each part brace-expanded (`expandShardPatterns`); duplicates dropped, order kept.
 *
 * @example
 * expandShardUrls('http://h/s-{0..1}.tar::pipe:cat x.tar')
 * // ['http://h/s-0.tar', 'http://h/s-1.tar', 'pipe:cat x.tar']
 */
export function expandShardUrls(patterns: string | string[]): string[] {
  const list = typeof patterns === 'string' ? [patterns] : patterns;
  if (!Array.isArray(list)) return expandShardPatterns(list);
  const parts = list.flatMap((p) => (typeof p === 'string' ? p.split(LIST_SEPARATOR).filter((x) => x.length > 0) : [p]));
  return expandShardPatterns(parts);
}

/**
 * The file name a shard's outputs are named after: the basename of a path or of a URL's path,
 * and for `pipe:` the last word of the command that names a tar (`pipe:aws s3 cp s3://b/x.tar -` → `x.tar`).
 */
export function shardFileName(url: string): string {
  if (url.startsWith(PIPE)) {
    const words = url.slice(PIPE.length).trim().split(/\s+/);
    const tar = [...words].reverse().find((w) => /\.(tar|tar\.gz|tgz)$/i.test(w.replace(/["']/g, '')));
    return basename((tar ?? words[words.length - 1] ?? 'shard').replace(/["']/g, ''));
  }
  if (/^https?:\/\//i.test(url)) {
    try {
      return basename(decodeURIComponent(new URL(url).pathname)) || 'shard';
    } catch {
      return basename(url);
    }
  }
  return basename(url);
}

/**
 * Opens a shard's bytes as a stream. Failures arrive as a stream error naming the shard:
 * HTTP 404/410 carries `code: 'ENOENT'` (the shard does not exist), a `pipe:` command that
 * exits non-zero is an error with its exit code and the end of its stderr.
 *
 * @example readShards(urls, { openStream: (u) => openShard(u) })
 */
export function openShard(url: string, options: ShardSourceOptions = {}): Readable {
  if (url.startsWith(PIPE)) return openPipe(url);
  if (/^https?:\/\//i.test(url)) return openHttp(url, options);
  return createReadStream(url);
}

/**
 * The shard's bytes could not be fetched (a URL that failed after its retries, a `pipe:` command
 * that exited non-zero): unlike damage inside a tar, another try may well succeed, so a job keeps
 * what it read (the journal) instead of writing the shard as final.
 */
export class ShardSourceError extends ClipstreamError {
  constructor(url: string, message: string, cause?: unknown) {
    super('ERR_IO', message, { cause, where: { shard: url, file: url } });
    this.name = 'ShardSourceError';
  }
}

function shardError(url: string, message: string, cause?: unknown, code?: string): Error {
  // tar-reader takes `code === 'ENOENT'` on the source's error to mean "this shard does not exist",
  // as it does for a missing local file (Node's errno error): internal, it never reaches a user
  // unwrapped (test/unit/errors.test.ts allowlist).
  if (code === 'ENOENT') return Object.assign(new Error(message, { cause }), { code });
  return new ShardSourceError(url, message, cause);
}

/** A `pipe:` command that owes output (its reader waits) and gives none for this long is killed, a transient failure. */
const PIPE_STALL_MS = 600_000;

function openPipe(url: string): Readable {
  const command = url.slice(PIPE.length);
  // Through the process runner: counted, killed with the shard, on the watchdog and at exit. In
  // the current environment (credentials a script set after the first spawn included). The
  // stream ends only once the command exited 0: a tar that looks whole but came from a failed
  // command (e.g. a download that died after the end blocks' worth) is still a failure.
  return toolReadable('/bin/sh', ['-c', command], {
    env: process.env,
    what: `shard ${url}: the command`,
    code: 'ERR_IO',
    where: { shard: url, file: url },
    stallTimeoutMs: PIPE_STALL_MS,
    cannotStart: (err) => shardError(url, `shard ${url}: cannot run the command: ${err.message}`, err),
    failure: (r, exit) => {
      const how = r.killedBy ? exit : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
      const tail = stderrTail(r.stderr, 3);
      return shardError(url, `shard ${url}: the command ${how}${tail ? ` (stderr: ${tail})` : ''}`);
    },
  });
}

function openHttp(url: string, options: ShardSourceOptions): Readable {
  const out = new PassThrough();
  const controller = new AbortController();
  const http = { signal: controller.signal, idleTimeoutMs: options.idleTimeoutMs };
  let delivered = 0;
  let known: number | null = null;

  /** One request from byte `delivered`; resolves when the body ended complete. */
  const attempt = async (): Promise<void> => {
    const { res, status, start, total, contentRange } = await rangeGet(url, delivered, http);
    if (status === 416) throw httpStatusError(res);
    if (status === 206 && start !== delivered) {
      res.resume();
      throw new HttpPermanentError(`server answered a range request for byte ${delivered} with ${contentRange ?? 'no Content-Range'}`);
    }
    // A server that ignores Range sends the whole file again: drop what was delivered already.
    const skip = status === 206 ? 0 : delivered;
    // A size learnt once holds for later answers that do not repeat it (`bytes a-b/*`).
    if (total !== null) known = total;
    await pumpBody(res, {
      start: delivered,
      total: known,
      skip,
      write: (chunk) => {
        delivered += chunk.length;
        return out.write(chunk);
      },
      drain: (resume) => out.once('drain', resume),
    });
  };

  void withRetries(attempt, { retries: options.retries ?? 5, retryDelayMs: options.retryDelayMs ?? 500, signal: controller.signal }).then(
    () => out.end(),
    (err: unknown) => {
      if (out.destroyed || controller.signal.aborted) return;
      const e = err instanceof HttpGaveUp ? err : new HttpGaveUp(err, 1);
      const code = e.cause instanceof HttpPermanentError && e.cause.notFound ? 'ENOENT' : undefined;
      out.destroy(shardError(url, `shard ${url}: ${e.message}${e.tries}`, e.cause, code));
    },
  );
  const destroy = out._destroy.bind(out);
  out._destroy = (err, cb) => {
    controller.abort();
    destroy(err, cb);
  };
  return out;
}
