/**
 * Scoring clips that exist (`clipstream score`): a folder of clips or webdataset tar shards in,
 * one row of scores per clip out. Units are the inputs (the folder, each shard); items are the
 * clips. A tar member is written to a temp file in `workDir` for ffmpeg and removed once scored.
 * Each clip's scores are kept as it is scored (`<scoresDir>/<unit>/<clip>.json`), so a killed run
 * resumes without scoring a clip twice; a clip that cannot be scored is a failed row, and the
 * others go on.
 */
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import type { ScoreSetup } from '../features/clip-scores.js';
import { readTarShards } from '../shards/tar-reader.js';
import { itemStage } from '../stage/index.js';
import type { ItemFailure } from '../types.js';
import { fitName } from '../util/names.js';
import { scoreClipFile } from './score-file.js';
import { readScores, storeScores, type ClipScores } from './stored-scores.js';

/** Video file extensions taken from a folder or a tar sample. */
export const VIDEO_EXTENSIONS = ['mp4', 'mkv', 'webm', 'mov', 'avi', 'm4v', 'ts'];

/** One input of `score`: a folder of clips or a tar shard. */
export interface ScoreUnit {
  id: string;
  kind: 'folder' | 'tar';
  path: string;
}

/** One clip on its way through the score stage. */
export interface ScoreItem {
  key: string;
  unit: ScoreUnit;
  /** Where ffmpeg reads it (a temp file for a tar member). */
  file: string;
  temp: boolean;
  scores?: ClipScores;
  frames?: number;
  failure?: ItemFailure;
}

/** A unit's end: every clip of it has passed. */
export interface ScoreUnitEnd {
  unitEnd: ScoreUnit;
  /** Set when the tar was damaged (its clips before the damage are scored). */
  error?: string;
}

/** The units of inputs: a folder is one unit (its name), each shard one (its file name without .tar). */
export function scoreUnits(inputs: readonly string[], isFolder: (p: string) => boolean): ScoreUnit[] {
  return inputs.map((p) => ({ id: basename(p).replace(/\.tar$/, ''), kind: isFolder(p) ? 'folder' : 'tar', path: p }));
}

const safe = (key: string) => fitName(key.replace(/[^A-Za-z0-9_.-]/g, '-'));

/** The source of the score pipeline: each unit's clips in order, then its end marker. */
export async function* scoreItems(units: AsyncIterable<ScoreUnit> | Iterable<ScoreUnit>, workDir: string): AsyncGenerator<ScoreItem | ScoreUnitEnd> {
  for await (const unit of units) {
    if (unit.kind === 'folder') {
      const names = (await readdir(unit.path)).filter((n) => VIDEO_EXTENSIONS.includes(extname(n).slice(1).toLowerCase())).sort();
      for (const n of names) yield { key: n, unit, file: join(unit.path, n), temp: false };
      yield { unitEnd: unit };
      continue;
    }
    let error: string | undefined;
    const dir = join(workDir, safe(unit.id));
    for await (const item of readTarShards([unit.path])) {
      if (item.kind !== 'sample') {
        if (item.error) error = item.error.message;
        continue;
      }
      const field = Object.keys(item.files).find((f) => VIDEO_EXTENSIONS.includes(f.toLowerCase()));
      if (!field) continue;
      await mkdir(dir, { recursive: true });
      const file = join(dir, `${safe(item.__key__)}.${field}`);
      await writeFile(file, item.files[field]!);
      yield { key: `${item.__key__}.${field}`, unit, file, temp: true };
    }
    yield { unitEnd: unit, ...(error ? { error } : {}) };
  }
}

/**
 * The score stage (stage kit): each clip's scores from kept ones or from its file; a clip that
 * cannot be scored is marked failed (`item.failure`) and passed on.
 */
export function scoreStage(o: { setup: ScoreSetup; scoresDir: string; ffmpegPath?: string; signal?: AbortSignal }) {
  return itemStage<ScoreItem>(
    {
      name: 'score',
      needs: ['file'],
      adds: ['scores'],
      signal: o.signal,
      accepts: (item) => 'file' in item,
      keyOf: (item) => item.key,
      code: 'ERR_DECODE',
    },
    async (item) => {
      const dir = join(o.scoresDir, safe(item.unit.id));
      const stem = { stem: safe(item.key) };
      try {
        const kept = await readScores(dir, stem, o.setup.columns);
        if (kept) {
          item.scores = kept;
          return;
        }
        if (!(await stat(item.file).catch(() => null))) throw new ClipstreamError('ERR_IO', `${item.file} is missing`, { where: { file: item.file } });
        const r = await scoreClipFile(item.file, o.setup, { ffmpegPath: o.ffmpegPath, signal: o.signal });
        item.scores = r.scores;
        item.frames = r.frames;
        await mkdir(dir, { recursive: true });
        await storeScores(dir, stem, r.scores);
      } finally {
        if (item.temp) await rm(item.file, { force: true });
      }
    },
  );
}
