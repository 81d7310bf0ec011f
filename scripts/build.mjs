// `npm run build`: compile src/ into dist/ without dist/ ever being missing or half written.
//
// tsc writes into a folder of its own, which then replaces dist/ by two renames. A CLI or a test
// that is running meanwhile keeps working. It matters in practice: the first `npx clipstream` in a
// checkout installs the checkout into npm's npx cache as a linked package and runs its `prepare`
// script, this build, in the checkout, while other commands in it may be running (the test suite
// does exactly that). A fresh folder each time means no file of a deleted source lingers in dist/.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist');
const fresh = join(root, `.dist-build-${process.pid}`);
const old = join(root, `.dist-old-${process.pid}`);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(fresh, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', fresh], { cwd: root, stdio: 'inherit' });
} catch {
  rmSync(fresh, { recursive: true, force: true });
  process.exit(1);
}
try {
  renameSync(dist, old);
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
renameSync(fresh, dist);
rmSync(old, { recursive: true, force: true });
