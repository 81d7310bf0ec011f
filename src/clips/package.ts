import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatEntries } from '../shards/bundle.js';
import { writeTarAtomic } from '../shards/tar-writer.js';
import type { ClipEntry } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { validateInteger } from '../util/validate.js';

/** One row of `clips.csv`: a finished clip and where it came from. */
export interface ClipRecord {
  clip_id: string;
  filename: string;
  video_id: string;
  source: string;
  start_frame: number;
  end_frame: number;
  num_frames: number;
  start_s: number;
  end_s: number;
  fps: number;
  width: number;
  height: number;
  size_bytes: number;
  video_codec: string;
  audio_codec: string;
  bit_rate: number;
  /** With scores: the clip's scores by column (src/features/clip-scores.ts); clips.csv has a column each, after CLIP_COLUMNS. */
  scores?: Record<string, number | string>;
  /** With a filter: whether the clip passed it (its file is in clips/, else in filtered/ or not written), and the failed rules negated (`motion<0.02`). */
  kept?: boolean;
  filter_reason?: string;
}

export const CLIP_COLUMNS: readonly Exclude<keyof ClipRecord, 'scores' | 'kept' | 'filter_reason'>[] = [
  'clip_id',
  'filename',
  'video_id',
  'source',
  'start_frame',
  'end_frame',
  'num_frames',
  'start_s',
  'end_s',
  'fps',
  'width',
  'height',
  'size_bytes',
  'video_codec',
  'audio_codec',
  'bit_rate',
];

/**
 * The columns of clips.csv for these records: CLIP_COLUMNS, then every score column any record
 * has (in the order first seen), and the rows with their scores flattened into them. Records
 * without scores (older outputs, scores off) give the table it always had.
 *
 * @example clipTable(records).columns // [...CLIP_COLUMNS, 'motion', 'black', ...]
 */
export function clipTable(records: readonly ClipRecord[]): { columns: string[]; rows: object[] } {
  const extra = new Set<string>();
  for (const r of records) for (const k of Object.keys(r.scores ?? {})) extra.add(k);
  const filtered = records.some((r) => r.kept !== undefined);
  if (extra.size === 0 && !filtered) return { columns: [...CLIP_COLUMNS], rows: records as object[] };
  const rows = records.map(({ scores, ...r }) => ({ ...r, ...scores }));
  return { columns: [...CLIP_COLUMNS, ...extra, ...(filtered ? ['kept', 'filter_reason'] : [])], rows };
}

/** Fixed tar headers: the same clips give byte-identical shards. */

export interface ShardOutput {
  tar: string;
  json: string;
  clips: number;
  /** False when an identical shard (same members in its json) was already there. */
  written: boolean;
}

async function sameShard(tarPath: string, jsonPath: string, entries: ClipEntry[]): Promise<boolean> {
  try {
    await stat(tarPath);
    return (await readFile(jsonPath, 'utf8')) === formatEntries(entries);
  } catch {
    return false;
  }
}

/**
 * Packs finished clips into webdataset shards that `clipstream extract` reads:
 * `shard-NNNNNN.tar` (members `{stem}.mp4` at the root) and `shard-NNNNNN.json` with
 * `{filename, id: video id, segment: [start_s, end_s]}` in tar order. A shard whose json
 * already lists exactly these clips is left alone, so re-runs rewrite only what changed.
 * With `keep` (a keep list's names), only the clips it names by clip_id or file stem are packed,
 * and shards numbered past the last one (left by a run that packed more) are removed.
 *
 * @example
 * await writeClipShards(records, 'out/clips', 'out/shards', 100) // [{ tar: 'out/shards/shard-000000.tar', clips: 100, written: true }, ...]
 */
export async function writeClipShards(
  all: readonly ClipRecord[],
  clipsDir: string,
  shardsDir: string,
  shardSize: number,
  keep?: ReadonlySet<string>,
): Promise<ShardOutput[]> {
  validateInteger(shardSize, 'options.shardSize', 1);
  await mkdir(shardsDir, { recursive: true });
  // Clips a filter kept out are not packed, nor clips a dedup keep list leaves out.
  const records = all.filter((r) => r.kept !== false && (!keep || keep.has(r.clip_id) || keep.has(r.filename.slice(0, r.filename.lastIndexOf('.')))));
  const shards: ShardOutput[] = [];
  for (let i = 0; i * shardSize < records.length; i++) {
    const group = records.slice(i * shardSize, (i + 1) * shardSize);
    const name = `shard-${String(i).padStart(6, '0')}`;
    const tarPath = join(shardsDir, `${name}.tar`);
    const jsonPath = join(shardsDir, `${name}.json`);
    const entries: ClipEntry[] = group.map((r) => ({ filename: r.filename, id: r.video_id, segment: [r.start_s, r.end_s] }));
    if (await sameShard(tarPath, jsonPath, entries)) {
      shards.push({ tar: tarPath, json: jsonPath, clips: group.length, written: false });
      continue;
    }
    // The tar goes first here: a json beside a stale tar would make the resume check above lie.
    await rm(jsonPath, { force: true });
    await writeTarAtomic(
      tarPath,
      group.map((r) => ({ name: r.filename, path: join(clipsDir, r.filename) })),
    );
    await writeFileAtomic(jsonPath, formatEntries(entries));
    shards.push({ tar: tarPath, json: jsonPath, clips: group.length, written: true });
  }
  if (keep) {
    for (const name of await readdir(shardsDir)) {
      const m = /^shard-(\d{6})\.(tar|json)$/.exec(name);
      if (m && Number(m[1]) >= shards.length) await rm(join(shardsDir, name), { force: true });
    }
  }
  return shards;
}
