import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { VIDEO_EXTENSIONS } from '../shards/clip-name.js';
import { parseCsvLines } from '../util/csv.js';
import { fitName } from '../util/names.js';

/** One source video: where to get it and what to call it. */
export interface SourceRow {
  videoId: string;
  /** `path`: read in place; `url`: HTTP(S) download; `youtube`: through yt-dlp. */
  kind: 'path' | 'url' | 'youtube';
  /** Absolute path, URL, or YouTube id/URL. */
  location: string;
}

const YOUTUBE_HOST = /(^|\.)(youtube\.com|youtu\.be)$/i;

const nameOf = (p: string) => basename(p.split(/[?#]/)[0]!);

function stemOf(p: string): string {
  const base = nameOf(p);
  return base.slice(0, base.length - extname(base).length);
}

/**
 * A source whose id comes from its file name, and the longer names it can fall back on
 * when that id is taken: the file name with its extension, then that with a hash of the
 * path as listed (relative to the list, or the URL).
 */
interface Derived {
  names: [string, string, string];
}

function derived(listed: string): Derived {
  const hash = createHash('sha256').update(listed).digest('hex').slice(0, 8);
  return { names: [stemOf(listed), nameOf(listed), `${nameOf(listed)}~${hash}`] };
}

type ListedSource = SourceRow & { derived?: Derived };

function rowToSource(row: Record<string, unknown>, baseDir: string, where: string): ListedSource {
  const str = (k: string) => (row[k] === undefined || row[k] === null ? '' : String(row[k]).trim());
  const id = str('video_id');
  const path = str('path');
  const url = str('url');
  if (path) {
    const location = resolve(baseDir, path);
    if (id) return { videoId: id, kind: 'path', location };
    const d = derived(relative(baseDir, location).split(sep).join('/'));
    return { videoId: d.names[0], kind: 'path', location, derived: d };
  }
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ClipstreamError('ERR_FORMAT', `${where}: '${url}' in column url is not a URL`);
    }
    if (YOUTUBE_HOST.test(parsed.hostname)) {
      const vid = parsed.searchParams.get('v') ?? parsed.pathname.split('/').filter(Boolean).pop() ?? '';
      return { videoId: id || vid, kind: 'youtube', location: url };
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ClipstreamError('ERR_FORMAT', `${where}: url '${url}' is neither http(s) nor YouTube`);
    }
    if (id) return { videoId: id, kind: 'url', location: url };
    const d = derived(url);
    d.names = [stemOf(parsed.pathname), nameOf(parsed.pathname), d.names[2]];
    return { videoId: d.names[0], kind: 'url', location: url, derived: d };
  }
  if (id) return { videoId: id, kind: 'youtube', location: id };
  throw new ClipstreamError('ERR_FORMAT', `${where}: no video_id, path or url`);
}

/** The form of an id in file names (clips, work files): what must differ between two videos. */
const fileForm = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '-');

/**
 * Ids from file names, made unique. A source keeps its file's stem unless another source
 * of the list has the same stem (or the same file-name form of it: `a.b` and `a-b` write
 * the same clip files); then every one of them takes its file name with the extension
 * (`dup.mp4`, `dup.mkv`), and where even those meet (`x/dup.mp4`, `y/dup.mp4`) the file
 * name and a hash of the path as listed (`dup.mp4~1a2b3c4d`). Ids given in `video_id` and
 * YouTube ids are never changed: a name from a file makes way for them. Every source that
 * is in a meeting moves, not only the later one, so the ids do not depend on the order of
 * the list, and a source that meets no other keeps the id it always had. The same file
 * listed twice without an id is a duplicate, not a meeting.
 */
function uniqueIds(rows: ListedSource[], onDuplicate?: (videoId: string) => void): SourceRow[] {
  const firstAt = new Map<string, number>();
  const sameAs = new Map<number, number>();
  rows.forEach((r, i) => {
    const key = `${r.kind}\0${r.location}`;
    const first = firstAt.get(key);
    if (first === undefined) firstAt.set(key, i);
    else if (r.derived) sameAs.set(i, first);
  });
  const kept = rows.map((_, i) => i).filter((i) => !sameAs.has(i));
  // -1: an id that is never changed; 0..2: which name of a derived source is its id.
  const level = new Map(kept.map((i) => [i, rows[i]!.derived ? 0 : -1]));
  const idOf = (i: number) => {
    const l = level.get(i)!;
    return l < 0 ? rows[i]!.videoId : rows[i]!.derived!.names[l]!;
  };
  for (let changed = true; changed; ) {
    changed = false;
    const groups = new Map<string, number[]>();
    for (const i of kept) {
      const form = fileForm(idOf(i));
      groups.set(form, [...(groups.get(form) ?? []), i]);
    }
    for (const g of groups.values()) {
      // The longest names in a meeting move on; a shorter one met only by longer ones stays.
      const top = Math.max(...g.map((i) => level.get(i)!));
      if (g.length < 2 || top < 0 || top >= 2) continue;
      for (const i of g) if (level.get(i) === top) level.set(i, top + 1);
      changed = true;
    }
  }
  const ids = new Map(kept.map((i) => [i, idOf(i)]));
  for (const first of sameAs.values()) onDuplicate?.(ids.get(first) ?? rows[first]!.videoId);
  return kept.map((i) => ({ videoId: ids.get(i)!, kind: rows[i]!.kind, location: rows[i]!.location }));
}

