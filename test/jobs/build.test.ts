/**
 * `npm run build` (scripts/build.mjs) never leaves dist/ missing: the first `npx clipstream` in a
 * checkout runs the package's `prepare`, this build, while the suite runs the CLI from the same
 * dist/ (a fresh-clone CI run once failed six docs blocks on "dist/ is missing" that way).
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/run-cli.js';

describe('npm run build', () => {
  it('swaps a fresh dist/ in: never missing while it runs, no stale file left', { timeout: 180_000 }, async () => {
    const entry = join(REPO, 'dist', 'cli', 'run.js');
    const stale = join(REPO, 'dist', 'stale-planted-by-build-test.js');
    writeFileSync(stale, '// a file of a deleted source\n');
    const child = spawn(process.execPath, [join(REPO, 'scripts', 'build.mjs')], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let exited = false;
    void done.then(() => {
      exited = true;
    });
    let checks = 0;
    let missing = 0;
    while (!exited) {
      checks++;
      if (!existsSync(entry)) missing++;
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await done, stderr).toBe(0);
    expect(checks).toBeGreaterThan(100);
    expect(missing, `dist/cli/run.js was missing in ${missing} of ${checks} checks during the build`).toBe(0);
    expect(existsSync(entry)).toBe(true);
    expect(existsSync(stale)).toBe(false);
  });
});
