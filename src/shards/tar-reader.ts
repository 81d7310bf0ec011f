import { Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';
import { declareStage } from '../stage/contract.js';
import { failItem, type OnError } from '../stage/on-error.js';
import { defaultWarningHandler, type ShardEnd, type ShardInfo, type StreamItem, type TarItem, type TarSample, type WarningHandler } from '../types.js';
import { validateInteger } from '../util/validate.js';
import { decompressed, type Decompressed } from './decompress.js';
import { joinEntriesOf, type JoinEntriesOptions } from './entry-join.js';
import { openShard, shardFileName } from './shard-source.js';
import { parseTar, type TarHeader, type TarParser } from './tar-parse.js';

export interface ReadTarOptions {
  onWarning?: WarningHandler;
  /** Return true to skip a whole shard (e.g. its output exists). A skipped shard emits nothing. */
  skipShard?: (shard: ShardInfo) => boolean | Promise<boolean>;
  /** A shard's position (`ShardInfo.index`); default its position in `urls`. */
  indexOf?: (url: string) => number;
  /** A sample with a refused member (too big): 'skip' (default) marks it failed and passes it on. */
  onError?: OnError;
  /** Members bigger than this are skipped with a warning instead of buffered. Default 2 GiB. */
  maxMemberBytes?: number;
  /** Samples read ahead of the consumer. Default 1: a sample can be hundreds of MB. */
  highWaterMark?: number;
  /** Opens a shard's bytes; default `openShard` (a file, `http(s)://` or `pipe:`). For tests and other storage. */
  openStream?: (url: string) => Readable;
}

export interface ReadShardsOptions extends ReadTarOptions, Omit<JoinEntriesOptions, 'onWarning'> {}

export const DEFAULT_MAX_MEMBER_BYTES = 2 * 1024 ** 3;

const TAR_HINT = 'Maybe the tar is corrupted or it needs to be gunzipped?';

/**
 * `shard-000000.tar` -> `shard-000000` (also `.tar.gz`, `.tgz`, `.tar.bz2`, `.tar.xz`, `.tar.zst`;
 * http and pipe: sources by their file name). The name says nothing about compression: that is
 * told by the bytes (./decompress.ts).
 */
export function shardBaseName(url: string): string {
  const base = shardFileName(url);
  const m = /(\.tar(\.(gz|bz2|xz|zst))?|\.tgz)$/i.exec(base);
  return m && m.index > 0 ? base.slice(0, m.index) : base;
}

/**
 * The webdataset rule: key = path up to the first dot of the basename (directory kept),
 * field = the rest, lowercased (webdataset's default). `a/b.seg.json` -> key `a/b`,
 * field `seg.json`. A leading `./` is dropped so `tar -C dir .` archives give clean keys.
 */
export function splitMemberName(name: string): { key: string; field: string } | null {
  const clean = name.replace(/^(\.\/)+/, '');
  const slash = clean.lastIndexOf('/');
  const base = clean.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) return null;
  return { key: clean.slice(0, slash + 1) + base.slice(0, dot), field: base.slice(dot + 1).toLowerCase() };
}

/** Why a member must not be read, or null. Only plain files inside the archive root are data. */
function memberProblem(header: TarHeader): string | null {
  const type = header.type;
  if (type !== 'file' && type !== 'contiguous-file') {
    const target = header.linkname ? ` -> '${header.linkname}'` : '';
    return `it is a ${type}${target}, not a regular file`;
  }
  const name = header.name;
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) {
    return 'its path is absolute';
  }
  if (name.split(/[\\/]/).includes('..')) return "its path climbs out of the archive with '..'";
  return null;
}

interface Pending {
  key: string;
  files: Record<string, Buffer>;
  /**
   * Field -> full member path as written in the tar (case kept, folders kept, `./` dropped), for
   * every member of the key, refused ones included: the json join needs the video's real name.
   */
  members: Record<string, string>;
  /** Set when a member was refused (too big): the sample still flows, marked failed, so it is accounted for. */
  failure?: ClipstreamError;
}

/**
 * Marks an exception thrown by the caller's onWarning, so the reader does not mistake it
 * for tar damage: it must reach the consumer as a stream error, as for skipShard/skipKeys.
 */
class CallbackFailure {
  constructor(readonly error: unknown) {}
}

function guardWarnings(warn: WarningHandler): WarningHandler {
  return (w) => {
    try {
      warn(w);
    } catch (err) {
      throw new CallbackFailure(err);
    }
  };
}

/** Handles to the streams of the shard being read, so destroy() can close them at once. */
interface Open {
  source?: Readable;
  /** The plain tar bytes (the source, or its decompressor's output). */
  stream?: Readable;
}

interface Ctx {
  warn: WarningHandler;
  skipShard?: ReadTarOptions['skipShard'];
  indexOf?: ReadTarOptions['indexOf'];
  onError?: OnError;
  maxMemberBytes: number;
  openStream: (url: string) => Readable;
  open: Open;
}

