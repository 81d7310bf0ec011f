/**
 * Compares the outputs of the same job run twice (on the GPU and on the CPU, by scripts/gpu-check.sh), and says
 * whether they agree. Prints one JSON line `{kind, agree, max_abs_diff, compared, problems}`; exit code 0 when they
 * agree, 1 when they do not, 2 when an output cannot be read or the call is wrong.
 *
 *   npx tsx scripts/gpu-compare.ts features <dirA> <dirB> [--tolerance=1e-3]   feature shards (*.msgpack, *.json)
 *   npx tsx scripts/gpu-compare.ts frames <dirA> <dirB>                        every *.mp4: same names, same frame counts
 *   npx tsx scripts/gpu-compare.ts faces <dirA> <dirB> [--tolerance=1e-3]      faces outputs: clips' frame counts and
 *                                                                               metadata.csv's detector scores
 *   npx tsx scripts/gpu-compare.ts pixels <dirA> <dirB> [--tolerance=1]         every *.png: same names and sizes,
 *                                                                               pixels within this many 8-bit levels
 *
 * Features agree when both sides hold the same shards, the same records (by `__key__`, else `id`), the same feature
 * sets and layers with the same shapes, and every value within the tolerance (absolute). Frame counts are counted by
 * ffprobe decoding every frame (`-count_frames`), not read from the jobs' own tables.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import sharp from 'sharp';
import { ffprobePath } from '../src/media/ffmpeg-path.js';
import { readFeatureShard } from '../src/sinks/feature-shard-files.js';
import type { FeatureRecord, FeatureSet } from '../src/types.js';

export interface Comparison {
  kind: 'features' | 'frames' | 'faces' | 'pixels';
  agree: boolean;
  /** Largest absolute difference seen (features, detector scores; pixels in 0-1 units); 0 for frame counts; null when nothing could be compared. */
  max_abs_diff: number | null;
  /** Values (features, scores, pixels) or files (frames) compared. */
  compared: number;
  /** What disagrees, the first few. */
  problems: string[];
}

const MAX_PROBLEMS = 10;

class Tally {
  maxAbs = 0;
  compared = 0;
  seen = false;
  readonly problems: string[] = [];
  problem(text: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(text);
    else if (this.problems.length === MAX_PROBLEMS) this.problems.push('... (more)');
  }
  diff(a: number, b: number): number {
    // NaN on either side is a disagreement of its own (Math.abs would hide it in the maximum).
    const d = Number.isNaN(a) !== Number.isNaN(b) ? Number.POSITIVE_INFINITY : Number.isNaN(a) ? 0 : Math.abs(a - b);
    this.seen = true;
    this.compared++;
    if (d > this.maxAbs) this.maxAbs = d;
    return d;
  }
  result(kind: Comparison['kind'], extraAgree = true): Comparison {
    return {
      kind,
      agree: extraAgree && this.problems.length === 0,
      max_abs_diff: this.seen ? this.maxAbs : null,
      compared: this.compared,
      problems: this.problems,
    };
  }
}

