import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Checks that the bench still runs end to end (workload, every section, table, JSON line).
// Timings vary with the machine, so no figure is asserted, only that each one is there.
describe('bench --smoke', () => {
  it('runs every section on tiny clips and prints the table and one JSON line', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), '--smoke', '--json'], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 170_000,
    });
    expect(stdout).toContain('| item | metric |');
    const line = stdout.trim().split('\n').pop()!;
    const figures = JSON.parse(line) as Record<string, unknown>;
    expect(figures.mode).toBe('smoke');
    for (const key of ['decode', 'inference', 'batching', 'pipeline', 'naive', 'scaling', 'memory', 'segments']) {
      expect(figures, key).toHaveProperty(key);
    }
    const rows = figures.rows as Array<{ item: string }>;
    for (const item of ['1 decode', '2 inference', '3 pipeline', '4 vs script', '5 memory', '6 batching', '7 scaling', '8 segments']) {
      expect(
        rows.some((r) => r.item === item),
        item,
      ).toBe(true);
    }
  }, 180_000);
});
