import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The CLI tests run the real `bin/clipstream.js`, which loads dist/: build it once, fresh (dist/ is
// emptied first, as `npm run build` does, so no file of a deleted source lingers there or in the pack).
export default function setup(): void {
  // `npm run test:unit` runs only test/unit, which never loads dist/: no build.
  if (process.env.CLIPSTREAM_TEST_NO_BUILD === '1') return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  rmSync(fileURLToPath(new URL('../dist', import.meta.url)), { recursive: true, force: true });
  execFileSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
