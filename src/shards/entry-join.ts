/**
 * The ACAV100M entry join, a stage of its own: every tar sample gets `entry: {filename, id,
 * segment}` from its shard's `shard-NNNNNN.json` sidecar, or, failing that, `{id}_{start}` parsed
 * from its name and a 10 s segment (ACAV clips are 10 s). At each shard's end the clips the json
 * lists but the tar lacks are put on `ShardEnd.incomplete` (a tar cut short must not pass for
 * complete).
 *
 * Where the sidecar is read: beside a local shard (`data/shard-000001.json`), beside an http(s)
 * shard (the same URL with `.json`; a 404 falls back to the member names with one warning
 * naming the URL), and, when there is none beside, as the tar's first member
 * (`shard-000001.json`, then the clips). A `pipe:` shard has no general "beside": its sidecar is
 * read only from inside the tar, else ids and segments come from the member names.
 *
 * @example
 * await pipeline(readTarShards(urls), joinEntries(), decodeClips(), writer);
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { declareStage } from '../stage/contract.js';
import {
  defaultWarningHandler,
  type ClipEntry,
  type Sample,
  type ShardEnd,
  type ShardInfo,
  type StreamItem,
  type TarItem,
  type TarSample,
  type WarningHandler,
} from '../types.js';
import { generatorStage } from '../stage/generator.js';
import { ACAV_CLIP_SECONDS, AUDIO_EXTENSIONS, findVideoField, parseClipStem, VIDEO_EXTENSIONS } from './clip-name.js';

export interface JoinEntriesOptions {
  onWarning?: WarningHandler;
  /**
   * Positions in the tar (`Sample.index`) already done (resume): joined silently (so the json
   * check still counts them) and not passed on. By position: a key may appear twice in a tar.
   */
  skipIndices?: (shard: ShardInfo) => Set<number> | Promise<Set<number>>;
  /** Keys already done; like skipIndices, but every sample of a repeated key is skipped. Prefer skipIndices. */
  skipKeys?: (shard: ShardInfo) => Set<string> | Promise<Set<string>>;
  /** Reads a shard's sidecar text, or null when it has none; default `readSidecar`. For tests and other storage. */
  readSidecar?: (shard: ShardInfo, warn: WarningHandler, signal?: AbortSignal) => Promise<Sidecar | null>;
}

export interface Sidecar {
  /** The file or URL it came from, as messages name it. */
  from: string;
  text: string;
}

/** Where a shard's sidecar is looked for: beside a local or http(s) shard; null for `pipe:`. */
export function sidecarLocation(shard: ShardInfo): string | null {
  const url = shard.url;
  if (url.startsWith('pipe:')) return null;
  if (/^https?:\/\//i.test(url)) {
    const u = new URL(url);
    u.pathname = u.pathname.replace(/[^/]*$/, encodeURIComponent(`${shard.name}.json`));
    return u.toString();
  }
  return join(dirname(url), `${shard.name}.json`);
}

const HTTP_ATTEMPTS = 3;

/**
 * Reads the sidecar beside a local or http(s) shard. Absent locally: null, quietly (plain
 * webdataset tars have none). Absent over http (404/410): null with one warning naming the
 * URL. Unreadable: null with a warning (ids and segments then come from the member names).
 */
