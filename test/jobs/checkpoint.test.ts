import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBuildWeights } from '../../src/cli/models-command.js';
import { caffe2ToPytorchName, conformShapes, parseCheckpoint, readWeightsFile } from '../../src/models/checkpoint.js';
import { unpickle } from '../../src/models/pickle.js';
import { readSafetensors, selectStateDict, type SafetensorsFile } from '../../src/models/safetensors.js';
import { buildSlowFast, describeSlowFast, SLOWFAST_FULL, type SlowFastConfig } from '../../src/models/slowfast.js';
import { buildVggish, describeVggish, VGGISH_FULL, VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS, type VggishConfig } from '../../src/models/vggish.js';
import { REPO, runCli } from '../helpers/run-cli.js';

/**
 * fixtures/checkpoints/* were written by real PyTorch (scripts/make-checkpoint-fixtures.py) from
 * the reference state dicts in fixtures/reference/; the reader must give back exactly those
 * tensors, and the ONNX model built from each checkpoint must be the one built from the
 * safetensors file, byte for byte (apart from the sha256 of the weights file it records).
 */
const CK = join(REPO, 'fixtures', 'checkpoints');
const REF = join(REPO, 'fixtures', 'reference');
const PWNED = '/tmp/clipstream-pickle-pwned';

async function config(name: string) {
  return (JSON.parse(await readFile(join(REF, `${name}.json`), 'utf8')) as { config: Record<string, unknown> }).config;
}

function sameTensors(a: SafetensorsFile, b: SafetensorsFile, names: Iterable<string>) {
  for (const n of names) {
    const x = a.tensor(n);
    const y = b.tensor(n);
    expect(x.shape, n).toEqual(y.shape);
    expect(Buffer.from(x.data.buffer).equals(Buffer.from(y.data.buffer)), n).toBe(true);
  }
}

async function vggishModel(file: SafetensorsFile): Promise<Buffer> {
  const cfg: VggishConfig = { ...VGGISH_FULL, ...((await config('vggish_tiny')) as Partial<VggishConfig>) };
  const e = cfg.fcWidths[2];
  const params = selectStateDict(
    file,
    describeVggish(cfg).stateDictShapes,
    new Map([
      [VGGISH_PCA_MATRIX, [e, e]],
      [VGGISH_PCA_MEANS, file.entries.get(VGGISH_PCA_MEANS)!.shape],
    ]),
  );
  params.set(VGGISH_PCA_MEANS, { shape: [e, 1], data: params.get(VGGISH_PCA_MEANS)!.data });
  return Buffer.from(buildVggish(cfg, { params, sha256: file.sha256, dataset: 'test' }).bytes);
}

async function slowFastModel(file: SafetensorsFile & { format?: string }): Promise<Buffer> {
  const cfg: SlowFastConfig = { ...SLOWFAST_FULL, ...((await config('slowfast_tiny')) as Partial<SlowFastConfig>) };
  const expected = describeSlowFast(cfg).stateDictShapes;
  if (file.format === 'caffe2-pickle') conformShapes(file, expected);
  const params = selectStateDict(file, expected);
  return Buffer.from(buildSlowFast(cfg, { params, sha256: file.sha256, dataset: 'test' }).bytes);
}

/** The model bytes with the recorded weights sha256 swapped for the reference's (same length). */
function withSha(model: Buffer, from: string, to: string): Buffer {
  const at = model.indexOf(from);
  expect(at, 'the model records the sha256 of its weights file').toBeGreaterThan(0);
  const out = Buffer.from(model);
  out.write(to, at, 'latin1');
  return out;
}

