import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler, type ClipEntry, type Sample, type ShardEnd, type ShardInfo, type StreamItem, type WarningHandler } from '../types.js';
import { validateInteger } from '../util/validate.js';
import { ACAV_CLIP_SECONDS, findVideoField, parseClipStem } from './clip-name.js';
import { decompressed, type Decompressed } from './decompress.js';
import { openShard, shardFileName } from './shard-source.js';
import { parseTar, type TarHeader, type TarParser } from './tar-parse.js';

export interface ReadShardsOptions {
  onWarning?: WarningHandler;
  /** Return true to skip a whole shard (e.g. its output exists). A skipped shard emits nothing. */
  skipShard?: (shard: ShardInfo) => boolean | Promise<boolean>;
  /**
   * Positions in the tar (`Sample.index`) already done (resume). Their samples are not emitted
   * but still count in `Sample.index` and `ShardEnd.samples`, so indices stay those of the tar.
   * By position, not by key: a key may appear twice in a tar, as two samples.
   */
  skipIndices?: (shard: ShardInfo) => Set<number> | Promise<Set<number>>;
  /** Keys already done; like skipIndices, but every sample of a repeated key is skipped. Prefer skipIndices. */
  skipKeys?: (shard: ShardInfo) => Set<string> | Promise<Set<string>>;
  /** Members bigger than this are skipped with a warning instead of buffered. Default 2 GiB. */
  maxMemberBytes?: number;
  /** Samples read ahead of the consumer. Default 1: a sample can be hundreds of MB. */
  highWaterMark?: number;
  /** Opens a shard's bytes; default `openShard` (a file, `http(s)://` or `pipe:`). For tests and other storage. */
  openStream?: (url: string) => Readable;
}

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

function isClipEntry(v: unknown): v is ClipEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.filename === 'string' &&
    typeof e.id === 'string' &&
    Array.isArray(e.segment) &&
    e.segment.length === 2 &&
    e.segment.every((x) => typeof x === 'number' && Number.isFinite(x))
  );
}

/** Reads `shard-NNNNNN.json` beside the tar. Absent: null (plain webdataset tars have none). */
async function loadEntries(jsonPath: string, shard: ShardInfo, warn: WarningHandler): Promise<Map<string, ClipEntry> | null> {
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    warn(
      new ClipstreamError(
        'ERR_FORMAT',
        `Cannot read ${jsonPath} for shard ${shard.url}: ${(err as Error).message}; clip ids and segments will be parsed from the member names`,
        { cause: err, where: { shard: shard.url, file: jsonPath } },
      ),
    );
    return null;
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (err) {
    warn(
      new ClipstreamError(
        'ERR_FORMAT',
        `${jsonPath} is not valid JSON (${(err as Error).message}); clip ids and segments will be parsed from the member names of ${shard.url}`,
        { cause: err, where: { shard: shard.url, file: jsonPath } },
      ),
    );
    return null;
  }
  if (!Array.isArray(list)) {
    warn(
      new ClipstreamError(
        'ERR_FORMAT',
        `${jsonPath} should be a list of {filename, id, segment} but is a ${typeof list}; clip ids and segments will be parsed from the member names`,
        { where: { shard: shard.url, file: jsonPath } },
      ),
    );
    return null;
  }
  const map = new Map<string, ClipEntry>();
  let bad = 0;
  for (const item of list) {
    if (!isClipEntry(item)) {
      bad++;
      continue;
    }
    if (!map.has(item.filename)) {
      map.set(item.filename, { filename: item.filename, id: item.id, segment: [item.segment[0], item.segment[1]] });
    }
  }
  if (bad > 0) {
    warn(
      new ClipstreamError(
        'ERR_FORMAT',
        `${jsonPath}: ignored ${bad} of ${list.length} entries that are not {filename: string, id: string, segment: [number, number]}`,
        { where: { shard: shard.url, file: jsonPath } },
      ),
    );
  }
  return map;
}