/** Files under `dir` (recursive) whose name ends with one of `exts`, as paths relative to `dir`, sorted. */
async function listFiles(dir: string, exts: string[]): Promise<string[]> {
  // A folder a job did not make (no clips at all) holds nothing; the callers say so when the first side is empty.
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** The names both sides have; a name on one side only is a problem. */
function pair(t: Tally, a: string[], b: string[], what: string): string[] {
  const inB = new Set(b);
  const inA = new Set(a);
  for (const n of a) if (!inB.has(n)) t.problem(`${what} ${n} only in the first output`);
  for (const n of b) if (!inA.has(n)) t.problem(`${what} ${n} only in the second output`);
  return a.filter((n) => inB.has(n));
}

function compareSets(t: Tally, key: string, field: string, a: FeatureSet[], b: FeatureSet[], tolerance: number): void {
  if (a.length !== b.length) {
    t.problem(`${key}: ${field} has ${a.length} feature sets in the first output, ${b.length} in the second`);
    return;
  }
  a.forEach((sa, i) => {
    const sb = b[i]!;
    if (sa.extractor_name !== sb.extractor_name) t.problem(`${key}: ${field}[${i}] extractor ${sa.extractor_name} vs ${sb.extractor_name}`);
    const layers = pair(t, Object.keys(sa.feat_array).sort(), Object.keys(sb.feat_array).sort(), `${key}: ${field}[${i}] layer`);
    for (const layer of layers) {
      const ta = sa.feat_array[layer]!;
      const tb = sb.feat_array[layer]!;
      if (ta.shape.join('x') !== tb.shape.join('x')) {
        t.problem(`${key}: ${field}[${i}].${layer} shape [${ta.shape.join(', ')}] vs [${tb.shape.join(', ')}]`);
        continue;
      }
      let worst = 0;
      let at = -1;
      for (let j = 0; j < ta.data.length; j++) {
        const d = t.diff(ta.data[j]!, tb.data[j]!);
        if (d > worst) {
          worst = d;
          at = j;
        }
      }
      if (worst > tolerance) t.problem(`${key}: ${field}[${i}].${layer}[${at}] differs by ${worst} (> ${tolerance})`);
    }
  });
}

/** Feature shards of two extract runs: same records, shapes, and values within `tolerance`. */
export async function compareFeatures(dirA: string, dirB: string, tolerance = 1e-3): Promise<Comparison> {
  const t = new Tally();
  const exts = ['.msgpack', '.json'];
  const shardsA = (await listFiles(dirA, exts)).filter((n) => /shard.*\.(msgpack|json)$/.test(n) && !n.endsWith('.tables.json'));
  const shardsB = (await listFiles(dirB, exts)).filter((n) => /shard.*\.(msgpack|json)$/.test(n) && !n.endsWith('.tables.json'));
  if (shardsA.length === 0) t.problem(`no feature shard in ${dirA}`);
  for (const name of pair(t, shardsA, shardsB, 'shard')) {
    const byKey = (rs: FeatureRecord[]) => new Map(rs.map((r) => [r.__key__ ?? r.id, r] as const));
    const a = byKey(await readFeatureShard(join(dirA, name)));
    const b = byKey(await readFeatureShard(join(dirB, name)));
    for (const key of pair(t, [...a.keys()].sort(), [...b.keys()].sort(), `${name}: record`)) {
      const ra = a.get(key)!;
      const rb = b.get(key)!;
      compareSets(t, `${name}:${key}`, 'visual_features', ra.visual_features, rb.visual_features, tolerance);
      compareSets(t, `${name}:${key}`, 'audio_features', ra.audio_features, rb.audio_features, tolerance);
    }
  }
  return t.result('features');
}

const run = promisify(execFile);

/** Frames of a video's first video stream, counted by decoding them all. */
export async function countFrames(file: string): Promise<number> {
  const { stdout } = await run(
    ffprobePath(),
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file],
    {
      timeout: 120_000,
    },
  );
  const n = Number.parseInt(stdout.trim(), 10);
  if (!Number.isInteger(n)) throw new Error(`ffprobe counted no frames in ${file} (${stdout.trim() || 'empty output'})`);
  return n;
}

async function compareFrameCounts(t: Tally, dirA: string, dirB: string): Promise<void> {
  const a = await listFiles(dirA, ['.mp4']);
  if (a.length === 0) t.problem(`no .mp4 in ${dirA}`);
  for (const name of pair(t, a, await listFiles(dirB, ['.mp4']), 'video')) {
    const [na, nb] = await Promise.all([countFrames(join(dirA, name)), countFrames(join(dirB, name))]);
    t.compared++;
    t.seen = true;
    if (na !== nb) t.problem(`${name}: ${na} frames in the first output, ${nb} in the second`);
  }
}

