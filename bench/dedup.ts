/**
 * The `dedup` row of `npm run bench`: N synthetic 8-frame fingerprints (random, 5 % of them
 * planted near-copies of others, 0 to 6 bits per frame flipped), written as a clips output's
 * clips.csv with a `fingerprint` column, then `dedup()` end to end on it: read the table, banded
 * LSH, groups, duplicates.csv and keep.txt. Target: 100,000 in under a minute on this machine.
 * Every planted copy must be found (checked, not timed).
 *
 *   npx tsx bench/dedup.ts [--count=100000]      alone; `bench/run.ts` calls benchDedup()
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dedup } from '../src/jobs/dedup.js';
import { parseCsv } from '../src/util/csv.js';
import type { BenchRow } from './measure.js';
import { mulberry32 } from '../src/util/random.js';

const r2 = (x: number) => Math.round(x * 100) / 100;

/** clips.csv text for `count` clips: fingerprints with planted copies; returns the text and the planted (copy, original) pairs. */
function syntheticTable(count: number, seed = 5): { csv: string; planted: Array<[number, number]> } {
  const rand = mulberry32(seed);
  const words = new Uint32Array(count * 16);
  const planted: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    if (i > 10 && rand() < 0.05) {
      const of = Math.floor(rand() * i);
      planted.push([i, of]);
      for (let f = 0; f < 8; f++) {
        let hi = words[of * 16 + 2 * f]!;
        let lo = words[of * 16 + 2 * f + 1]!;
        const flips = Math.floor(rand() * 7);
        for (let k = 0; k < flips; k++) {
          const bit = Math.floor(rand() * 64);
          if (bit < 32) hi ^= 1 << (31 - bit);
          else lo ^= 1 << (63 - bit);
        }
        words[i * 16 + 2 * f] = hi >>> 0;
        words[i * 16 + 2 * f + 1] = lo >>> 0;
      }
    } else {
      for (let k = 0; k < 16; k++) words[i * 16 + k] = Math.floor(rand() * 2 ** 32);
    }
  }
  const lines = ['clip_id,filename,start_s,end_s,num_frames,fingerprint'];
  for (let i = 0; i < count; i++) {
    let fp = '';
    for (let k = 0; k < 16; k++) fp += words[i * 16 + k]!.toString(16).padStart(8, '0');
    lines.push(`c${i},c${i}.mp4,0,${(2 + (i % 7)).toFixed(1)},${50 + (i % 7) * 25},${fp}`);
  }
  return { csv: `${lines.join('\n')}\n`, planted };
}

export async function benchDedup(options: { count: number; log: (s: string) => void }): Promise<{ rows: BenchRow[]; figures: Record<string, unknown> }> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-dedup-'));
  try {
    const { csv, planted } = syntheticTable(options.count);
    await writeFile(join(dir, 'clips.csv'), csv);
    const loadBefore = loadavg().map(r2);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const report = await dedup({ input: dir, maxDistance: 12, keep: 'longest' });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const loadAfter = loadavg().map(r2);
    // Every planted copy in its original's group.
    const groupOf = new Map(parseCsv(await readFile(report.duplicatesCsv, 'utf8')).map((r) => [r.clip_id!, r.group!]));
    const missed = planted.filter(([c, o]) => groupOf.get(`c${c}`) === undefined || groupOf.get(`c${c}`) !== groupOf.get(`c${o}`)).length;
    const allPairs = (options.count * (options.count - 1)) / 2;
    options.log(
      `dedup: ${options.count} fingerprints in ${r2(seconds)} s (CPU ${r2((cpu.user + cpu.system) / 1e6)} s), ${report.groups} groups, ${report.dropped} dropped, ` +
        `${planted.length} planted copies, ${missed} missed; ${report.compared} pairs compared of ${allPairs}; bands ${JSON.stringify(report.plan)}; load ${loadBefore} -> ${loadAfter}`,
    );
    const figures = {
      count: options.count,
      seconds: r2(seconds),
      cpuSeconds: r2((cpu.user + cpu.system) / 1e6),
      planted: planted.length,
      missed,
      groups: report.groups,
      dropped: report.dropped,
      compared: report.compared,
      allPairs,
      plan: report.plan,
      loadAverage: { before: loadBefore, after: loadAfter },
    };
    const rows: BenchRow[] = [
      {
        item: 'dedup',
        metric: `${options.count.toLocaleString('en')} fingerprints end to end: read clips.csv, LSH, groups, CSV (s)`,
        ours: String(r2(seconds)),
        reference: '60 s',
        ratio: r2(seconds / 60),
        target: '≤ 1',
        met: seconds <= 60 && missed === 0,
      },
      {
        item: 'dedup',
        metric: 'pairs compared exactly, of all pairs; planted copies missed',
        ours: `${report.compared} / ${missed} missed of ${planted.length}`,
        reference: String(allPairs),
        ratio: allPairs > 0 ? Number((report.compared / allPairs).toPrecision(2)) : null,
        target: '(info)',
        met: null,
      },
    ];
    return { rows, figures };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = process.argv.find((a) => a.startsWith('--count='));
  const count = arg ? Number(arg.slice('--count='.length)) : 100_000;
  const { rows } = await benchDedup({ count, log: (s) => process.stderr.write(`${s}\n`) });
  for (const r of rows)
    process.stdout.write(
      `| ${r.item} | ${r.metric} | ${r.ours} | ${r.reference} | ${r.ratio ?? ''} | ${r.target} | ${r.met === null ? '' : r.met ? 'yes' : 'NO'} |\n`,
    );
}