describe('checkpoint reader: files written by PyTorch', () => {
  it.each([
    ['vggish_tiny.pth', 'torch-zip', 'vggish_tiny'],
    ['vggish_tiny_legacy.pth', 'torch-legacy', 'vggish_tiny'],
    ['slowfast_tiny.pyth', 'torch-zip', 'slowfast_tiny'],
    ['slowfast_tiny.pkl', 'caffe2-pickle', 'slowfast_tiny'],
  ])('%s (%s) holds exactly the reference tensors', async (file, format, ref) => {
    const ck = await readWeightsFile(join(CK, file));
    const st = await readSafetensors(join(REF, `${ref}.weights.safetensors`));
    expect(ck.format).toBe(format);
    const want = [...st.entries.keys()].filter((n) => !n.startsWith('pproc.')).sort();
    expect([...ck.entries.keys()].sort()).toEqual(want);
    sameTensors(ck, st, want);
  });

  it('reads numpy float64 arrays inside a torch zip (torchvggish PCA file, _codecs.encode bytes)', async () => {
    const pca = await readWeightsFile(join(CK, 'vggish_tiny_pca.pth'));
    const st = await readSafetensors(join(REF, 'vggish_tiny.weights.safetensors'));
    expect(pca.entries.get('pca_eigen_vectors')!.dtype).toBe('F64');
    expect(pca.tensor('pca_eigen_vectors').data).toEqual(st.tensor(VGGISH_PCA_MATRIX).data);
    expect(pca.tensor('pca_means').shape).toEqual([16]);
    expect(pca.tensor('pca_means').data).toEqual(st.tensor(VGGISH_PCA_MEANS).data);
  });

  it('VGGish from .pth + PCA .pth is byte for byte the model from the safetensors file', async () => {
    const st = await readSafetensors(join(REF, 'vggish_tiny.weights.safetensors'));
    const ref = await vggishModel(st);
    for (const f of ['vggish_tiny.pth', 'vggish_tiny_legacy.pth']) {
      const ck = await readBuildWeights(join(CK, f), join(CK, 'vggish_tiny_pca.pth'));
      const ours = await vggishModel(ck);
      expect(ours.equals(ref)).toBe(false); // the recorded sha256 differs ...
      expect(withSha(ours, ck.sha256, st.sha256).equals(ref), f).toBe(true); // ... and nothing else
    }
  });

  it.each(['slowfast_tiny.pyth', 'slowfast_tiny.pkl'])('SlowFast from %s is byte for byte the model from the safetensors file', async (f) => {
    const st = await readSafetensors(join(REF, 'slowfast_tiny.weights.safetensors'));
    const ck = await readWeightsFile(join(CK, f));
    expect(withSha(await slowFastModel(ck), ck.sha256, st.sha256).equals(await slowFastModel(st))).toBe(true);
  });

  it('maps Caffe2 blob names as SlowFast does', () => {
    expect(caffe2ToPytorchName('res2_0_branch2a_bn_riv')).toBe('s2.pathway0_res0.branch2.a_bn.running_var');
    expect(caffe2ToPytorchName('t_res3_3_branch2c_bn_subsample_bn_rm')).toBe('s3_fuse.bn.running_mean');
    expect(caffe2ToPytorchName('t_conv1_w')).toBe('s1.pathway1_stem.conv.weight');
    expect(caffe2ToPytorchName('pred_b')).toBe('head.projection.bias');
  });
});

