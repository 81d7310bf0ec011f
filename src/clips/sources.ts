import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
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

function stemOf(p: string): string {
  const base = basename(p.split(/[?#]/)[0]!);
  return base.slice(0, base.length - extname(base).length);
}

function rowToSource(row: Record<string, unknown>, baseDir: string, where: string): SourceRow {
  const str = (k: string) => (row[k] === undefined || row[k] === null ? '' : String(row[k]).trim());
  const id = str('video_id');
  const path = str('path');
  const url = str('url');
  if (path) return { videoId: id || stemOf(path), kind: 'path', location: resolve(baseDir, path) };
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
    return { videoId: id || stemOf(parsed.pathname), kind: 'url', location: url };
  }
  if (id) return { videoId: id, kind: 'youtube', location: id };
  throw new ClipstreamError('ERR_FORMAT', `${where}: no video_id, path or url`);
}

/**
 * Reads a list of source videos: a CSV, TSV (by extension) or JSONL file with `video_id`,
 * `path` and/or `url` columns, or a folder of videos. Relative paths are taken from the
 * list's folder, so a list and its videos can move together. A row with only `video_id`
 * is a YouTube id (seed 002's format). Later duplicates of a video id are dropped.
 *
 * @example
 * await readSources('sources.csv') // [{ videoId: 'abc', kind: 'path', location: '/data/abc.mp4' }, ...]
 */
export async function readSources(input: string, onDuplicate?: (videoId: string) => void): Promise<SourceRow[]> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(input);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `Cannot read sources ${input}: ${(err as Error).message}`, { cause: err, where: { file: input } });
  }
  let rows: SourceRow[];
  if (st.isDirectory()) {
    const names = (await readdir(input)).filter((n) => VIDEO_EXTENSIONS.includes(extname(n).slice(1).toLowerCase())).sort();
    rows = names.map((n) => ({ videoId: stemOf(n), kind: 'path' as const, location: resolve(join(input, n)) }));
  } else {
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
  // An id is the stem of every file of its video (clips, records, locks, temps): it must leave them room (src/util/names.ts).
  for (const r of rows) r.videoId = fitName(r.videoId);
  const seen = new Set<string>();
  return rows.filter((r) => {
    if (seen.has(r.videoId)) {
      onDuplicate?.(r.videoId);
      return false;
    }
    seen.add(r.videoId);
    return true;
  });
}

/**
 * The videos of a clips run, in order: the list read (duplicates warned about and dropped),
 * cut to its first `numVideos`. Every rank and queue worker reads the same list.
 *
 * @example (await listSources('sources.csv', 2)).map((s) => s.videoId) // ['a', 'b']
 */
export async function listSources(input: string, numVideos?: number, warn?: (e: ClipstreamError) => void): Promise<SourceRow[]> {
  const sources = await readSources(input, (id) =>
    warn?.(
      new ClipstreamError('ERR_FORMAT', `${input}: video ${id} is listed more than once; only the first row is used`, {
        where: { file: input, key: id },
      }),
    ),
  );
  return numVideos === undefined ? sources : sources.slice(0, numVideos);
}
