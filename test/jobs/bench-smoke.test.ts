import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { NO_REDIS } from '../helpers/redis.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Checks that the bench still runs end to end (workload, every section, table, JSON line), so a
// section broken by a change fails here. Timings vary with the machine, so no figure is asserted,
// only that each one is there.
/** Every section of bench/run.ts (its `--only` names), each timed in `figures.sections`. */
const SECTIONS = 'decode infer batching pipeline naive scaling memory queue faces clips scores segments shots semdedup dedup'.split(' ');

describe('bench --smoke', () => {
  it('runs every section on tiny clips and prints the table and one JSON line', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), '--smoke', '--json'], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
      // Every section, the queue's CLI processes and the faces, clips, shots and semdedup children
      // included: about 80 CPU seconds, mostly one process at a time.
      timeout: 290_000,
    });
    expect(stdout).toContain('| item | metric |');
    // Smoke figures are not judged against the targets: no `met` column, and the table says why.
    expect(stdout).toContain('not measurements of the targets');
    expect(stdout).not.toContain('| met |');
    const line = stdout.trim().split('\n').pop()!;
    const figures = JSON.parse(line) as Record<string, unknown>;
    expect(figures.mode).toBe('smoke');
    expect(figures.judged).toBe(false);
    const timed = (figures.sections as Array<{ section: string }>).map((s) => s.section);
    for (const section of SECTIONS) expect(timed, section).toContain(section);
    for (const key of ['decode', 'inference', 'batching', 'pipeline', 'naive', 'scaling', 'memory', 'segments', 'shots', 'semdedup', 'dedup']) {
      expect(figures, key).toHaveProperty(key);
    }
    const rows = figures.rows as Array<{ item: string; met: boolean | null }>;
    const items = ['1 decode', '2 inference', '3 pipeline', '4 vs script', '5 memory', '6 batching', '7 scaling', '8 segments'];
    items.push('faces memory', 'faces speed', 'clips cost per clip', 'clips tables', 'scores cost', 'shots speed', 'shots memory');
    items.push('semdedup scale', 'semdedup memory', 'semdedup engine', 'dedup');
    // Without redis-server the queue section says so and adds no row (bench/queue.ts).
    if (!NO_REDIS) items.push('8 queue');
    for (const item of items) {
      expect(
        rows.some((r) => r.item === item),
        item,
      ).toBe(true);
    }
    expect(rows.filter((r) => r.met !== null)).toEqual([]);
  }, 300_000);
});