describe('checkpoint reader: the Python converter agrees', () => {
  const py = '/usr/bin/python3';
  const hasNumpy = existsSync(py) && spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.skipIf(!hasNumpy)('scripts/export-weights.py on the Caffe2 .pkl gives safetensors that build the same model', async () => {
    const out = join(dir, 'sf.safetensors');
    const r = spawnSync(py, [join(REPO, 'scripts', 'export-weights.py'), 'slowfast_r50', join(CK, 'slowfast_tiny.pkl'), '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const st = await readSafetensors(out);
    const ck = await readWeightsFile(join(CK, 'slowfast_tiny.pkl'));
    expect(withSha(await slowFastModel(ck), ck.sha256, st.sha256).equals(await slowFastModel(st))).toBe(true);
  });
});

describe('checkpoint reader: refuses what it does not understand', () => {
  it.each([
    ['malicious.pkl', 'refused pickle global posix.system'],
    ['malicious.pth', 'refused pickle global posix.system'],
  ])('%s (a __reduce__ calling os.system) is refused and nothing runs', async (file, message) => {
    await rm(PWNED, { force: true });
    await expect(readWeightsFile(join(CK, file))).rejects.toThrow(`${join(CK, file)}`);
    await expect(readWeightsFile(join(CK, file))).rejects.toThrow(message);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('control: Python itself does run the payload (so the fixture is a real attack)', () => {
    const py = '/usr/bin/python3';
    if (!existsSync(py)) return;
    const r = spawnSync(py, ['-c', `import pickle; pickle.load(open(${JSON.stringify(join(CK, 'malicious.pkl'))}, 'rb'))`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(existsSync(PWNED)).toBe(true);
    spawnSync('rm', ['-f', PWNED]);
  });

  it.each([
    [Buffer.from([0x80, 0x02, 0x63, ...Buffer.from('builtins\neval\n'), 0x2e]), 'refused pickle global builtins.eval'],
    [Buffer.from([0x80, 0x02, 0x69, 0x2e]), 'refused pickle opcode INST at offset 2'],
    [Buffer.from([0x80, 0x02, 0x7d, 0x71]), 'truncated pickle'],
  ])('unpickle refuses %#', (bytes, message) => {
    expect(() => unpickle(bytes, 0, { globals: new Map(), where: 'x.pkl' })).toThrow(message);
  });

  it('tells safetensors from pickles even when its header length begins with 0x80', async () => {
    const st = await readFile(join(REF, 'vggish_tiny.weights.safetensors'));
    expect(st[0]).toBe(0x80); // this fixture's header is 0x...80 bytes long
    expect((await readWeightsFile(join(REF, 'vggish_tiny.weights.safetensors'))).format).toBe('safetensors');
    expect(() => parseCheckpoint(Buffer.from('not weights at all'), 'x.bin')).toThrow('x.bin: not a PyTorch checkpoint (zip), a pickle or a safetensors file');
  });

  it('a truncated .pth names the file and the problem', async () => {
    const bytes = await readFile(join(CK, 'vggish_tiny.pth'));
    expect(() => parseCheckpoint(bytes.subarray(0, bytes.length - 200), 'cut.pth')).toThrow('cut.pth: not a readable zip archive');
  });

  it('CLI: models build with the malicious pickle exits 1 naming the global; with a .pth of the wrong width names the tensors', async () => {
    await rm(PWNED, { force: true });
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-cli-'));
    try {
      const bad = runCli(['models', 'build', '--arch=slowfast_r50', `--weights=${join(CK, 'malicious.pkl')}`, `--out=${join(dir, 'm.onnx')}`]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('refused pickle global posix.system');
      expect(existsSync(PWNED)).toBe(false);
      const wrong = runCli([
        'models',
        'build',
        '--arch=vggish',
        '--width=small',
        `--weights=${join(CK, 'vggish_tiny.pth')}`,
        `--pca=${join(CK, 'vggish_tiny_pca.pth')}`,
        `--out=${join(dir, 'v.onnx')}`,
      ]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('vggish_tiny.pth: weights do not fit the architecture');
      expect(wrong.stderr).toContain('tensor features.0.weight has shape [4, 1, 3, 3] but the architecture needs [8, 1, 3, 3]');
      expect(existsSync(join(dir, 'm.onnx')) || existsSync(join(dir, 'v.onnx'))).toBe(false);
      const pca = runCli([
        'models',
        'build',
        '--arch=slowfast_r50',
        `--weights=${join(CK, 'slowfast_tiny.pyth')}`,
        '--pca=x.pth',
        `--out=${join(dir, 'v.onnx')}`,
      ]);
      expect(pca.code).toBe(2);
      expect(pca.stderr).toContain('--pca applies to vggish only');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
