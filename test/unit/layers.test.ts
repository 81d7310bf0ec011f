import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The layer check (`npm run check:layers`, .dependency-cruiser.cjs) on folders laid out like src/:
// it must report each kind of violation, pass a tree without any, and pass the real src/.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

function depcruise(cwd: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG, '--output-type', 'err'], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Legal imports only: each goes to its own layer or a lower one. */
const CLEAN: Record<string, string> = {
  'src/errors.ts': 'export class Oops extends Error {}\n',
  'src/types.ts': "import type { Oops } from './errors.js';\nexport type Warn = (w: Oops) => void;\n",
  'src/util/fmt.ts': "import { Oops } from '../errors.js';\nexport const fmt = (s: string) => { if (!s) throw new Oops(); return s; };\n",
  'src/stage/kit.ts': "import { fmt } from '../util/fmt.js';\nexport const stage = (n: string) => fmt(n);\n",
  'src/media/probe.ts': "import { stage } from '../stage/kit.js';\nexport const probe = () => stage('probe');\n",
  'src/shards/read.ts': "import { probe } from '../media/probe.js';\nexport const read = () => probe();\n",
  'src/infer/run.ts': "import { read } from '../shards/read.js';\nexport const infer = () => read();\n",
  'src/clips/cut.ts': "import { infer } from '../infer/run.js';\nexport const cut = () => infer();\n",
  'src/faces/crop.ts': "import { probe } from '../media/probe.js';\nexport const crop = () => probe();\n",
  'src/run/runner.ts': "import { cut } from '../clips/cut.js';\nexport const runJob = () => cut();\n",
  'src/scale/queue.ts': "import { runJob } from '../run/runner.js';\nexport const queue = () => runJob();\n",
  'src/jobs/clips.ts': "import { crop } from '../faces/crop.js';\nimport { queue } from '../scale/queue.js';\nexport const clips = () => [queue(), crop()];\n",
  'src/cli/main.ts': "import { clips } from '../jobs/clips.js';\nexport const main = () => clips();\n",
  'src/index.ts': "export { main } from './cli/main.js';\nexport type { Warn } from './types.js';\n",
  'test/helper.ts': 'export const helper = 1;\n',
};

/** One of each kind of violation, added to the clean tree. */
const BAD: Record<string, string> = {
  // up a layer: util imports the CLI
  'src/util/up.ts': "import { main } from '../cli/main.js';\nexport const up = () => main();\n",
  // a circle inside one layer
  'src/media/a.ts': "import { b } from './b.js';\nexport const a = () => b();\n",
  'src/media/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
  // a job folder importing another
  'src/segments/split.ts': "import { cut } from '../clips/cut.js';\nexport const split = () => cut();\n",
  // the library importing a test file
  'src/shards/leak.ts': "import { helper } from '../../test/helper.js';\nexport const leak = helper;\n",
  // a folder in no layer
  'src/extras/thing.ts': "import { fmt } from '../util/fmt.js';\nexport const thing = fmt('x');\n",
};

const dirs: string[] = [];
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-layers-'));
  dirs.push(dir);
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src', 'test'] }),
  );
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the layer check (.dependency-cruiser.cjs)', () => {
  it('passes a tree whose imports all go down or sideways', async () => {
    const r = depcruise(await tree(CLEAN));
    expect(r.out).toMatch(/no dependency violations found/);
    expect(r.code).toBe(0);
  });

  it('reports an upward import, a circle, a job-to-job import, a test file imported by src/ and a folder in no layer', async () => {
    const r = depcruise(await tree({ ...CLEAN, ...BAD }));
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('error no-up-from-util: src/util/up.ts → src/cli/main.ts');
    expect(r.out).toMatch(/error no-circular: src\/media\/(a|b)\.ts →/);
    expect(r.out).toContain('error no-job-to-job: src/segments/split.ts → src/clips/cut.ts');
    expect(r.out).toContain('error no-src-to-outside: src/shards/leak.ts → test/helper.ts');
    expect(r.out).toContain('error no-layer: src/extras/thing.ts → src/util/fmt.ts');
    // Nothing else: the clean part of the tree stays clean next to them.
    const errors = r.out.split('\n').filter((l) => /^\s*error /.test(l));
    expect(errors.filter((l) => !/src\/(util\/up|media\/[ab]|segments\/split|shards\/leak|extras\/thing)\.ts/.test(l))).toEqual([]);
  });

  it('passes on src/', () => {
    const r = depcruise(ROOT);
    expect(r.out).toMatch(/no dependency violations found/);
    expect(r.code).toBe(0);
  });
});
