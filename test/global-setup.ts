import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The CLI tests run the real `bin/clipstream.js`, which loads dist/: build it once, fresh, as
// `npm run build` does (scripts/build.mjs: into a folder of its own, swapped in by rename, so a
// test never finds dist/ missing, even when `npx clipstream` runs the package's `prepare` meanwhile).
export default function setup(): void {
  // `npm run test:unit` runs only test/unit, which never loads dist/: no build.
  if (process.env.CLIPSTREAM_TEST_NO_BUILD === '1') return;
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
}
