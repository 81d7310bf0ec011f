import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readBuildWeights } from '../../src/cli/models-command.js';
import { fetchModel } from '../../src/models/fetch.js';
import { findModel, REGISTRY, resolveModel, type RegistryModel } from '../../src/models/registry.js';
import { selectStateDict } from '../../src/models/safetensors.js';
import { buildVggish, describeVggish, VGGISH_FULL, VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS, type VggishConfig } from '../../src/models/vggish.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { REPO, runCli, runCliAsync } from '../helpers/run-cli.js';
import { HAS_ULTRAFACE, SHARED_MISSING, ULTRAFACE_DIR } from '../helpers/shared.js';

/**
 * `models fetch` against a real HTTP server on 127.0.0.1 serving the published UltraFace files
 * (../shared/models/ultraface): Range resume after a dropped connection, a checksum mismatch,
 * a 404, offline --from, and the CLI end to end.
 */
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Server {
  url: string;
  requests: Array<{ path: string; range?: string }>;
  /** Next GET of this file closes the connection after that many bytes. */
  dropAfter: Map<string, number>;
  /** Files served with one byte changed. */
  corrupt: Set<string>;
  /** Files served cut to this many bytes (a complete response of the wrong file). */
  cut: Map<string, number>;
  close(): Promise<void>;
}

