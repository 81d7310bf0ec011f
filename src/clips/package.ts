import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatEntries } from '../shards/bundle.js';
import { writeTarAtomic } from '../shards/tar-writer.js';
import type { ClipEntry } from '../types.js';
import type { ClipRecord } from '../sinks/clip-table.js';
import { writeFileAtomic } from '../util/atomic.js';
import { validateInteger } from '../util/validate.js';

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
