/**
 * The `semdedup` command: its flags, its options from them, the run and its summary, and
 * `semdedupJob`, what the queue and the worker need to run it cluster by cluster.
 */
import { semdedup, type SemdedupOptions } from '../jobs/semdedup.js';
import type { JobDefinition } from '../run/job-definition.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import { clusterUnits } from '../semdedup/options.js';
import type { CommandSpec } from '../util/args.js';
import { describePartition } from '../util/partition.js';
import { ProgressDisplay } from '../util/progress.js';

export const semdedupSpec: CommandSpec = {
  name: 'semdedup',
  summary: 'feature shards in, semantic near-duplicates out (SemDeDup: k-means, then cosine similarity within each cluster): semdedup.csv and a keep list.',
  usage: 'clipstream semdedup --features="<dir>/shard-{000000..000099}.msgpack" --out_dir=<dir> [options]',
  options: [
    {
      name: 'features',
      type: 'string[]',
      description: 'Feature shard path or brace pattern (msgpack or json, as extract writes); repeat for several',
      required: true,
    },
    {
      name: 'out_dir',
      type: 'string',
      description: 'Folder for semdedup.csv, keep_list.txt, the run log and the work folder .semdedup/',
      required: true,
      library: 'outputDir',
    },
    {
      name: 'key',
      type: 'string',
      description: 'Which array of the feature set (layer_0 ... layer_4); one vector per clip, pooled over all axes but the last',
      default: 'layer_4',
    },
    { name: 'feature_set', type: 'string', description: 'visual or audio', default: 'visual' },
    { name: 'clusters', type: 'integer', description: 'k-means clusters, the units of work (NeMo Curator uses 1000 for millions of clips)', default: 100 },
    {
      name: 'eps',
      type: 'number',
      description: 'A clip is removed when its cosine similarity to a clip ranked before it in its cluster is above 1 - eps',
      default: 0.05,
    },
    {
      name: 'keep',
      type: 'string',
      description: "Which of near-copies is kept: 'hard' (farthest from the centroid, NeMo's default) or 'easy' (nearest)",
      default: 'hard',
    },
    { name: 'seed', type: 'integer', description: 'Seed of the k-means++ start and the samples (every rank computes the same clusters)', default: 0 },
    { name: 'max_iter', type: 'integer', description: 'Most Lloyd iterations (fewer when the labels stop changing)', default: 20 },
    { name: 'kmeans_sample', type: 'integer', description: 'Rows k-means is fitted on: a uniform sample (all rows when fewer)', default: 50000 },
    { name: 'threads', type: 'integer', description: 'ONNX Runtime threads for the matrix products (default: all cores)', library: 'intraOpThreads' },
    { name: 'overwrite', type: 'boolean', description: 'Redo everything, even a finished run with the same options', default: false },
    { name: 'quiet', type: 'boolean', description: 'No progress display', default: false },
    ...partitionOptions,
  ],
  examples: ['clipstream semdedup --features="out/shard-{000000..000001}.msgpack" --out_dir=out/semdedup --clusters=2'],
};

export function semdedupOptionsFromArgs(args: Record<string, unknown>): SemdedupOptions {
  return {
    features: args.features as string[],
    outputDir: args.out_dir as string,
    key: args.key as string,
    featureSet: args.feature_set as 'visual' | 'audio',
    clusters: args.clusters as number,
    eps: args.eps as number,
    keep: args.keep as 'hard' | 'easy',
    seed: args.seed as number,
    maxIter: args.max_iter as number,
    kmeansSample: args.kmeans_sample as number,
    intraOpThreads: args.threads as number | undefined,
    overwrite: args.overwrite as boolean,
  };
}

/** Runs `clipstream semdedup`: exit 0 when this run's clusters are done, 1 when the run failed. */
export async function runSemdedup(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const partition = partitionFromArgs(args);
  const display = args.quiet ? null : new ProgressDisplay(process.stderr);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const warn = (w: Error) => process.stderr.write(`clipstream semdedup: warning: ${w.message}\n`);
  let report: Awaited<ReturnType<typeof semdedup>>;
  try {
    report = await semdedup({
      ...semdedupOptionsFromArgs(args),
      partition,
      signal,
      log,
      onWarning: warn,
      onProgress: display ? (p) => display.update(p) : undefined,
    });
  } finally {
    display?.finish();
  }
  const r = report.run;
  const ranked = partition.world > 1 ? ` (${describePartition(partition)})` : '';
  process.stderr.write(
    `clipstream semdedup${ranked}: ${report.rows} clips of ${report.dim} values in ${report.clusters} clusters; ` +
      `${r.done} cluster(s) done, ${r.skipped} skipped (done before or locked), ${r.failed} failed in ${r.seconds.toFixed(1)} s. ` +
      (report.csv
        ? `${report.kept} kept, ${report.removed} removed: ${report.csv}, ${report.keepList}`
        : 'Tables not written yet: other clusters are not done.') +
      `${r.logPath ? ` Log: ${r.logPath}` : ''}\n`,
  );
  return r.failed > 0 ? 1 : 0;
}

/** `semdedup` for the queue and the worker: one unit per cluster. */
export const semdedupJob: JobDefinition<SemdedupOptions, 'semdedup'> = {
  name: 'semdedup',
  spec: semdedupSpec,
  optionsFromArgs: semdedupOptionsFromArgs,
  pathArgs: ['features', 'out_dir'],
  listUnits: async (options) => clusterUnits(options.clusters ?? 100),
  run: (options) => semdedup(options),
};