interface Pending {
  key: string;
  files: Record<string, Buffer>;
  /**
   * Field -> member basename as written in the tar (case kept), for every member of the key,
   * refused ones included: the json join needs the video's real name (`clip_3.MOV`).
   */
  names: Map<string, string>;
  /** Field -> full member path (folders kept, `./` dropped): the json join tries it first. */
  paths: Map<string, string>;
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
  skipShard?: ReadShardsOptions['skipShard'];
  skipKeys?: ReadShardsOptions['skipKeys'];
  skipIndices?: ReadShardsOptions['skipIndices'];
  maxMemberBytes: number;
  openStream: (url: string) => Readable;
  open: Open;
}

function entryFor(pending: Pending, entries: Map<string, ClipEntry> | null, shard: ShardInfo, jsonPath: string, warn: WarningHandler): ClipEntry {
  const keyBase = pending.key.slice(pending.key.lastIndexOf('/') + 1);
  const videoField = findVideoField(pending.names.keys());
  const memberBase = videoField ? pending.names.get(videoField) : undefined;
  const memberPath = videoField ? pending.paths.get(videoField) : undefined;
  if (entries) {
    // The full path first: `cam1/plain_0.mp4` and `cam2/plain_0.mp4` are two clips.
    const found = (memberPath && entries.get(memberPath)) || entries.get(pending.key) || (memberBase && entries.get(memberBase)) || entries.get(keyBase);
    if (found) return { filename: found.filename, id: found.id, segment: [found.segment[0], found.segment[1]] };
  }
  const filename = memberBase ?? keyBase;
  const parsed = parseClipStem(keyBase);
  if (parsed) {
    if (entries) {
      warn(
        new ClipstreamError(
          'ERR_FORMAT',
          `Sample '${pending.key}' of shard ${shard.url} is not listed in ${jsonPath}; using id '${parsed.id}' and segment [${parsed.start}, ${parsed.start + ACAV_CLIP_SECONDS}] parsed from its name`,
          { where: { shard: shard.url, key: pending.key } },
        ),
      );
    }
    return { filename, id: parsed.id, segment: [parsed.start, parsed.start + ACAV_CLIP_SECONDS] };
  }
  const why = entries ? `has no entry in ${jsonPath}` : `has no ${jsonPath} to join`;
  warn(
    new ClipstreamError(
      'ERR_FORMAT',
      `Sample '${pending.key}' of shard ${shard.url} ${why} and its name is not {id}_{start}; using id '${keyBase}' and segment [0, ${ACAV_CLIP_SECONDS}]`,
      { where: { shard: shard.url, key: pending.key } },
    ),
  );
  return { filename, id: keyBase, segment: [0, ACAV_CLIP_SECONDS] };
}

/** How many missing clips a warning lists by name (the log has them all). */
const LISTED = 10;