/** Every .mp4 under two folders: the same names, and the same number of frames each. */
export async function compareFrames(dirA: string, dirB: string): Promise<Comparison> {
  const t = new Tally();
  await compareFrameCounts(t, dirA, dirB);
  return t.result('frames');
}

const SCORE_COLUMNS = ['det_score_mean', 'det_score_min', 'det_score_max'];

/** Two faces outputs: the same face clips with the same frame counts, and detector scores within `tolerance`. */
export async function compareFaces(dirA: string, dirB: string, tolerance = 1e-3): Promise<Comparison> {
  const t = new Tally();
  await compareFrameCounts(t, join(dirA, 'clips'), join(dirB, 'clips'));
  const rows = async (dir: string) =>
    new Map((parse(await readFile(join(dir, 'metadata.csv')), { columns: true }) as Record<string, string>[]).map((r) => [r.clip_key!, r] as const));
  const a = await rows(dirA);
  const b = await rows(dirB);
  for (const key of pair(t, [...a.keys()].sort(), [...b.keys()].sort(), 'metadata.csv row')) {
    for (const col of SCORE_COLUMNS) {
      const d = t.diff(Number(a.get(key)![col]), Number(b.get(key)![col]));
      if (!(d <= tolerance)) t.problem(`${key}: ${col} differs by ${d} (> ${tolerance})`);
    }
  }
  return t.result('faces');
}

/** Every .png under two folders: same names and sizes, every channel within `levels` 8-bit levels. */
export async function comparePixels(dirA: string, dirB: string, levels = 1): Promise<Comparison> {
  const t = new Tally();
  const a = await listFiles(dirA, ['.png']);
  if (a.length === 0) t.problem(`no .png in ${dirA}`);
  for (const name of pair(t, a, await listFiles(dirB, ['.png']), 'image')) {
    const [ia, ib] = await Promise.all([dirA, dirB].map((d) => sharp(join(d, name)).raw().toBuffer({ resolveWithObject: true })));
    const ka = ia!.info;
    const kb = ib!.info;
    if (ka.width !== kb.width || ka.height !== kb.height || ka.channels !== kb.channels) {
      t.problem(`${name}: ${ka.width}x${ka.height}x${ka.channels} vs ${kb.width}x${kb.height}x${kb.channels}`);
      continue;
    }
    let worst = 0;
    for (let j = 0; j < ia!.data.length; j++) {
      const d = Math.abs(ia!.data[j]! - ib!.data[j]!);
      if (d > worst) worst = d;
    }
    t.compared += ia!.data.length;
    t.seen = true;
    if (worst / 255 > t.maxAbs) t.maxAbs = worst / 255;
    if (worst > levels) t.problem(`${name}: a pixel differs by ${worst} levels (> ${levels})`);
  }
  return t.result('pixels');
}

const KINDS: Record<Comparison['kind'], (a: string, b: string, tolerance?: number) => Promise<Comparison>> = {
  features: compareFeatures,
  frames: (a, b) => compareFrames(a, b),
  faces: compareFaces,
  pixels: comparePixels,
};

async function main(argv: string[]): Promise<number> {
  const tolArg = argv.find((a) => a.startsWith('--tolerance='));
  const [kind, dirA, dirB, ...rest] = argv.filter((a) => a !== tolArg);
  const tolerance = tolArg === undefined ? undefined : Number(tolArg.slice('--tolerance='.length));
  if (!(kind && kind in KINDS) || !dirA || !dirB || rest.length > 0 || (tolerance !== undefined && !(tolerance >= 0))) {
    process.stderr.write('usage: gpu-compare.ts features|frames|faces|pixels <dirA> <dirB> [--tolerance=N]\n');
    return 2;
  }
  try {
    const result = await KINDS[kind as Comparison['kind']](dirA, dirB, tolerance);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.agree ? 0 : 1;
  } catch (err) {
    process.stderr.write(`gpu-compare: ${(err as Error).message}\n`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main(process.argv.slice(2));