export async function readSidecar(shard: ShardInfo, warn: WarningHandler, signal?: AbortSignal): Promise<Sidecar | null> {
  const from = sidecarLocation(shard);
  if (from === null) return null;
  const cannot = (why: string, cause?: unknown) =>
    warn(
      new ClipstreamError('ERR_FORMAT', `Cannot read ${from} for shard ${shard.url}: ${why}; clip ids and segments will be parsed from the member names`, {
        cause,
        where: { shard: shard.url, file: from },
      }),
    );
  if (!/^https?:\/\//i.test(from)) {
    try {
      return { from, text: await readFile(from, 'utf8') };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') cannot((err as Error).message, err);
      return null;
    }
  }
  let last = '';
  for (let attempt = 0; attempt < HTTP_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    try {
      const res = await fetch(from, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000) });
      if (res.status === 404 || res.status === 410) {
        await res.body?.cancel();
        warn(
          new ClipstreamError(
            'ERR_FORMAT',
            `Shard ${shard.url} has no sidecar at ${from} (HTTP ${res.status}); clip ids and segments will be parsed from the member names`,
            {
              where: { shard: shard.url, file: from },
            },
          ),
        );
        return null;
      }
      if (res.ok) return { from, text: await res.text() };
      await res.body?.cancel();
      last = `HTTP ${res.status}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
    } catch (err) {
      if (signal?.aborted) throw err;
      last = (err as Error).message;
    }
  }
  cannot(`${last} after ${HTTP_ATTEMPTS} attempts`);
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

/** Parses a sidecar into filename -> entry; null (with a warning) when it is not a list of entries. */
export function parseSidecar(sidecar: Sidecar, shard: ShardInfo, warn: WarningHandler): Map<string, ClipEntry> | null {
  const jsonPath = sidecar.from;
  let list: unknown;
  try {
    list = JSON.parse(sidecar.text);
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
    if (!map.has(item.filename)) map.set(item.filename, { filename: item.filename, id: item.id, segment: [item.segment[0], item.segment[1]] });
  }
  if (bad > 0) {
    warn(
      new ClipstreamError(
        'ERR_FORMAT',
        `${jsonPath}: ignored ${bad} of ${list.length} entries that are not {filename: string, id: string, segment: [number, number]}`,
        {
          where: { shard: shard.url, file: jsonPath },
        },
      ),
    );
  }
  return map;
}

const MEDIA_EXTENSIONS: readonly string[] = [...VIDEO_EXTENSIONS, ...AUDIO_EXTENSIONS];

/** A sample's entry: from the json (by member path, key, member name, key name), else parsed from its name. */
export function entryFor(sample: TarSample, entries: Map<string, ClipEntry> | null, jsonPath: string, warn: WarningHandler): ClipEntry {
  const shard = sample.shard;
  const key = sample.__key__;
  const keyBase = key.slice(key.lastIndexOf('/') + 1);
  // Every member the decode stage may take as the clip (an audio-only run decodes audio files).
  const videoField = findVideoField(Object.keys(sample.members), MEDIA_EXTENSIONS);
  const memberPath = videoField ? sample.members[videoField] : undefined;
  const memberBase = memberPath !== undefined ? basename(memberPath) : undefined;
  if (entries) {
    // The full path first: `cam1/plain_0.mp4` and `cam2/plain_0.mp4` are two clips.
    const found = (memberPath && entries.get(memberPath)) || entries.get(key) || (memberBase && entries.get(memberBase)) || entries.get(keyBase);
    if (found) return { filename: found.filename, id: found.id, segment: [found.segment[0], found.segment[1]] };
  }
  const filename = memberBase ?? keyBase;
  const parsed = parseClipStem(keyBase);
  if (parsed) {
    if (entries) {
      warn(
        new ClipstreamError(
          'ERR_FORMAT',
          `Sample '${key}' of shard ${shard.url} is not listed in ${jsonPath}; using id '${parsed.id}' and segment [${parsed.start}, ${parsed.start + ACAV_CLIP_SECONDS}] parsed from its name`,
          { where: { shard: shard.url, key } },
        ),
      );
    }
    return { filename, id: parsed.id, segment: [parsed.start, parsed.start + ACAV_CLIP_SECONDS] };
  }
  const why = entries ? `has no entry in ${jsonPath}` : `has no ${jsonPath} to join`;
  warn(
    new ClipstreamError(
      'ERR_FORMAT',
      `Sample '${key}' of shard ${shard.url} ${why} and its name is not {id}_{start}; using id '${keyBase}' and segment [0, ${ACAV_CLIP_SECONDS}]`,
      { where: { shard: shard.url, key } },
    ),
  );
  return { filename, id: keyBase, segment: [0, ACAV_CLIP_SECONDS] };
}

/** How many missing clips a warning lists by name (the log has them all). */
const LISTED = 10;

interface ShardState {
  shard: ShardInfo;
  entries: Map<string, ClipEntry> | null;
  jsonPath: string;
  skipIndices?: Set<number>;
  skipKeys?: Set<string>;
  /** Json filenames that a sample of the tar matched. */
  seen: Set<string>;
}

/** The join over a stream of tar items (see the file comment); for `readShards` and the `joinEntries` stage. */
export async function* joinEntriesOf(source: AsyncIterable<TarItem>, options: JoinEntriesOptions = {}, signal?: AbortSignal): AsyncGenerator<StreamItem> {
  const warn = options.onWarning ?? defaultWarningHandler;
  const read = options.readSidecar ?? readSidecar;
  let state: ShardState | null = null;
  const open = async (shard: ShardInfo): Promise<ShardState> => {
    if (state?.shard === shard) return state;
    const sidecar = await read(shard, warn, signal);
    const entries = sidecar ? parseSidecar(sidecar, shard, warn) : null;
    state = {
      shard,
      entries,
      jsonPath: sidecar?.from ?? sidecarLocation(shard) ?? `${shard.name}.json`,
      skipIndices: options.skipIndices ? await options.skipIndices(shard) : undefined,
      skipKeys: options.skipKeys ? await options.skipKeys(shard) : undefined,
      seen: new Set(),
    };
    return state;
  };
  for await (const item of source) {
    const s = await open(item.shard);
    if (item.kind === 'sample') {
      if (s.entries === null && isSidecarMember(item)) {
        // No sidecar beside the shard (a `pipe:` one, say), but the tar's first member is one.
        s.jsonPath = `${item.shard.url}:${item.members.json}`;
        s.entries = parseSidecar({ from: s.jsonPath, text: item.files.json!.toString('utf8') }, item.shard, warn);
        continue;
      }
      const resumed = s.skipIndices?.has(item.index) || s.skipKeys?.has(item.__key__);
      const entry = entryFor(item, s.entries, s.jsonPath, resumed ? () => {} : warn);
      s.seen.add(entry.filename);
      if (resumed) continue;
      const sample: Sample = { ...item, entry };
      yield sample;
      continue;
    }
    yield endOf(item, s, warn);
    state = null;
  }
}

/** The tar's first sample is `shard-NNNNNN.json` alone: the sidecar carried inside the tar. */
function isSidecarMember(item: TarSample): boolean {
  const fields = Object.keys(item.files);
  return item.index === 0 && item.__key__ === item.shard.name && fields.length === 1 && fields[0] === 'json';
}

/** The shard's end, with what the json lists but the tar lacks; warns once about an incomplete shard. */
function endOf(end: ShardEnd, s: ShardState, warn: WarningHandler): ShardEnd {
  const url = end.shard.url;
  const missing = s.entries ? [...s.entries.keys()].filter((f) => !s.seen.has(f)) : [];
  let reason = end.incomplete?.reason ?? null;
  if (missing.length > 0) {
    const names = missing.slice(0, LISTED).join(', ') + (missing.length > LISTED ? `, … (${missing.length - LISTED} more, see the log)` : '');
    reason = `${missing.length} of ${s.entries!.size} clips listed in ${s.jsonPath} are not in the tar${reason ? `; ${reason}` : ''}`;
    warn(new ClipstreamError('ERR_TAR', `Shard ${url} is incomplete: ${reason} (${names})`, { where: { shard: url, file: s.jsonPath } }));
  } else if (reason) {
    warn(new ClipstreamError('ERR_TAR', `Shard ${url}: ${reason}`, { where: { shard: url } }));
  }
  const out: ShardEnd = { kind: 'shard-end', shard: end.shard, samples: end.samples };
  if (reason) out.incomplete = { reason, missing };
  if (end.error) out.error = end.error;
  return out;
}

/**
 * Stage: the entry join (see the file comment). Tar items in (`readTarShards`), extract's
 * samples out. One sample in flight: a sample can be hundreds of MB.
 */
export function joinEntries(options: JoinEntriesOptions = {}) {
  return declareStage(
    generatorStage<TarItem, StreamItem>((source, signal) => joinEntriesOf(source, options, signal), { writableHighWaterMark: 1, readableHighWaterMark: 1 }),
    { name: 'join entries', needs: ['members'], adds: ['entry'] },
  );
}
