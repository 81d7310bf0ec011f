/**
 * The package a user installs: `npm pack` holds what a user runs (dist, bin, the shipped models,
 * README, LICENSE) and nothing else, and the tarball, installed into an empty folder from the
 * npm registry like any package, runs the README's first command (`npx clipstream extract`) on
 * a fixture shard and writes the feature shard the checkout writes, byte for byte.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARD_JSONS, FIXTURE_SHARDS } from '../../fixtures/index.js';
import { entryPoints } from '../../scripts/api-report.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import { BIN, REPO } from '../helpers/run-cli.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
/** What the package may hold; everything else (tests, fixtures, benchmarks, scripts, sources) stays home. */
const SHIPPED = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^bin\/clipstream\.js$/, /^models\/[\w.-]+\.(onnx|json|md)$/, /^dist\/.+\.(js|d\.ts)$/];
/** The models the jobs load by default from the package's models/ folder. */
const RUNTIME_MODELS = [
  'slowfast_small.onnx',
  'vggish_small.onnx',
  'ultraface_rfb_640.onnx',
  'face_detector_synthetic.onnx',
  'rvm_synthetic.onnx',
  'manifest.json',
];

interface PackResult {
  filename: string;
  entryCount: number;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

let dir = '';
let pack: PackResult;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-pack-'));
  // dist/ is fresh (test/global-setup.ts); --ignore-scripts keeps `prepare` from rebuilding it under the other tests.
  const out = execFileSync(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pack = (JSON.parse(out) as PackResult[])[0]!;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('holds only what a user runs: dist, bin, the shipped models, README, LICENSE', () => {
    const paths = pack.files.map((f) => f.path);
    expect(paths.filter((p) => !SHIPPED.some((re) => re.test(p)))).toEqual([]);
    for (const p of ['package.json', 'README.md', 'LICENSE', 'bin/clipstream.js', 'dist/cli/run.js', ...RUNTIME_MODELS.map((m) => `models/${m}`)]) {
      expect(paths, p).toContain(p);
    }
    // Every entry point of `exports` with its types; every dist file from a source that still exists.
    for (const e of entryPoints()) {
      const rel = e.source.slice(join(REPO, 'src').length + 1).replace(/\.ts$/, '');
      expect(paths).toContain(`dist/${rel}.js`);
      expect(paths).toContain(`dist/${rel}.d.ts`);
    }
    const stale = paths.filter((p) => p.startsWith('dist/') && !existsSync(join(REPO, 'src', p.slice(5).replace(/(\.d\.ts|\.js)$/, '.ts'))));
    expect(stale, 'dist/ files without a source: run `npm run build` (it empties dist/ first)').toEqual([]);
    // About 3.8 MB of code and small models, plus the real UltraFace RFB-640 detector (1.6 MB) that
    // `faces` runs by default; a model or fixture that sneaks in makes it fail.
    expect(pack.unpackedSize).toBeLessThan(6 * 1024 * 1024);
  });
});

describe('the packed tarball installed into an empty folder', () => {
  it('runs the README first command, `npx clipstream extract`, on a shipped fixture shard', { timeout: 600_000 }, async () => {
    const app = join(dir, 'app');
    await mkdir(app);
    // A user's project: npm 11 runs no install script it was not told to; onnxruntime-node's
    // (a CUDA download) is refused outright, as in our own package.json.
    await writeFile(
      join(app, 'package.json'),
      `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', allowScripts: { 'onnxruntime-node': false } }, null, 2)}\n`,
    );
    const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip', npm_config_update_notifier: 'false' };
    const install = spawnSync(NPM, ['install', '--no-audit', '--no-fund', join(dir, pack.filename)], { cwd: app, env, encoding: 'utf8', timeout: 420_000 });
    expect(install.status, `npm install failed:\n${install.stderr}`).toBe(0);
    expect(existsSync(join(app, 'node_modules', 'clipstream', 'models', 'slowfast_small.onnx'))).toBe(true);

    await copyFile(FIXTURE_SHARDS[0]!, join(app, 'shard-000000.tar'));
    await copyFile(FIXTURE_SHARD_JSONS[0]!, join(app, 'shard-000000.json'));
    const run = spawnSync(NPX, ['clipstream', 'extract', '--tar_path=shard-000000.tar', '--out_path=out'], {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.split('\n').filter((l) => l.startsWith('npm warn'))).toEqual([]);
    expect(run.stderr).toMatch(/clipstream extract: 1 shard\(s\) written/);

    const written = join(app, 'out', 'shard-000000.msgpack');
    const records = await readFeatureShard(written);
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.visual_features.map((f) => f.extractor_name)).toEqual(['SLOWFAST_8x8_R50-small']);
      expect(Object.keys(r.visual_features[0]!.feat_array)).toEqual(['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4']);
    }

    // The checkout's CLI on the same shard writes the same bytes.
    const ref = join(dir, 'ref');
    await mkdir(ref);
    await copyFile(FIXTURE_SHARDS[0]!, join(ref, 'shard-000000.tar'));
    await copyFile(FIXTURE_SHARD_JSONS[0]!, join(ref, 'shard-000000.json'));
    const home = spawnSync(process.execPath, [BIN, 'extract', '--tar_path=shard-000000.tar', '--out_path=out'], {
      cwd: ref,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(home.status, home.stderr).toBe(0);
    expect((await readFile(written)).equals(await readFile(join(ref, 'out', 'shard-000000.msgpack')))).toBe(true);
  });
});