async function* readShard(shard: ShardInfo, ctx: Ctx): AsyncGenerator<TarItem> {
  const { warn } = ctx;
  const url = shard.url;

  let samples = 0; // complete samples
  let pending: Pending | null = null;
  let members = 0;
  const finish = (p: Pending): TarSample => {
    const sample: TarSample = { kind: 'sample', __key__: p.key, __url__: url, shard, index: samples++, files: p.files, members: p.members };
    if (p.failure) {
      try {
        sample.failure = failItem(ctx.onError, 'read', p.failure, { key: p.key, code: 'ERR_TAR_MEMBER' });
      } catch (err) {
        throw new CallbackFailure(err); // onError said 'throw': a stream error, not tar damage
      }
    }
    return sample;
  };
  const memberWarning = (name: string, why: string): ClipstreamError => {
    const w = new ClipstreamError('ERR_TAR_MEMBER', `Skipped member '${name}' of shard ${url}: ${why}`, { where: { shard: url, file: name } });
    warn(w);
    return w;
  };

  let caught: unknown = null;
  let parser: TarParser | null = null;
  let opened: Decompressed | null = null;
  try {
    const source = ctx.openStream(url);
    ctx.open.source = source;
    opened = await decompressed(source, url);
    ctx.open.stream = opened.stream;
    parser = parseTar(opened.stream, (problem) => warn(new ClipstreamError('ERR_TAR_MEMBER', `Shard ${url}: ${problem}`, { where: { shard: url } })));
    for (;;) {
      const header = await parser.next();
      if (!header) break;
      members++;
      const problem = memberProblem(header);
      if (problem) {
        memberWarning(header.name, problem);
        continue; // the parser skips its data blocks, by its declared size
      }
      const split = splitMemberName(header.name);
      if (!split) {
        memberWarning(header.name, 'its name has no extension, so it has no webdataset field');
        continue;
      }
      if (pending && pending.key !== split.key) {
        const done = finish(pending);
        pending = null;
        // The sample is known to be whole only once a member of another key shows up.
        yield done;
      }
      pending ??= { key: split.key, files: {}, members: {} };
      const size = header.size;
      if (split.field in pending.files) {
        memberWarning(header.name, `sample '${split.key}' already has a '${split.field}' member`);
        continue;
      }
      pending.members[split.field] = header.name.replace(/^(\.\/)+/, '');
      if (size > ctx.maxMemberBytes) {
        pending.failure ??= memberWarning(header.name, `it is ${size} bytes, more than maxMemberBytes (${ctx.maxMemberBytes})`);
        continue;
      }
      pending.files[split.field] = await parser.body();
    }
    if (pending) {
      const done = finish(pending);
      pending = null;
      yield done;
    }
  } catch (err) {
    if (err instanceof CallbackFailure) throw err.error;
    caught = err;
  } finally {
    await parser?.close().catch(() => {});
    opened?.destroy();
    ctx.open.source?.destroy();
    ctx.open.source = undefined;
    ctx.open.stream = undefined;
  }

  const cause = caught;
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  if (caught !== null && code === 'ENOENT' && members === 0) {
    warn(new ClipstreamError('ERR_TAR', `Shard ${url} does not exist; skipped`, { cause, where: { shard: url } }));
    return;
  }
  // The entry join (./entry-join.ts) adds the clips its json lists that the tar lacks, and warns.
  let reason: string | null = null;
  if (caught === null && parser?.ending === 'no-end-blocks') {
    reason =
      parser.position === 0
        ? 'the tar is empty (0 bytes)'
        : `the tar has no end-of-archive blocks after ${samples} sample${samples === 1 ? '' : 's'}: it may be truncated`;
  }
  const end: ShardEnd = { kind: 'shard-end', shard, samples };
  if (reason) end.incomplete = { reason, missing: [] };
  if (caught !== null) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const cut = pending !== null;
    const hint = why.includes('gunzipped') || /compressed but|-dc failed/.test(why) ? '' : ` ${TAR_HINT}`;
    const message =
      `Shard ${url} is truncated or corrupt (${why}): read ${samples} complete sample${samples === 1 ? '' : 's'} before the damage` +
      (cut ? `, dropped 1 possibly incomplete sample '${pending!.key}'` : '') +
      `.${hint}`;
    end.error = new ClipstreamError('ERR_TAR', message, { cause, where: { shard: url, file: url } });
  }
  yield end;
}

async function* readAll(urls: Iterable<string> | AsyncIterable<string>, ctx: Ctx): AsyncGenerator<TarItem> {
  let position = 0;
  for await (const url of urls) {
    const index = ctx.indexOf ? ctx.indexOf(url) : position;
    position++;
    const shard: ShardInfo = { url, name: shardBaseName(url), index };
    if (ctx.skipShard && (await ctx.skipShard(shard))) continue;
    yield* readShard(shard, ctx);
  }
}

