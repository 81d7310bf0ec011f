import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { ClipstreamError } from '../errors.js';
import type { WarningHandler } from '../types.js';
import { VIDEO_EXTENSIONS } from '../shards/clip-name.js';
import { fitName } from '../util/names.js';

/** A video file found under an input folder, with the key its outputs are named by. */
export interface VideoFile {
  /** Position in the sorted list; outputs are ordered by it. */
  index: number;
  path: string;
  /** Path relative to the input folder (the key of the resume state). */
  rel: string;
  /** Stem of the outputs' keys, unique among the files (see assignKeys). */
  key: string;
}

/** A video file, by its extension: the one list of video containers (shards/clip-name.ts). */
const isVideoName = (name: string) => VIDEO_EXTENSIONS.includes(extname(name).slice(1).toLowerCase());

/** `sub/dir/video.mp4` → `sub__dir__video`: clip keys hold no `/`, which separates frame numbers in the LMDB keys. */
export function videoStem(rel: string): string {
  return rel
    .slice(0, rel.length - extname(rel).length)
    .split(sep)
    .join('__')
    .split('/')
    .join('__');
}

/**
 * Clip-key stems, one per source, unique: the path without its extension (`videoStem`); when
 * that is taken (`same.mp4` beside `same.mkv`), the extension is kept (`same.mp4`), then `~2`,
 * `~3`, ... Sources are taken in sorted order, and stems recorded by an earlier run (`previous`,
 * from faces-videos.json) are kept and reserved first, so a rerun gives every source its old
 * keys even when a same-named file was added since.
 *
 * @example
 * assignKeys(['same.mkv', 'same.mp4']) // ['same', 'same.mp4']
 */
export function assignKeys(rels: string[], previous: Record<string, string> = {}): string[] {
  // A stem two sources shared before keys were unique is kept by the first of them only.
  const keptFor = new Map<string, string>();
  for (const rel of rels) if (previous[rel] && !keptFor.has(previous[rel]!)) keptFor.set(previous[rel]!, rel);
  const taken = new Set([...Object.values(previous)]);
  return rels.map((rel) => {
    const kept = previous[rel];
    if (kept && keptFor.get(kept) === rel) return kept;
    // The key names the video's clips, record, lock and temps: it must leave them room (src/util/names.ts).
    const stem = fitName(videoStem(rel));
    let key = stem;
    if (taken.has(key)) key = `${stem}${extname(rel)}`;
    for (let n = 2; taken.has(key); n++) key = `${stem}${extname(rel)}~${n}`;
    taken.add(key);
    return key;
  });
}

/**
 * The videos under `inputDir` (recursive, sorted, hidden entries skipped) with unique keys.
 * Only regular files (or links to them) are read: a FIFO, socket or device with a video name
 * would block the decoder, so it is skipped with a warning naming it.
 *
 * @example
 * const sources = await listFolderVideos('videos', {}, console.warn);
 */
export async function listFolderVideos(inputDir: string, previousKeys: Record<string, string>, onWarning: WarningHandler): Promise<VideoFile[]> {
  const paths: string[] = [];
  const walk = async (d: string) => {
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `cannot read input folder ${d}: ${(err as Error).message}`, { cause: err, where: { file: d } });
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        await walk(p);
        continue;
      }
      if (!isVideoName(e.name)) continue;
      let regular = e.isFile();
      if (e.isSymbolicLink())
        regular = await stat(p).then(
          (s) => s.isFile(),
          () => false,
        );
      if (regular) paths.push(p);
      else onWarning(new ClipstreamError('ERR_IO', `${p}: not a regular file (${kindOf(e)}); skipped`, { where: { file: p } }));
    }
  };
  await walk(inputDir);
  const rels = paths.map((p) => relative(inputDir, p));
  const keys = assignKeys(rels, previousKeys);
  return paths.map((path, index) => ({ index, path, rel: rels[index]!, key: keys[index]! }));
}

function kindOf(e: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSymbolicLink(): boolean }): string {
  if (e.isFIFO()) return 'a FIFO';
  if (e.isSocket()) return 'a socket';
  if (e.isCharacterDevice() || e.isBlockDevice()) return 'a device';
  if (e.isSymbolicLink()) return 'a link to something that is not a regular file';
  return 'not a file';
}
