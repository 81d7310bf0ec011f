/**
 * The unit of `semdedup`: one k-means cluster. A unit reads its rows and ids from the prepared
 * folder (./prepare.ts), applies the within-cluster rule (./cluster.ts) and leaves one record,
 * `.semdedup/clusters/cluster-NNNNNN.json`, written atomically by the record store; once every
 * cluster has its record, `semdedup.csv` and `keep_list.txt` are rebuilt from them (under the
 * store's lock, streamed one record at a time).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonRecords, UnitRecords } from '../sinks/unit-records.js';
import { withAtomicFile } from '../util/atomic.js';
import { formatCsv } from '../util/csv.js';
import { ClusterScratch, semdedupClusterRows, type ClusterRowLoader, type KeepRule } from './cluster.js';
import type { Gemm } from './gemm.js';
import { readNpyFloat64, workPath, WORK_DIR, type Prepared } from './prepare.js';
import { decodeHalfRows, SpillReader } from './spill.js';

export const CSV_COLUMNS = ['clip_id', 'cluster', 'kept', 'max_similarity', 'duplicate_of'] as const;
export const CSV_NAME = 'semdedup.csv';
export const KEEP_LIST_NAME = 'keep_list.txt';

/** What one cluster left: its rows of semdedup.csv (no header) and its kept ids, one a line. */
export interface ClusterRecord {
  cluster: number;
  rows: number;
  removed: number;
  csv: string;
  keep: string;
}

export function clusterRecords(outputDir: string): UnitRecords<ClusterRecord> {
  return new UnitRecords<ClusterRecord>(
    join(outputDir, WORK_DIR, 'clusters'),
    jsonRecords<ClusterRecord>({ check: (v) => typeof (v as ClusterRecord)?.csv === 'string' && typeof (v as ClusterRecord)?.keep === 'string' }),
    { owner: 'semdedup', tablesLock: join(outputDir, '.semdedup.tables.lock') },
  );
}

/**
 * Loads a cluster's rows (`rows`: their rows in the spill) for ./cluster.ts from the spill, by
 * positional reads a block at a time (the page cache holds the file), through `scratch`.
 */
export function spillRowLoader(spill: SpillReader, rows: Int32Array, scratch: ClusterScratch): ClusterRowLoader {
  const d = spill.dim;
  return async (positions, out) => {
    const m = positions.length;
    const half = scratch.u16(m * d);
    await spill.readHalfRows(
      positions.map((p) => rows[p]!),
      half,
    );
    decodeHalfRows(half, m, d, out);
  };
}

/** The prepared folder, open for reading clusters. */
export class PreparedClusters {
  /** Reused by every cluster of this run (./cluster.ts). */
  readonly #scratch = new ClusterScratch();

  private constructor(
    readonly prepared: Prepared,
    private readonly spill: SpillReader,
    private readonly members: FileHandle,
    private readonly ids: FileHandle,
    private readonly idsSize: number,
    private readonly centers: Float64Array,
  ) {}

  static async open(outputDir: string, prepared: Prepared): Promise<PreparedClusters> {
    const spill = await SpillReader.open(workPath(outputDir, 'embeddings.f16'));
    const members = await open(workPath(outputDir, 'members.i32'), 'r');
    const ids = await open(workPath(outputDir, 'member_ids.txt'), 'r');
    const size = (await stat(workPath(outputDir, 'member_ids.txt'))).size;
    const centers = await readNpyFloat64(workPath(outputDir, 'centroids.npy'));
    return new PreparedClusters(prepared, spill, members, ids, size, centers);
  }

  /** Cluster `c`'s record (empty when c is past the clusters that have rows). */
  async run(c: number, o: { eps: number; keep: KeepRule; gemm: Gemm }): Promise<ClusterRecord> {
    const p = this.prepared;
    const n = c < p.clusters ? p.counts[c]! : 0;
    if (n === 0) return { cluster: c, rows: 0, removed: 0, csv: '', keep: '' };
    const d = p.dim;
    const rowBytes = Buffer.alloc(n * 4);
    await this.members.read(rowBytes, 0, rowBytes.length, p.memberStart[c]! * 4);
    const rows = new Int32Array(rowBytes.buffer, rowBytes.byteOffset, n);
    const idEnd = c + 1 < p.clusters ? p.idStart[c + 1]! : this.idsSize;
    const idBytes = Buffer.alloc(idEnd - p.idStart[c]!);
    await this.ids.read(idBytes, 0, idBytes.length, p.idStart[c]!);
    const ids = idBytes.toString('utf8').split('\n').slice(0, n);
    const scratch = this.#scratch;
    const load = spillRowLoader(this.spill, rows, scratch);
    const v = await semdedupClusterRows(load, n, d, this.centers.subarray(c * d, (c + 1) * d), { eps: o.eps, keep: o.keep, gemm: o.gemm, scratch });
    const out: object[] = [];
    const keep: string[] = [];
    let removed = 0;
    for (let r = 0; r < n; r++) {
      const id = ids[v.order[r]!]!;
      const kept = v.kept[r] === 1;
      if (kept) keep.push(`${id}\n`);
      else removed++;
      const first = v.argmax[r]! < 0;
      out.push({
        clip_id: id,
        cluster: c,
        kept,
        max_similarity: first ? '' : v.maxSimilarity[r]!,
        duplicate_of: kept ? '' : ids[v.order[v.argmax[r]!]!]!,
      });
    }
    const csv = formatCsv(CSV_COLUMNS, out);
    return { cluster: c, rows: n, removed, csv: csv.slice(csv.indexOf('\n') + 1), keep: keep.join('') };
  }

  async close(): Promise<void> {
    await this.spill.close();
    await this.members.close().catch(() => {});
    await this.ids.close().catch(() => {});
  }
}

/**
 * Writes semdedup.csv and keep_list.txt from every cluster's record, one record in memory at a
 * time; each file appears whole (atomic rename). Returns the totals.
 */
export async function writeTables(outputDir: string, units: readonly string[], store: UnitRecords<ClusterRecord>): Promise<{ rows: number; kept: number }> {
  return store.locked(async () => {
    let rows = 0;
    let kept = 0;
    await withAtomicFile(join(outputDir, CSV_NAME), async (csvTmp) =>
      withAtomicFile(join(outputDir, KEEP_LIST_NAME), async (keepTmp) => {
        const csv = await open(csvTmp, 'w');
        const keep = await open(keepTmp, 'w');
        try {
          await csv.write(`${CSV_COLUMNS.join(',')}\n`);
          for (const u of units) {
            const r = await store.read(u);
            if (!r) continue;
            rows += r.rows;
            kept += r.rows - r.removed;
            if (r.csv) await csv.write(r.csv);
            if (r.keep) await keep.write(r.keep);
          }
        } finally {
          await csv.close();
          await keep.close();
        }
      }),
    );
    return { rows, kept };
  });
}
