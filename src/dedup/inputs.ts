/**
 * What `dedup` reads: the clips of a clips output (its clips.csv, with a `fingerprint` column or
 * the clip files), a folder of clips, or tar shards; and their fingerprints, computed where none
 * is stored and cached in `fingerprints.csv` of the output folder (a rerun, or a killed run's
 * rerun, decodes only what is not there yet).
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { fingerprintClipFrames } from '../features/fingerprint-clip.js';
import { findVideoField, VIDEO_EXTENSIONS } from '../shards/clip-name.js';
import { expandShardUrls } from '../shards/shard-source.js';
import { readTarShards } from '../shards/tar-reader.js';
import type { TarItem, WarningHandler } from '../types.js';
import { tempPathFor } from '../util/atomic.js';
import { type CsvRow, parseCsvLines, writeCsvAtomic } from '../util/csv.js';
import { exists } from '../util/fs.js';

/** One clip as dedup sees it. */
export interface DedupClip {
  clipId: string;
  /** The clip file's name without extension (a tar sample's key). */
  stem: string;
  /** Where its bytes are: a file path, or `shard.tar#member`. */
  source: string;
  /** Seconds (clips.csv's end_s - start_s), or NaN where unknown. */
  durationS: number;
  /** Decoded frames, where dedup decoded the clip (for `longest` without clips.csv). */
  frames: number;
  /** Its clips.csv row, for `score:<column>`. */
  row?: CsvRow;
  fingerprint: string;
  /** Why it has no fingerprint (it then takes no part in the grouping and is kept). */
  error?: string;
}

export type InputKind = 'clips output' | 'folder' | 'tar shards';

/** The kind of input: a folder with clips.csv, another folder, or tar shard paths/patterns. */
export async function inputKind(input: readonly string[]): Promise<InputKind> {
  if (input.length === 1) {
    const st = await stat(input[0]!).catch(() => null);
    if (st?.isDirectory()) return (await exists(join(input[0]!, 'clips.csv'))) ? 'clips output' : 'folder';
  }
  return 'tar shards';
}

const CACHE = 'fingerprints.csv';
const CACHE_COLUMNS = ['clip_id', 'source', 'size_bytes', 'frames', 'fingerprint'];
/** Fingerprints computed between two saves of the cache. */
const SAVE_EVERY = 100;

/** The fingerprint cache of an output folder: source -> its size when hashed, frames, fingerprint. */
class FingerprintCache {
  private rows = new Map<string, { clip_id: string; source: string; size_bytes: number; frames: number; fingerprint: string }>();
  private unsaved = 0;
  constructor(
    private readonly path: string,
    private readonly frameCount: number,
  ) {}

  async load(): Promise<void> {
    if (!(await exists(this.path))) return;
    for (const { row } of parseCsvLines(await readFile(this.path, 'utf8'), { file: this.path })) {
      if (row.fingerprint?.length === 16 * this.frameCount) {
        this.rows.set(row.source!, {
          clip_id: row.clip_id!,
          source: row.source!,
          size_bytes: Number(row.size_bytes),
          frames: Number(row.frames),
          fingerprint: row.fingerprint,
        });
      }
    }
  }

  get(source: string, size: number): { fingerprint: string; frames: number } | undefined {
    const r = this.rows.get(source);
    return r && r.size_bytes === size ? r : undefined;
  }

  async put(clipId: string, source: string, size: number, got: { fingerprint: string; frames: number }): Promise<void> {
    this.rows.set(source, { clip_id: clipId, source, size_bytes: size, ...got });
    if (++this.unsaved >= SAVE_EVERY) await this.save();
  }