async function* readShard(shard: ShardInfo, jsonPath: string, ctx: Ctx): AsyncGenerator<StreamItem> {
  const { warn } = ctx;
  const url = shard.url;
  const entries = await loadEntries(jsonPath, shard, warn);
  const skipIndices = ctx.skipIndices ? await ctx.skipIndices(shard) : undefined;
  const skipKeys = ctx.skipKeys ? await ctx.skipKeys(shard) : undefined;

  let samples = 0; // complete samples, emitted or skipped
  let pending: Pending | null = null;
  let members = 0;
  /** Json filenames that a sample of the tar matched. */
  const seen = new Set<string>();
  const finish = (p: Pending): Sample | null => {
    const index = samples++;
    const resumed = skipIndices?.has(index) || skipKeys?.has(p.key);
    const entry = entryFor(p, entries, shard, jsonPath, resumed ? () => {} : warn);
    seen.add(entry.filename);
    if (resumed) return null;
    const sample: Sample = { kind: 'sample', __key__: p.key, __url__: url, shard, index, files: p.files, entry };
    if (p.failure) sample.failure = { stage: 'read', error: p.failure, status: 'failed' };
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
        if (done) yield done;
      }
      pending ??= { key: split.key, files: {}, names: new Map(), paths: new Map() };
      const size = header.size;
      if (split.field in pending.files) {
        memberWarning(header.name, `sample '${split.key}' already has a '${split.field}' member`);
        continue;
      }
      pending.names.set(split.field, header.name.slice(header.name.lastIndexOf('/') + 1));
      pending.paths.set(split.field, header.name.replace(/^(\.\/)+/, ''));
      if (size > ctx.maxMemberBytes) {
        pending.failure ??= memberWarning(header.name, `it is ${size} bytes, more than maxMemberBytes (${ctx.maxMemberBytes})`);
        continue;
      }
      pending.files[split.field] = await parser.body();
    }
    if (pending) {
      const done = finish(pending);
      pending = null;
      if (done) yield done;
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
  // What was read against what the json lists: a tar cut short must not pass for complete.
  const missing = entries ? [...entries.keys()].filter((f) => !seen.has(f)) : [];
  let reason: string | null = null;
  if (caught === null && parser?.ending === 'no-end-blocks') {
    reason =
      parser.position === 0
        ? 'the tar is empty (0 bytes)'
        : `the tar has no end-of-archive blocks after ${samples} sample${samples === 1 ? '' : 's'}: it may be truncated`;
  }
  if (missing.length > 0) {
    const names = missing.slice(0, LISTED).join(', ') + (missing.length > LISTED ? `, … (${missing.length - LISTED} more, see the log)` : '');
    reason = `${missing.length} of ${entries!.size} clips listed in ${jsonPath} are not in the tar${reason ? `; ${reason}` : ''}`;
    warn(new ClipstreamError('ERR_TAR', `Shard ${url} is incomplete: ${reason} (${names})`, { where: { shard: url, file: jsonPath } }));
  } else if (reason) {
    warn(new ClipstreamError('ERR_TAR', `Shard ${url}: ${reason}`, { where: { shard: url } }));
  }
  const end: ShardEnd = { kind: 'shard-end', shard, samples };
  if (reason) end.incomplete = { reason, missing };
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

async function* readAll(urls: string[], ctx: Ctx): AsyncGenerator<StreamItem> {
  for (let index = 0; index < urls.length; index++) {
    const url = urls[index];
    const name = shardBaseName(url);
    const shard: ShardInfo = { url, name, index };
    if (ctx.skipShard && (await ctx.skipShard(shard))) continue;
    yield* readShard(shard, join(dirname(url), `${name}.json`), ctx);
  }
}

class ShardReader extends Readable {
  readonly #gen: AsyncGenerator<StreamItem>;
  readonly #open: Open;
  #pulling = false;

  constructor(gen: AsyncGenerator<StreamItem>, open: Open, highWaterMark: number) {
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

/**
 * Streams samples out of webdataset / ACAV100M tar shards without extracting them:
 * per shard, its samples in tar order, then a `ShardEnd`. Members are grouped into
 * samples by key (`dir/name` up to the first dot of the basename); each sample is
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
  if (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string' || u.length === 0)) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', 'readShards expects an array of shard paths (use expandShardPatterns for brace patterns)');
  }
  const maxMemberBytes = validateInteger(options.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES, 'options.maxMemberBytes', 0);
  const highWaterMark = validateInteger(options.highWaterMark ?? 1, 'options.highWaterMark', 1, 1024);
  const open: Open = {};
  const ctx: Ctx = {
    warn: guardWarnings(options.onWarning ?? defaultWarningHandler),
    skipShard: options.skipShard,
    skipKeys: options.skipKeys,
    skipIndices: options.skipIndices,
    maxMemberBytes,
    openStream: options.openStream ?? ((url) => openShard(url)),
    open,
  };
  return new ShardReader(readAll([...urls], ctx), open, highWaterMark);
}
