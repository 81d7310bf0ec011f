import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The CLI tests run the real `bin/clipstream.js`, which loads dist/: build it once per run, fresh (no
// file of a deleted source lingers there or in the pack). The build goes to a folder of its own and
// replaces dist/ by rename, so a test that is already running never sees dist/ missing or half
// written, whichever project's setup this is.
export default function setup(): void {
  // `npm run test:unit` runs only test/unit, which never loads dist/: no build.
  if (process.env.CLIPSTREAM_TEST_NO_BUILD === '1') return;
  // Once per vitest process, however many projects call this setup.
  if (process.env.CLIPSTREAM_TEST_DIST_BUILT === String(process.pid)) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dist = fileURLToPath(new URL('../dist', import.meta.url));
  const fresh = `${dist}.build-${process.pid}`;
  const old = `${dist}.old-${process.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json', '--outDir', fresh],
    { cwd: root, stdio: 'inherit' },
  );
  rmSync(old, { recursive: true, force: true });
  try {
    renameSync(dist, old);
  } catch {
    // no dist/ yet
  }
  renameSync(fresh, dist);
  rmSync(old, { recursive: true, force: true });
  process.env.CLIPSTREAM_TEST_DIST_BUILT = String(process.pid);
}
