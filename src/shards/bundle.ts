import type { Dirent } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler, type ClipEntry, type WarningHandler } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { validateBoolean, validateInteger, validateString } from '../util/validate.js';
import { ffprobePath } from '../media/ffmpeg-path.js';
import { runTool, stderrTail } from '../media/process.js';
import { VIDEO_EXTENSIONS, parseClipStem } from './clip-name.js';
import { exists } from '../util/fs.js';
import { writeTarAtomic } from './tar-writer.js';
import { readKeepList } from '../util/keep-list.js';

export interface BundleOptions {
  /** Folder of clips named `{id}_{start}.mp4` (also .webm .mkv .mov .avi). Not searched recursively. */
  inputDir: string;
  /** Where `shard-NNNNNN.tar` and `shard-NNNNNN.json` go; created if missing. */
  outputDir: string;
  /** Clips per shard (the last shard may hold fewer). */
  shardSize: number;
  /** File name prefix; default `shard-`. */
  prefix?: string;
  /** Number of the first shard; default 0. */
  startIndex?: number;
  /** Replace shards that already exist; default false (they are left alone). */
  overwrite?: boolean;
  /** A keep list (`clipstream dedup`'s keep.txt): clips whose stem it does not name are left out, listed in `skipped` (no warning each). */
  keepList?: string;
  onWarning?: WarningHandler;
}

export interface BundledShard {
  tar: string;
  json: string;
  /** Clips in this shard. */
  clips: number;
  /** False when the shard already existed and `overwrite` was not set. */
  written: boolean;
}

export interface BundleSummary {
  shards: BundledShard[];
  skipped: { file: string; reason: string }[];
}

interface Clip {
  file: string;
  path: string;
  id: string;
  start: number;
  size: number;
  duration: number;
}

/**
 * Fixed header fields: the tar must depend only on the clip bytes and names, so that
 * bundling the same folder twice gives byte-identical shards (cacheable, diffable).
 */

/** Two probes at a time: the machine is small and ffprobe is mostly I/O-bound anyway. */
const PROBE_CONCURRENCY = 2;
const PROBE_TIMEOUT_MS = 30_000;

/**
 * Duration of a clip in seconds: its video stream's, else the container's. The container's
 * duration is not stable across ffprobe versions (5.1 counts an AAC track's priming, 6.x does
 * not: 10.022 against 10.000 for the same file); the video stream's is.
 */
export async function probeDuration(file: string): Promise<number> {
  const where = { file };
  const res = await runTool(ffprobePath(), ['-v', 'error', '-show_entries', 'stream=codec_type,duration:format=duration', '-of', 'json', file], {
    timeoutMs: PROBE_TIMEOUT_MS,
    where,
  });
  if (res.code !== 0 || res.signal || res.killedBy) {
    const detail = stderrTail(res.stderr, 1) || (res.killedBy ? 'timed out' : `exit ${res.code ?? res.signal}`);
    throw new ClipstreamError('ERR_PROBE', `ffprobe failed on ${file}: ${detail}`, { where });
  }
  let json: { streams?: { codec_type?: string; duration?: string }[]; format?: { duration?: string } } = {};
  try {
    json = JSON.parse(res.stdout.toString('utf8'));
  } catch {
    // reported below as no duration
  }
  const video = Number(json.streams?.find((st) => st.codec_type === 'video')?.duration);
  const duration = Number.isFinite(video) && video > 0 ? video : Number(json.format?.duration);
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new ClipstreamError('ERR_PROBE', `ffprobe found no duration for ${file} (got '${res.stdout.toString('utf8').trim()}')`, { where });
  }
  return duration;
}

function shardName(prefix: string, n: number): string {
  return `${prefix}${String(n).padStart(6, '0')}`;
}

/** One entry per line: readable, diffable, and still a plain JSON list for Python's json.load. */
export function formatEntries(entries: ClipEntry[]): string {
  return entries.length === 0 ? '[]\n' : `[\n${entries.map((e) => `  ${JSON.stringify(e)}`).join(',\n')}\n]\n`;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return results;
}

/**
 * Packs a folder of clips into ACAV100M-style shards: `shard-NNNNNN.tar` holding the clips
 * at the tar root (webdataset key `{id}_{start}`, field `mp4`) and `shard-NNNNNN.json`
 * listing `{filename, id, segment: [start, start + duration]}` in tar order. Clips are
 * sorted by id then start, and tar headers carry fixed metadata, so the same folder
 * always yields byte-identical shards. Bad names and clips ffprobe cannot read are
 * skipped with a warning and listed in `skipped`.
 *
 * @example
 * const { shards, skipped } = await bundleClips({ inputDir: 'clips', outputDir: 'shards', shardSize: 1000 });
 * // shards[0] = { tar: 'shards/shard-000000.tar', json: 'shards/shard-000000.json', clips: 1000, written: true }
 */