class ShardReader<T> extends Readable {
  readonly #gen: AsyncGenerator<T>;
  readonly #open: Open;
  #pulling = false;

  constructor(gen: AsyncGenerator<T>, open: Open, highWaterMark: number) {
    super({ objectMode: true, highWaterMark });
    this.#gen = gen;
    this.#open = open;
  }

  override _read(): void {
    if (this.#pulling) return;
    this.#pulling = true;
    void this.#pull();
  }

  async #pull(): Promise<void> {
    try {
      for (;;) {
        const r = await this.#gen.next();
        if (this.destroyed) return;
        if (r.done) {
          this.push(null);
          return;
        }
        if (!this.push(r.value)) return;
      }
    } catch (caught) {
      // Only the job's own callbacks (skipShard, skipKeys, onWarning) can get here: tar damage
      // becomes a ShardEnd error instead.
      const err = caught instanceof CallbackFailure ? caught.error : caught;
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#pulling = false;
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // Close the file now rather than when the generator next wakes up.
    this.#open.source?.destroy();
    this.#open.stream?.destroy();
    this.#gen.return(undefined).catch(() => {});
    cb(err);
  }
}

function readerContext(urls: Iterable<string> | AsyncIterable<string>, options: ReadTarOptions, open: Open): Ctx {
  if (Array.isArray(urls) && urls.some((u) => typeof u !== 'string' || u.length === 0)) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', 'readShards expects an array of shard paths (use expandShardPatterns for brace patterns)');
  }
  if (!Array.isArray(urls) && (urls === null || typeof urls !== 'object' || !(Symbol.asyncIterator in urls || Symbol.iterator in urls))) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', 'readShards expects an array of shard paths (use expandShardPatterns for brace patterns)');
  }
  return {
    warn: guardWarnings(options.onWarning ?? defaultWarningHandler),
    skipShard: options.skipShard,
    indexOf: options.indexOf,
    onError: options.onError,
    maxMemberBytes: validateInteger(options.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES, 'options.maxMemberBytes', 0),
    openStream: options.openStream ?? ((url) => openShard(url)),
    open,
  };
}

/**
 * Stage (a source): streams the samples of webdataset tar shards without extracting them, per
 * shard its samples in tar order (`files`: field -> bytes, `members`: field -> member path),
 * then a `ShardEnd`. Members are grouped into samples by key (`dir/name` up to the first dot of
 * the basename). A missing tar is a warning; a damaged one ends with `ShardEnd.error` (code
 * ERR_TAR) after the samples before the damage, and reading goes on with the next shard. `urls`
 * may be an async iterable (a job runner's pending units). No entry join: see `joinEntries`.
 */
export function readTarShards(urls: Iterable<string> | AsyncIterable<string>, options: ReadTarOptions = {}): Readable {
  const open: Open = {};
  const ctx = readerContext(urls, options, open);
  const highWaterMark = validateInteger(options.highWaterMark ?? 1, 'options.highWaterMark', 1, 1024);
  const list = Array.isArray(urls) ? [...urls] : urls;
  return declareStage(new ShardReader(readAll(list, ctx), open, highWaterMark), {
    name: 'read shards',
    adds: ['__key__', '__url__', 'shard', 'index', 'files', 'members'],
  });
}

/**
 * Streams samples out of webdataset / ACAV100M tar shards without extracting them:
 * `readTarShards` followed by the entry join (`joinEntries`, ./entry-join.ts): each sample is
 * joined to its entry in `shard-NNNNNN.json` beside the tar, or, failing that, gets
 * `{id}_{start}` parsed from its name and a 10 s segment (ACAV clips are 10 s).
 * A missing tar is a warning; a damaged one ends with `ShardEnd.error` (code ERR_TAR)
 * after the samples before the damage, and reading goes on with the next shard.
 *
 * @example
 * for await (const item of readShards(expandShardPatterns('data/shard-{000000..000099}.tar'))) {
 *   if (item.kind === 'sample') console.log(item.__key__, item.entry.segment, item.files.mp4.length);
 *   else if (item.error) console.error(item.error.message);
 * }
 */
export function readShards(urls: string[], options: ReadShardsOptions = {}): Readable {
  if (!Array.isArray(urls)) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', 'readShards expects an array of shard paths (use expandShardPatterns for brace patterns)');
  }
  const open: Open = {};
  const ctx = readerContext(urls, options, open);
  const highWaterMark = validateInteger(options.highWaterMark ?? 1, 'options.highWaterMark', 1, 1024);
  const joined = joinEntriesOf(readAll([...urls], ctx), { ...options, onWarning: ctx.warn });
  return declareStage(new ShardReader<StreamItem>(joined, open, highWaterMark), {
    name: 'read shards',
    adds: ['__key__', '__url__', 'shard', 'index', 'files', 'members', 'entry'],
  });
}