/**
 * Reads a list of source videos: a CSV, TSV (by extension) or JSONL file with `video_id`,
 * `path` and/or `url` columns, or a folder of videos. Relative paths are taken from the
 * list's folder, so a list and its videos can move together. A row with only `video_id`
 * is a YouTube id (seed 002's format). Ids taken from file names are made unique
 * (`uniqueIds`: `dup.mp4` and `dup.mkv` become two videos); a file listed twice, and
 * later rows of an id given twice (or of two ids that would write the same files) are
 * dropped, each with a call of `onDuplicate`.
 *
 * @example
 * await readSources('sources.csv') // [{ videoId: 'abc', kind: 'path', location: '/data/abc.mp4' }, ...]
 */
/** A list is text: a video (by its extension) or any file with a NUL byte near its start is not one, whatever a CSV parser would make of it. */
async function refuseMediaFile(input: string): Promise<void> {
  const ext = extname(input).slice(1).toLowerCase();
  let binary = VIDEO_EXTENSIONS.includes(ext);
  if (!binary) {
    const fh = await open(input, 'r');
    try {
      const head = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      binary = head.subarray(0, bytesRead).includes(0);
    } finally {
      await fh.close();
    }
  }
  if (binary)
    throw new ClipstreamError(
      'ERR_FORMAT',
      `${input} is ${VIDEO_EXTENSIONS.includes(ext) ? 'a video' : 'a binary file'}, not a list of sources: give a CSV/TSV (video_id,path or url), a JSONL list, or a folder of videos`,
      { where: { file: input } },
    );
}

export async function readSources(input: string, onDuplicate?: (videoId: string) => void): Promise<SourceRow[]> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(input);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `Cannot read sources ${input}: ${(err as Error).message}`, { cause: err, where: { file: input } });
  }
  let rows: ListedSource[];
  if (st.isDirectory()) {
    const names = (await readdir(input)).filter((n) => VIDEO_EXTENSIONS.includes(extname(n).slice(1).toLowerCase())).sort();
    rows = names.map((n) => {
      const d = derived(n);
      return { videoId: d.names[0], kind: 'path' as const, location: resolve(join(input, n)), derived: d };
    });
  } else {
    await refuseMediaFile(input);
    const text = await readFile(input, 'utf8');
    const baseDir = dirname(resolve(input));
    const lower = input.toLowerCase();
    if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) {
      rows = [];
      text.split('\n').forEach((line, i) => {
        if (!line.trim()) return;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (err) {
          throw new ClipstreamError('ERR_FORMAT', `${input}, line ${i + 1}: not JSON (${(err as Error).message})`, { where: { file: input } });
        }
        if (typeof obj !== 'object' || obj === null)
          throw new ClipstreamError('ERR_FORMAT', `${input}, line ${i + 1}: expected an object`, { where: { file: input } });
        rows.push(rowToSource(obj as Record<string, unknown>, baseDir, `${input}, line ${i + 1}`));
      });
    } else {
      const table = parseCsvLines(text, { delimiter: lower.endsWith('.tsv') ? '\t' : ',', file: input });
      rows = table.map(({ line, row }) => rowToSource(row, baseDir, `${input}, line ${line}`));
    }
  }
  const seen = new Set<string>();
  // An id is the stem of every file of its video (clips, records, locks, temps): it must leave them room (src/util/names.ts).
  // Fitted after the ids are made unique, since a same-stem source takes a longer name (its extension, a hash).
  const fitted = uniqueIds(rows, onDuplicate).map((r) => ({ ...r, videoId: fitName(r.videoId) }));
  return fitted.filter((r) => {
    const form = fileForm(r.videoId);
    if (seen.has(form)) {
      onDuplicate?.(r.videoId);
      return false;
    }
    seen.add(form);
    return true;
  });
}

/**
 * The videos of a clips run, in order: the list read (duplicates warned about and dropped),
 * cut to its first `numVideos`. Every rank and queue worker reads the same list.
 *
 * @example (await listClipSources('sources.csv', 2)).map((s) => s.videoId) // ['a', 'b']
 */
export async function listClipSources(input: string, numVideos?: number, warn?: (e: ClipstreamError) => void): Promise<SourceRow[]> {
  const sources = await readSources(input, (id) =>
    warn?.(
      new ClipstreamError('ERR_FORMAT', `${input}: video ${id} is listed more than once; only the first row is used`, {
        where: { file: input, key: id },
      }),
    ),
  );
  return numVideos === undefined ? sources : sources.slice(0, numVideos);
}