  async save(): Promise<void> {
    if (this.unsaved === 0) return;
    this.unsaved = 0;
    const rows = [...this.rows.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    await writeCsvAtomic(this.path, CACHE_COLUMNS, rows);
  }
}

export interface ReadClipsOptions {
  input: readonly string[];
  outputDir: string;
  frames: number;
  parallel: number;
  onWarning: WarningHandler;
  signal?: AbortSignal;
  /** Called after each clip whose fingerprint was computed (not read). */
  onFingerprint?: (done: number) => void;
}

export interface ReadClipsResult {
  kind: InputKind;
  clips: DedupClip[];
  /** Fingerprints computed in this run (the rest came from clips.csv or the cache). */
  computed: number;
  /** Frames per fingerprint. */
  frames: number;
  /** The clips.csv read, if any. */
  table?: string;
}

function stemOf(file: string): string {
  const dot = file.lastIndexOf('.');
  return dot > 0 ? file.slice(0, dot) : file;
}

/**
 * Clip ids of a folder's files (sorted names), one each: the stem; when another file took it
 * (`same.mkv` beside `same.mp4`), the file name; then `~2`, `~3`. The rule of the jobs' keys
 * (src/media/video-folder.ts, assignKeys), without their shortening: no file is named by the id.
 */
function uniqueIds(names: readonly string[]): string[] {
  const taken = new Set<string>();
  return names.map((name) => {
    let id = stemOf(name);
    if (taken.has(id)) id = name;
    for (let n = 2; taken.has(id); n++) id = `${name}~${n}`;
    taken.add(id);
    return id;
  });
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Every clip of the input, in input order, each with its fingerprint or the reason it has none. */
export async function readDedupClips(o: ReadClipsOptions): Promise<ReadClipsResult> {
  const kind = await inputKind(o.input);
  let cache = new FingerprintCache(join(o.outputDir, CACHE), o.frames);
  let frames = o.frames;
  let computed = 0;
  const compute = async (clip: DedupClip, path: string, size: number): Promise<void> => {
    const hit = cache.get(clip.source, size);
    if (hit) {
      clip.fingerprint = hit.fingerprint;
      clip.frames = hit.frames;
      return;
    }
    try {
      const got = await fingerprintClipFrames(path, { frames, signal: o.signal });
      clip.fingerprint = got.fingerprint;
      clip.frames = got.frames;
      await cache.put(clip.clipId, clip.source, size, got);
      computed++;
      o.onFingerprint?.(computed);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      clip.error = (err as Error).message;
      o.onWarning(
        new ClipstreamError('ERR_DECODE', `dedup: no fingerprint for ${clip.source}: ${clip.error}; the clip is kept`, {
          where: { file: path, key: clip.clipId },
        }),
      );
    }
  };
  const clips: DedupClip[] = [];
  let table: string | undefined;
  try {
    if (kind === 'clips output') {
      const dir = o.input[0]!;
      table = join(dir, 'clips.csv');
      const lines = parseCsvLines(await readFile(table, 'utf8'), { file: table });
      for (const { line, row } of lines) {
        if (!row.clip_id) throw new ClipstreamError('ERR_FORMAT', `${table}, line ${line}: no clip_id`, { where: { file: table } });
        const filename = row.filename || `${row.clip_id}.mp4`;
        clips.push({
          clipId: row.clip_id,
          stem: stemOf(filename),
          source: join(dir, 'clips', filename),
          durationS: Number(row.end_s) - Number(row.start_s),
          frames: Number(row.num_frames) || 0,
          row,
          fingerprint: row.fingerprint ?? '',
        });
      }
      // Fingerprints stored by the clips job set the length the others are computed at.
      const stored = clips.find((c) => c.fingerprint !== '')?.fingerprint;
      if (stored && stored.length % 16 === 0) frames = stored.length / 16;
      for (const c of clips) {
        if (c.fingerprint !== '' && c.fingerprint.length !== 16 * frames) {
          c.error = `its fingerprint has ${c.fingerprint.length} hex digits, not ${16 * frames} as the others`;
          c.fingerprint = '';
          o.onWarning(
            new ClipstreamError('ERR_FORMAT', `dedup: clip ${c.clipId} of ${table}: ${c.error}; the clip is kept`, { where: { file: table, key: c.clipId } }),
          );
        }
      }
      cache = new FingerprintCache(join(o.outputDir, CACHE), frames);
      await cache.load();
      const missing = clips.filter((c) => c.fingerprint === '' && !c.error);
      await mapLimit(missing, o.parallel, async (c) => {
        const st = await stat(c.source).catch(() => null);
        if (!st) {
          c.error = 'the clip file is missing';
          o.onWarning(
            new ClipstreamError('ERR_IO', `dedup: ${c.source} (clip ${c.clipId} of ${table}) is missing; the clip is kept`, { where: { file: c.source } }),
          );
          return;
        }
        await compute(c, c.source, st.size);
      });
    } else if (kind === 'folder') {
      await cache.load();
      const dir = o.input[0]!;
      const names = (await readdir(dir, { withFileTypes: true }))
        .filter((d) => d.isFile() && VIDEO_EXTENSIONS.includes(d.name.slice(d.name.lastIndexOf('.') + 1).toLowerCase()) && d.name.lastIndexOf('.') > 0)
        .map((d) => d.name)
        .sort();
      const ids = uniqueIds(names);
      names.forEach((name, i) => {
        clips.push({ clipId: ids[i]!, stem: stemOf(name), source: join(dir, name), durationS: Number.NaN, frames: 0, fingerprint: '' });
      });
      await mapLimit(clips, o.parallel, async (c) => compute(c, c.source, (await stat(c.source)).size));
    } else {
      const urls = expandShardUrls([...o.input]);
      if (urls.length === 0)
        throw new ClipstreamError('ERR_INVALID_OPTION', `options.input names no shard: ${JSON.stringify(o.input)}`, { where: { option: 'options.input' } });
      await cache.load();
      const tmpDir = join(o.outputDir, '.dedup-tmp');
      await mkdir(tmpDir, { recursive: true });
      try {
        for await (const item of readTarShards(urls, { onWarning: o.onWarning }) as AsyncIterable<TarItem>) {
          if (item.kind !== 'sample') continue;
          const field = findVideoField(Object.keys(item.files));
          const clip: DedupClip = {
            clipId: item.__key__,
            stem: item.__key__,
            source: `${item.__url__}#${item.__key__}`,
            durationS: Number.NaN,
            frames: 0,
            fingerprint: '',
          };
          clips.push(clip);
          if (item.failure || !field) {
            clip.error = item.failure?.error.message ?? 'no video member';
            o.onWarning(
              new ClipstreamError('ERR_TAR_MEMBER', `dedup: ${clip.source}: ${clip.error}; the clip is kept`, {
                where: { shard: item.__url__, key: item.__key__ },
              }),
            );
            continue;
          }
          const bytes = item.files[field]!;
          clip.source = `${item.__url__}#${item.members[field] ?? `${item.__key__}.${field}`}`;
          if (cache.get(clip.source, bytes.length)) {
            await compute(clip, '', bytes.length);
            continue;
          }
          const tmp = `${tempPathFor(join(tmpDir, 'clip'))}.${field}`;
          await writeFile(tmp, bytes);
          try {
            await compute(clip, tmp, bytes.length);
          } finally {
            await rm(tmp, { force: true });
          }
        }
      } finally {
        await rm(tmpDir, { recursive: true, force: true });
      }
    }
  } finally {
    await cache.save();
  }
  return { kind, clips, computed, frames, ...(table ? { table } : {}) };
}