async function serve(dirs: string[]): Promise<Server> {
  const requests: Server['requests'] = [];
  const dropAfter = new Map<string, number>();
  const corrupt = new Set<string>();
  const cut = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('/').pop() ?? '');
    requests.push({ path: req.url ?? '', range: req.headers.range });
    const dir = dirs.find((d) => existsSync(join(d, name)));
    if (!dir || !name || req.url !== `/models/${name}`) {
      res.writeHead(404).end('not found');
      return;
    }
    let body = await readFile(join(dir, name));
    if (corrupt.has(name)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    if (cut.has(name)) body = body.subarray(0, cut.get(name));
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const headers: http.OutgoingHttpHeaders = { 'content-length': body.length - start, 'accept-ranges': 'bytes' };
    if (m) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(m ? 206 : 200, headers);
    const drop = dropAfter.get(name);
    if (drop !== undefined) {
      dropAfter.delete(name);
      res.write(body.subarray(start, start + drop), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/models`,
    requests,
    dropAfter,
    corrupt,
    cut,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function listAll(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

describe('model registry', () => {
  it('every entry has a name, kind, licence, purpose, ONNX file and https URLs; known checksums are 64 hex digits', () => {
    expect(new Set(REGISTRY.map((m) => m.name)).size).toBe(REGISTRY.length);
    for (const m of REGISTRY) {
      expect(m.licence.length, m.name).toBeGreaterThan(2);
      expect(m.purpose.length, m.name).toBeGreaterThan(10);
      expect(m.onnx.endsWith('.onnx'), m.name).toBe(true);
      for (const f of m.files) {
        expect(f.url, m.name).toMatch(/^https:\/\/[^ ]+\/[^/ ]+$/);
        expect(f.url.endsWith(`/${f.file}`), `${m.name}: the URL serves ${f.file}`).toBe(true);
        if (f.sha256 !== null) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
        if (f.sha256Prefix) expect(f.file).toContain(f.sha256Prefix);
      }
      if (m.build) expect(m.files.map((f) => f.file)).toContain(m.build.weights);
    }
    for (const name of [
      'ultraface-rfb-640',
      'ultraface-rfb-320',
      'scrfd-10g',
      'scrfd-2.5g',
      'yunet',
      'rvm-mobilenetv3',
      'rvm-resnet50',
      'vggish',
      'slowfast_8x8_r50',
    ]) {
      expect(findModel(name), name).toBeDefined();
    }
    expect(findModel('SLOWFAST-8x8-R50')?.name).toBe('slowfast_8x8_r50');
  });

  it.skipIf(!HAS_ULTRAFACE)('the UltraFace entries match the published files in ../shared (size and sha256)', async () => {
    for (const [name, file] of [
      ['ultraface-rfb-640', 'version-RFB-640.onnx'],
      ['ultraface-rfb-320', 'version-RFB-320.onnx'],
    ]) {
      const bytes = await readFile(join(ULTRAFACE_DIR, file!));
      const f = findModel(name!)!.files[0]!;
      expect(f.bytes).toBe(bytes.length);
      expect(f.sha256).toBe(sha(bytes));
    }
  });

  it('resolveModel: paths pass through; a name not fetched says how to fetch; a name of another kind is refused', () => {
    const env = { CLIPSTREAM_HOME: '/nonexistent/cache' };
    expect(resolveModel('models/x.onnx', { kind: 'visual', env }).path).toBe('models/x.onnx');
    expect(() => resolveModel('vggish', { kind: 'audio', option: '--audio_model', env })).toThrow(
      '--audio_model=vggish: model vggish is not in the cache (/nonexistent/cache/vggish/vggish.onnx); fetch it with: clipstream models fetch vggish',
    );
    expect(() => resolveModel('ultraface-rfb-640', { kind: 'visual', option: '--visual_model', env })).toThrow(
      '--visual_model=ultraface-rfb-640: ultraface-rfb-640 is a face detector, not a visual model (registry visual models: slowfast_8x8_r50)',
    );
  });
});

describe.skipIf(!HAS_ULTRAFACE)('models fetch over HTTP (127.0.0.1)', () => {
  let server: Server;
  let home = '';
  const env = () => ({ CLIPSTREAM_HOME: home });
  beforeAll(async () => {
    server = await serve([ULTRAFACE_DIR, join(REPO, 'fixtures', 'checkpoints')]);
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'clipstream-home-'));
    server.requests.length = 0;
    return () => rm(home, { recursive: true, force: true });
  });

  it('resumes after a dropped connection with a Range request and verifies the file', async () => {
    server.dropAfter.set('version-RFB-640.onnx', 600_000);
    const r = await fetchModel('ultraface-rfb-640', { env: env(), baseUrl: server.url, retryDelayMs: 10 });
    const want = await readFile(join(ULTRAFACE_DIR, 'version-RFB-640.onnx'));
    expect(r.files[0]!.resumed).toBe(1);
    expect(server.requests.map((q) => q.range)).toEqual([undefined, 'bytes=600000-']);
    expect(sha(await readFile(r.onnx))).toBe(sha(want));
    expect(r.onnx).toBe(join(home, 'ultraface-rfb-640', 'version-RFB-640.onnx'));
    expect(await listAll(join(home, 'ultraface-rfb-640'))).toEqual(['version-RFB-640.onnx']);
    // A second fetch finds it in the cache, checks it, and downloads nothing.
    const again = await fetchModel('ultraface-rfb-640', { env: env(), baseUrl: server.url });
    expect(again.files[0]!.how).toBe('cached');
    expect(server.requests).toHaveLength(2);
  });

  it('a checksum mismatch is an error naming file, expected and found, and nothing is kept', async () => {
    server.corrupt.add('version-RFB-320.onnx');
    try {
      const body = Buffer.from(await readFile(join(ULTRAFACE_DIR, 'version-RFB-320.onnx')));
      body[body.length >> 1] ^= 0xff;
      await expect(fetchModel('ultraface-rfb-320', { env: env(), baseUrl: server.url })).rejects.toThrow(
        `ultraface-rfb-320: version-RFB-320.onnx: sha256 mismatch: expected 34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017, found ${sha(body)}; nothing was kept`,
      );
      expect(await listAll(join(home, 'ultraface-rfb-320'))).toEqual([]);
    } finally {
      server.corrupt.delete('version-RFB-320.onnx');
    }
  });

  it('a run killed mid-download resumes from its .part file with a Range request', async () => {
    const want = await readFile(join(ULTRAFACE_DIR, 'version-RFB-320.onnx'));
    await mkdir(join(home, 'ultraface-rfb-320'), { recursive: true });
    await writeFile(join(home, 'ultraface-rfb-320', '.version-RFB-320.onnx.download.part'), want.subarray(0, 500_000));
    const r = await fetchModel('ultraface-rfb-320', { env: env(), baseUrl: server.url });
    expect(server.requests.map((q) => q.range)).toEqual(['bytes=500000-']);
    expect(r.files[0]).toMatchObject({ how: 'downloaded', resumed: 1, verified: true });
    expect(sha(await readFile(r.onnx))).toBe(sha(want));
    expect(await listAll(join(home, 'ultraface-rfb-320'))).toEqual(['version-RFB-320.onnx']);
  });

  it('a file of the wrong size is an error naming file, size found and expected; nothing is kept', async () => {
    server.cut.set('version-RFB-640.onnx', 1_000_000);
    try {
      await expect(fetchModel('ultraface-rfb-640', { env: env(), baseUrl: server.url })).rejects.toThrow(
        'ultraface-rfb-640: version-RFB-640.onnx has 1000000 bytes, expected 1588012',
      );
      expect(await listAll(join(home, 'ultraface-rfb-640'))).toEqual([]);
    } finally {
      server.cut.delete('version-RFB-640.onnx');
    }
  });

  it('a 404 names the URL and keeps nothing; an unknown name lists the known ones', async () => {
    await expect(fetchModel('ultraface-rfb-320', { env: env(), baseUrl: `${server.url}/nowhere`, retries: 0 })).rejects.toThrow(
      `download of ${server.url}/nowhere/version-RFB-320.onnx failed: HTTP 404`,
    );
    expect(await listAll(join(home, 'ultraface-rfb-320'))).toEqual([]);
    await expect(fetchModel('ultraface-9000', { env: env() })).rejects.toThrow("models fetch: unknown model 'ultraface-9000'; known: ultraface-rfb-640, ");
  });

  it('--from=DIR takes files copied by hand, checked the same way', async () => {
    const r = await fetchModel('ultraface-rfb-320', { env: env(), from: ULTRAFACE_DIR });
    expect(r.files[0]).toMatchObject({ how: 'copied', verified: true, sha256: '34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017' });
    expect(server.requests).toHaveLength(0);
    const empty = await mkdtemp(join(tmpdir(), 'from-'));
    try {
      await expect(fetchModel('ultraface-rfb-640', { env: env(), from: empty })).rejects.toThrow(
        `ultraface-rfb-640: --from=${empty} has no version-RFB-640.onnx`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('a checkpoint model: both files fetched, sha256 prefix checked, the seen sha256 recorded, built to ONNX once', async () => {
    const ck = await readFile(join(REPO, 'fixtures', 'checkpoints', 'vggish_tiny.pth'));
    const entry: RegistryModel = {
      name: 'vggish-tiny',
      kind: 'audio',
      purpose: 'test: the reduced VGGish checkpoint',
      licence: 'test',
      source: 'fixtures',
      files: [
        { file: 'vggish_tiny.pth', url: 'https://example.invalid/vggish_tiny.pth', bytes: ck.length, sha256: null, sha256Prefix: sha(ck).slice(0, 8) },
        { file: 'vggish_tiny_pca.pth', url: 'https://example.invalid/vggish_tiny_pca.pth', bytes: null, sha256: null },
      ],
      onnx: 'vggish.onnx',
      build: { arch: 'vggish', weights: 'vggish_tiny.pth', pca: 'vggish_tiny_pca.pth', dataset: 'YouTube-8M' },
    };
    const cfg: VggishConfig = { ...VGGISH_FULL, ...JSON.parse(await readFile(join(REPO, 'fixtures', 'reference', 'vggish_tiny.json'), 'utf8')).config };
    const calls: Array<Record<string, unknown>> = [];
    // The real importer and builder at the reduced width (models build only knows full/small).
    const build = async (args: Record<string, unknown>) => {
      calls.push(args);
      const file = await readBuildWeights(args.weights as string, args.pca as string);
      const e = cfg.fcWidths[2];
      const params = selectStateDict(
        file,
        describeVggish(cfg).stateDictShapes,
        new Map([
          [VGGISH_PCA_MATRIX, [e, e]],
          [VGGISH_PCA_MEANS, [e]],
        ]),
      );
      params.set(VGGISH_PCA_MEANS, { shape: [e, 1], data: params.get(VGGISH_PCA_MEANS)!.data });
      await writeFileAtomic(args.out as string, buildVggish(cfg, { params, sha256: file.sha256, dataset: args.dataset as string }).bytes);
    };
    const r = await fetchModel('vggish-tiny', { env: env(), baseUrl: server.url, registry: [entry], build });
    expect(r.built).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      arch: 'vggish',
      width: 'full',
      weights: join(r.dir, 'vggish_tiny.pth'),
      pca: join(r.dir, 'vggish_tiny_pca.pth'),
      out: r.onnx,
    });
    const record = JSON.parse(await readFile(join(r.dir, 'fetched.json'), 'utf8'));
    expect(record['vggish_tiny.pth'].sha256).toBe(sha(ck));
    expect(existsSync(r.onnx)).toBe(true);
    // Fetched again: nothing downloaded or built; a file changed since is caught against the recorded sha256.
    const n = server.requests.length;
    expect((await fetchModel('vggish-tiny', { env: env(), baseUrl: server.url, registry: [entry], build })).built).toBe(false);
    expect(server.requests).toHaveLength(n);
    const pca = Buffer.from(await readFile(join(r.dir, 'vggish_tiny_pca.pth')));
    pca[100] ^= 1;
    await writeFile(join(r.dir, 'vggish_tiny_pca.pth'), pca);
    await expect(fetchModel('vggish-tiny', { env: env(), registry: [entry], build })).rejects.toThrow(
      'vggish-tiny: vggish_tiny_pca.pth: sha256 mismatch: expected',
    );
    // A checkpoint that does not build says so, and where the fetched files are.
    const broken = { ...entry, name: 'vggish-broken', files: [entry.files[0]!], build: { ...entry.build!, pca: undefined } };
    await expect(
      fetchModel('vggish-broken', {
        env: env(),
        baseUrl: server.url,
        registry: [broken],
        build: (args) => readBuildWeights(args.weights as string, join(r.dir, 'vggish_tiny.pth')),
      }),
    ).rejects.toThrow(
      `vggish-broken: cannot build vggish.onnx: ${join(r.dir, 'vggish_tiny.pth')}: not a VGGish PCA file: no pca_eigen_vectors (or pproc.pca_matrix) tensor (the fetched files stay in ${join(home, 'vggish-broken')}; delete that folder to download them again)`,
    );
    // A wrong prefix (the name says which sha256 the file has) is refused.
    const bad = { ...entry, name: 'vggish-bad', files: [{ ...entry.files[0]!, sha256Prefix: '00000000' }] };
    await expect(fetchModel('vggish-bad', { env: env(), baseUrl: server.url, registry: [bad], build })).rejects.toThrow(
      'vggish-bad: vggish_tiny.pth: sha256 mismatch: expected one starting 00000000 (its name says so)',
    );
    expect(await listAll(join(home, 'vggish-bad'))).toEqual([]);
  });

  it('CLI: models fetch, models list, and jobs taking registry names', async () => {
    const e = { CLIPSTREAM_HOME: home, CLIPSTREAM_MODELS_BASE_URL: server.url };
    const f = await runCliAsync(['models', 'fetch', 'ultraface-rfb-640'], { env: e });
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout.trim()).toBe(join(home, 'ultraface-rfb-640', 'version-RFB-640.onnx'));
    expect(f.stderr).toContain('(matches the published one)');
    expect(f.stderr).toContain('use --detector=ultraface-rfb-640');
    const l = runCli(['models', 'list'], { env: e });
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/ultraface-rfb-640\s+face-detector\s+in cache/);
    expect(l.stdout).toMatch(/ultraface-rfb-320\s+face-detector\s+not fetched/);
    expect(l.stdout).toContain('det_2.5g.onnx  size unknown  sha256 unknown (recorded on fetch)');
    expect(l.stdout).toContain('vggish-10086976.pth  288.6 MB  sha256 unknown (prefix 10086976)');
    const missing = runCli(['faces', '--input_dir=fixtures/faces', `--output_dir=${join(home, 'out')}`, '--detector=ultraface-rfb-320'], { env: e });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--detector=ultraface-rfb-320: model ultraface-rfb-320 is not in the cache');
    expect(missing.stderr).toContain('fetch it with: clipstream models fetch ultraface-rfb-320');
    const kind = runCli(['extract', '--tar_path=fixtures/shards/shard-000000.tar', `--out_path=${join(home, 'feats')}`, '--visual_model=ultraface-rfb-640'], {
      env: e,
    });
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain('--visual_model=ultraface-rfb-640: ultraface-rfb-640 is a face detector, not a visual model');
    // extract takes a registry name from the cache (here the shipped small VGGish, placed where `models fetch vggish` puts its build).
    await mkdir(join(home, 'vggish'), { recursive: true });
    await writeFile(join(home, 'vggish', 'vggish.onnx'), await readFile(join(REPO, 'models', 'vggish_small.onnx')));
    const x = await runCliAsync(
      ['extract', '--tar_path=fixtures/shards/shard-000000.tar', `--out_path=${join(home, 'feats')}`, '--visual_model=none', '--audio_model=vggish', '--quiet'],
      { env: e },
    );
    expect(x.code, x.stderr).toBe(0);
    const records = await readFeatureShard(join(home, 'feats', 'shard-000000.msgpack'));
    expect(records.length).toBeGreaterThan(0);
    expect(records.some((rec) => rec.audio_features.length === 1 && rec.audio_features[0]!.extractor_name === 'VGGish-small')).toBe(true);
    expect(records.every((rec) => rec.visual_features.length === 0)).toBe(true);
    const unknown = runCli(['models', 'fetch', 'nope'], { env: e });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown model 'nope'");
    const bad = runCli(['models', 'fetch', 'yunet', '--frm=x'], { env: e });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('models fetch: unknown option --frm');
  });
});

if (!HAS_ULTRAFACE) console.warn(`models-fetch.test.ts: ${SHARED_MISSING}`);
