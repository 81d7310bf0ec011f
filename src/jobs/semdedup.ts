/**
 * `semdedup`: SemDeDup (as NeMo Curator runs it) over the embeddings of feature shards. On the
 * job runner: the units are the k-means clusters (`cluster-000000`, ...); the shared step
 * before them (spill, k-means, grouping: src/semdedup/prepare.ts) is done once per output
 * folder by whichever run comes first while the others wait; every run then does its share of
 * clusters, each leaving one record; the run that finds every record present writes
 * `semdedup.csv` and `keep_list.txt`. A killed run resumes without redoing finished clusters.
 */
import { join } from 'node:path';
import { runJob } from '../run/runner.js';
import type { FeedOptions, JobReport } from '../stage/job-run.js';
import { openGemm } from '../semdedup/gemm.js';
import { clusterUnits, resolveSemdedupOptions, type SemdedupOptions } from '../semdedup/options.js';
import { ensurePrepared, type Prepared } from '../semdedup/prepare.js';
import { clusterRecords, CSV_NAME, KEEP_LIST_NAME, PreparedClusters, writeTables } from '../semdedup/units.js';

export type { SemdedupOptions } from '../semdedup/options.js';

export interface SemdedupReport {
  /** Clips with an embedding, clusters with clips, and the k-means fit. */
  rows: number;
  dim: number;
  clusters: number;
  iterations: number;
  /** The tables, once every cluster is done (by this run or others); null before. */
  csv: string | null;
  keepList: string | null;
  /** Clips kept and removed over all clusters, when the tables were written. */
  kept: number | null;
  removed: number | null;
  /** Which engine multiplied the matrices. */
  engine: 'onnx' | 'js';
  skipped: Prepared['skipped'];
  run: JobReport;
}

/**
 * Runs SemDeDup over the feature shards of the options (this run's share of the clusters).
 *
 * @example
 * const r = await semdedup({ features: 'feats/shard-{000000..000009}.msgpack', outputDir: 'dedup', clusters: 10, eps: 0.05 });
 * // r.keepList: 'dedup/keep_list.txt'
 */
export async function semdedup(options: SemdedupOptions & FeedOptions & { log?: (line: string) => void }): Promise<SemdedupReport> {
  const o = resolveSemdedupOptions(options);
  const units = clusterUnits(o.clusters);
  const store = clusterRecords(o.outputDir);
  const gemm = await openGemm(o.engine, o.intraOpThreads);
  let prepared: Prepared | null = null;
  let tables: { rows: number; kept: number } | null = null;
  let report: JobReport;
  try {
    ({ report } = await runJob(
      {
        job: 'semdedup',
        units,
        unitId: (u) => u,
        partition: options.partition,
        only: options.only,
        feed: options.feed,
        onUnitDone: options.onUnitDone,
        logDir: o.outputDir,
        // A killed run's half-written cluster records (and their stale locks) go first.
        tempDirs: [store.dir],
        logOptions: { key: o.key, featureSet: o.featureSet, clusters: o.clusters, eps: o.eps, keep: o.keep, seed: o.seed, engine: o.engine },
        locks: { finalPath: (u) => store.path(u) },
        resume: async (u) => ((await store.read(u)) ? { unit: u, outcome: 'skipped', status: 'skipped (done before)' } : null),
        unitNoun: 'clusters',
        itemNoun: 'clips',
        signal: o.signal,
        onWarning: o.onWarning,
        onProgress: options.onProgress,
      },
      async (run) => {
        prepared = await ensurePrepared(o, gemm, options.log ?? (() => {}));
        const clusters = await PreparedClusters.open(o.outputDir, prepared);
        try {
          for await (const u of run.pending()) {
            const c = Number(u.slice('cluster-'.length));
            const record = await clusters.run(c, { eps: o.eps, keep: o.keep, gemm });
            await store.write(u, record);
            run.item('done', record.rows);
            run.unitDone({ unit: u, outcome: 'done', status: 'written', clips: record.rows, removed: record.removed });
          }
        } finally {
          await clusters.close();
        }
        if (await store.hasAll(units)) tables = await writeTables(o.outputDir, units, store);
      },
    ));
  } finally {
    await gemm.close();
  }
  const p = prepared as Prepared | null;
  const t = tables as { rows: number; kept: number } | null;
  return {
    rows: p?.rows ?? 0,
    dim: p?.dim ?? 0,
    clusters: p?.clusters ?? 0,
    iterations: p?.iterations ?? 0,
    csv: t ? join(o.outputDir, CSV_NAME) : null,
    keepList: t ? join(o.outputDir, KEEP_LIST_NAME) : null,
    kept: t ? t.kept : null,
    removed: t ? t.rows - t.kept : null,
    engine: gemm.engine,
    skipped: p?.skipped ?? [],
    run: report,
  };
}
