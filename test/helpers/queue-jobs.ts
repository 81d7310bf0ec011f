/**
 * One fixture per job for the queue tests (test/jobs/queue-jobs.test.ts): a small input set, the
 * job's CLI arguments, which output files must equal a single-machine run of the plain command,
 * and how to read from the run logs which units a run finished.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { writeSyntheticVideo } from '../../scripts/make-face-fixtures.js';
import { SYNTHETIC_VIDEOS } from '../../src/faces/synthetic.js';
import type { JobName } from '../../src/cli/jobs.js';
import { completedKeys } from '../../src/sinks/feature-shard.js';
import { makeSource } from './clip-sources.js';
import { REPO } from './run-cli.js';
import { makeSmallShards } from './scale-shards.js';

/** A run log (`log_*.json`), as JSON. */
// biome-ignore lint/suspicious/noExplicitAny: run logs are free-form JSON that each job writes its own way
export type RunLog = Record<string, any>;

export interface QueueJobFixture {
  job: JobName;
  /** Where the definition comes from, for the skip message. */
  definedIn: string;
  /** Makes the inputs under `dir`; returns the unit count and the job's CLI arguments for an output folder. */
  prepare(dir: string): Promise<{ units: number; args: (out: string) => string[] }>;
  /** The folder holding the run logs. */
  logDir(out: string): string;
  /** Output files that must be byte-identical to the plain command's, by path relative to `out`. */
  outputs(out: string): Promise<Map<string, Buffer>>;
  /** True once the unit whose lock is `lock` is far enough in to be worth killing its worker (default: as soon as it is locked). */
  midUnit?(out: string, lock: string): Promise<boolean>;
}

/** Every file under `dir` (recursively) whose path passes `keep`, with its bytes, by path relative to `root`. */
export async function filesUnder(root: string, dir: string, keep: (rel: string) => boolean): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true }).catch(() => [])).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (keep(relative(root, p))) out.set(relative(root, p), await readFile(p));
    }
  };
  await walk(dir);
  return out;
}

/** The run logs in `dir` (not recursive). */
export async function readLogs(dir: string): Promise<RunLog[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^log_.*\.json$/.test(n));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8')) as RunLog));
}

/** Units a run finished, from the runner's `results` in its log (every job on src/run/runner.ts writes them). */
export function doneUnits(log: RunLog): string[] {
  if (Array.isArray(log.results)) return log.results.filter((r: { outcome: string }) => r.outcome === 'done').map((r: { unit: string }) => r.unit);
  // extract before it ran on the job runner: its own shard list.
  if (Array.isArray(log.shard_results))
    return log.shard_results.filter((s: { status: string }) => s.status.startsWith('written')).map((s: { url: string }) => s.url);
  return [];
}

/**
 * Units a run found finished by an earlier run (the runner's 'skipped' outcome other than a unit
 * locked elsewhere): in the queue test, the unit a killed worker had completed but not yet
 * acknowledged, which a survivor takes over and finds done.
 */
export function doneBeforeUnits(log: RunLog): string[] {
  if (!Array.isArray(log.results)) return [];
  return log.results
    .filter((r: { outcome: string; status: string }) => r.outcome === 'skipped' && r.status !== 'skipped (locked)')
    .map((r: { unit: string }) => r.unit);
}

const isMedia = (rel: string) => /\.(mp4|mkv|webm|png|flac|wav|tar)$/.test(rel) && !rel.includes('.tmp');

export const QUEUE_JOB_FIXTURES: QueueJobFixture[] = [
  {
    job: 'extract',
    definedIn: 'extractJob in src/cli/extract-command.ts',
    async prepare(dir) {
      const shards = await makeSmallShards(dir, 8, 2);
      const pattern = join(dir, 'shards', `shard-{000000..00000${shards.length - 1}}.tar`);
      return { units: shards.length, args: (out) => [`--tar_path=${pattern}`, `--out_path=${out}`, '--device=cpu', '--window_seconds=4', '--batch_size=1'] };
    },
    logDir: (out) => out,
    outputs: async (out) => filesUnder(out, out, (rel) => rel.endsWith('.msgpack')),
    // Killed with one of its shard's two clips journalled: the next worker must take that clip over.
    midUnit: async (out, lock) => (await completedKeys(out, lock.replace(/^.*\//, '').replace('.msgpack.lock', ''))).size === 1,
  },
  {
    job: 'clips',
    definedIn: 'clipsJob in src/cli/clips-command.ts',
    async prepare(dir) {
      const videos = join(dir, 'videos');
      await mkdir(videos, { recursive: true });
      const rows = ['video_id,path'];
      for (const [i, seconds] of [3, 4, 5].entries()) {
        const file = join(videos, `v${i}.mp4`);
        await makeSource(file, { seconds, audioHz: 440 + 110 * i });
        rows.push(`v${i},${file}`);
      }
      const sources = join(dir, 'sources.csv');
      await writeFile(sources, `${rows.join('\n')}\n`);
      return { units: 3, args: (out) => [`--sources=${sources}`, `--out_dir=${out}`, '--clip_len_s=1', '--encoder_threads=1'] };
    },
    logDir: (out) => out,
    outputs: async (out) => filesUnder(out, join(out, 'clips'), isMedia),
  },
  {
    job: 'faces',
    definedIn: 'facesJob in src/cli/faces-command.ts',
    async prepare(dir) {
      const input = join(dir, 'faces-in');
      await mkdir(input, { recursive: true });
      const gap = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_gap')!;
      const move = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_move')!;
      await writeSyntheticVideo(gap, join(input, 'face_gap.mp4'));
      await writeSyntheticVideo({ ...gap, name: 'silent', tone: null }, join(input, 'silent.mp4'));
      await writeSyntheticVideo(move, join(input, 'face_move.mp4'));
      return { units: 3, args: (out) => [`--input_dir=${input}`, `--output_dir=${out}`, '--detector=synthetic', '--device=cpu', '--threads=1'] };
    },
    logDir: (out) => out,
    outputs: async (out) => filesUnder(out, out, (rel) => isMedia(rel) && !rel.startsWith('faces.lmdb')),
  },
  {
    job: 'segments',
    definedIn: 'segmentsJob in src/cli/segments-command.ts',
    async prepare(dir) {
      const input = join(dir, 'segments-in');
      await mkdir(input, { recursive: true });
      for (const name of ['a', 'b', 'c']) await copyFile(join(REPO, 'fixtures', 'segments', 'matte_move.mp4'), join(input, `${name}.mp4`));
      return {
        units: 3,
        args: (out) => [`--input_dir=${input}`, `--output_dir=${out}`, '--segment_seconds=2', '--device=cpu', '--threads=1', '--encoder_threads=1'],
      };
    },
    logDir: (out) => out,
    outputs: async (out) => filesUnder(out, out, (rel) => isMedia(rel) && !rel.includes('.segments/')),
  },
];