export async function bundleClips(options: BundleOptions): Promise<BundleSummary> {
  const inputDir = validateString(options?.inputDir, 'options.inputDir');
  const outputDir = validateString(options.outputDir, 'options.outputDir');
  const shardSize = validateInteger(options.shardSize, 'options.shardSize', 1);
  const prefix = options.prefix === undefined ? 'shard-' : validateString(options.prefix, 'options.prefix');
  const startIndex = validateInteger(options.startIndex ?? 0, 'options.startIndex', 0);
  const overwrite = validateBoolean(options.overwrite ?? false, 'options.overwrite');
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const keep = options.keepList === undefined ? null : await readKeepList(validateString(options.keepList, 'options.keepList'));

  const skipped: BundleSummary['skipped'] = [];
  const skip = (file: string, reason: string): void => {
    skipped.push({ file, reason });
    onWarning(new ClipstreamError('ERR_INVALID_OPTION', `bundle: skipped ${join(inputDir, file)}: ${reason}`, { where: { file: join(inputDir, file) } }));
  };

  let dirents: Dirent[];
  try {
    dirents = await readdir(inputDir, { withFileTypes: true });
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `Cannot list clip folder ${inputDir}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      where: { file: inputDir },
    });
  }

  const candidates: Omit<Clip, 'size' | 'duration'>[] = [];
  // Sorted first so that warnings and duplicate resolution do not depend on readdir order.
  for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!d.isFile()) continue;
    const file = d.name;
    const dot = file.lastIndexOf('.');
    const ext = dot > 0 ? file.slice(dot + 1).toLowerCase() : '';
    if (!VIDEO_EXTENSIONS.includes(ext)) {
      skip(file, `not a video clip (expected one of .${VIDEO_EXTENSIONS.join(' .')})`);
      continue;
    }
    const stem = file.slice(0, dot);
    if (stem.includes('.')) {
      // webdataset splits a member name at the FIRST dot of its basename: `a.b_3.mp4`
      // would be read back as key `a` with field `b_3.mp4`, and no stage would find the clip.
      skip(file, 'the name has more than one dot; webdataset would split the key at the first dot');
      continue;
    }
    if (keep && !keep.has(stem)) {
      skipped.push({ file, reason: `not in the keep list ${options.keepList}` });
      continue;
    }
    const parsed = parseClipStem(stem);
    if (!parsed) {
      skip(file, 'the name is not {id}_{start} with an integer start second');
      continue;
    }
    candidates.push({ file, path: join(inputDir, file), ...parsed });
  }

  candidates.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.start - b.start || (a.file < b.file ? -1 : 1)));
  const unique: typeof candidates = [];
  const seenKeys = new Map<string, string>();
  for (const c of candidates) {
    const key = c.file.slice(0, c.file.lastIndexOf('.'));
    const first = seenKeys.get(key);
    if (first !== undefined) {
      skip(c.file, `same key '${key}' as ${first}; one tar sample cannot hold two clips`);
      continue;
    }
    seenKeys.set(key, c.file);
    unique.push(c);
  }

  const probed = await mapLimit(unique, PROBE_CONCURRENCY, async (c): Promise<Clip | null> => {
    try {
      const [duration, st] = await Promise.all([probeDuration(c.path), stat(c.path)]);
      return { ...c, duration, size: st.size };
    } catch (err) {
      skip(c.file, err instanceof Error ? err.message : String(err));
      return null;
    }
  });
  const clips = probed.filter((c): c is Clip => c !== null);

  await mkdir(outputDir, { recursive: true });
  const shards: BundledShard[] = [];
  for (let i = 0; i * shardSize < clips.length; i++) {
    const group = clips.slice(i * shardSize, (i + 1) * shardSize);
    const name = shardName(prefix, startIndex + i);
    const tarPath = join(outputDir, `${name}.tar`);
    const jsonPath = join(outputDir, `${name}.json`);
    if (!overwrite && ((await exists(tarPath)) || (await exists(jsonPath)))) {
      onWarning(new ClipstreamError('ERR_IO', `bundle: ${tarPath} already exists; left alone (pass overwrite to replace it)`, { where: { file: tarPath } }));
      shards.push({ tar: tarPath, json: jsonPath, clips: group.length, written: false });
      continue;
    }
    const entries: ClipEntry[] = group.map((c) => ({
      filename: c.file,
      id: c.id,
      // Millisecond precision: ffprobe prints microseconds, but float noise would make the json unstable.
      segment: [c.start, Math.round((c.start + c.duration) * 1000) / 1000],
    }));
    // The json goes first so that whoever sees the tar can already join it.
    await writeFileAtomic(jsonPath, formatEntries(entries));
    await writeTarAtomic(
      tarPath,
      group.map((c) => ({ name: c.file, path: c.path, size: c.size })),
    );
    shards.push({ tar: tarPath, json: jsonPath, clips: group.length, written: true });
  }
  return { shards, skipped };
}
