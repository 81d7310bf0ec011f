import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModelFromArgs } from '../../src/cli/models-command.js';
import { ClipstreamError } from '../../src/errors.js';
import { readModelInfo } from '../../src/models/info.js';
import { encodeSafetensors, parseSafetensors, readSafetensors, selectStateDict, type TensorToWrite } from '../../src/models/safetensors.js';
import { describeSlowFast, SLOWFAST_SMALL } from '../../src/models/slowfast.js';
import { describeVggish, VGGISH_SMALL } from '../../src/models/vggish.js';

const REF_WEIGHTS = join(import.meta.dirname, '..', '..', 'fixtures', 'reference', 'vggish_tiny.weights.safetensors');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A raw safetensors file from a header object and data bytes, to write broken files on purpose. */
function raw(header: object, data: Uint8Array, declaredLength?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  return Buffer.concat([len, json, data]);
}

async function errorOf(fn: () => unknown): Promise<ClipstreamError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClipstreamError);
    return err as ClipstreamError;
  }
  throw new Error('expected an error');
}

describe('parseSafetensors', () => {
  it('reads F32, F16, BF16 and F64 (hand-encoded bytes) as float32', () => {
    const data = Buffer.alloc(4 + 2 * 3 + 2 * 2 + 8);
    data.writeFloatLE(-1.5, 0); // F32 [1]
    data.writeUInt16LE(0x3c00, 4); // F16 1.0
    data.writeUInt16LE(0xc000, 6); // F16 -2.0
    data.writeUInt16LE(0x0001, 8); // F16 smallest subnormal 2^-24
    data.writeUInt16LE(0x4049, 10); // BF16 3.140625
    data.writeUInt16LE(0xbf80, 12); // BF16 -1.0
    data.writeDoubleLE(0.1, 14); // F64
    const header = {
      __metadata__: { dataset: 'kinetics-400' },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      h: { dtype: 'F16', shape: [3], data_offsets: [4, 10] },
      b: { dtype: 'BF16', shape: [2, 1], data_offsets: [10, 14] },
      d: { dtype: 'F64', shape: [], data_offsets: [14, 22] },
    };
    const st = parseSafetensors(raw(header, data), 'x.safetensors');
    expect(st.metadata).toEqual({ dataset: 'kinetics-400' });
    expect([...st.tensor('a').data]).toEqual([-1.5]);
    expect([...st.tensor('h').data]).toEqual([1, -2, 2 ** -24]);
    expect(st.tensor('b')).toEqual({ shape: [2, 1], data: new Float32Array([3.140625, -1]) });
    expect(st.tensor('d').data[0]).toBe(Math.fround(0.1));
  });

  it('round-trips what encodeSafetensors writes, in every float dtype', () => {
    const values = new Float32Array([0, 1, -2.5, 1e-3, 65504, 3.3]);
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as const) {
      const bytes = encodeSafetensors(new Map([['t', { shape: [2, 3], data: values, dtype }]]));
      expect(bytes.readBigUInt64LE(0) % 8n).toBe(0n);
      const back = parseSafetensors(bytes).tensor('t');
      expect(back.shape).toEqual([2, 3]);
      const tol = dtype === 'F16' ? 2e-3 : dtype === 'BF16' ? 1e-2 : 0;
      back.data.forEach((v, i) => expect(Math.abs(v - values[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(values[i]))));
    }
  });

  it('rejects a corrupt header, naming the file', async () => {
    let e = await errorOf(() => parseSafetensors(raw({ a: 1 }, new Uint8Array(0), 1 << 30), 'big.safetensors'));
    expect(e.message).toMatch(/^big\.safetensors: corrupt safetensors header: declares 1073741824 header bytes/);
    const notJson = Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":')]);
    e = await errorOf(() => parseSafetensors(notJson, 'bad.safetensors'));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toMatch(/bad\.safetensors: corrupt safetensors header: not JSON/);
    e = await errorOf(() => parseSafetensors(new Uint8Array(3), 'tiny.safetensors'));
    expect(e.message).toMatch(/tiny\.safetensors: not a safetensors file/);
    e = await errorOf(() => parseSafetensors(raw({ w: { dtype: 'F32', shape: [2] } }, new Uint8Array(8)), 'f.st'));
    expect(e.message).toMatch(/f\.st: corrupt safetensors header: tensor w lacks dtype, shape or data_offsets/);
    e = await errorOf(() => parseSafetensors(raw({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), 'f.st'));
    expect(e.message).toMatch(/tensor w: F32 \[3\] needs 12 bytes but data_offsets span 8/);
    e = await errorOf(() => parseSafetensors(raw({ w: { dtype: 'Q4', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), 'f.st'));
    expect(e.message).toMatch(/tensor w has unknown dtype Q4/);
  });

  it('rejects truncated data, naming the tensor', async () => {
    const whole = await readFile(REF_WEIGHTS);
    const cut = whole.subarray(0, whole.length - 10);
    await writeFile(join(dir, 'cut.safetensors'), cut);
    const e = await errorOf(() => readSafetensors(join(dir, 'cut.safetensors')));
    expect(e.message).toContain(`${join(dir, 'cut.safetensors')}: truncated: tensor `);
    expect(e.message).toMatch(/ends at data byte \d+ but the file holds only \d+ data bytes/);
    expect(e.where.file).toBe(join(dir, 'cut.safetensors'));
  });
});

describe('selectStateDict', () => {
  const shapes = describeVggish(VGGISH_SMALL).stateDictShapes;
  const tensors = (): Map<string, TensorToWrite> =>
    new Map([...shapes].map(([name, shape]) => [name, { shape: [...shape], data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25) }]));

  it('takes exactly the expected tensors and ignores extras such as num_batches_tracked', () => {
    const t = tensors();
    const extra = encodeSafetensors(t);
    // An int64 extra after the floats, as a PyTorch BN state dict has.
    const json = JSON.parse(extra.subarray(8, 8 + Number(extra.readBigUInt64LE(0))).toString());
    const dataLen = extra.length - 8 - Number(extra.readBigUInt64LE(0));
    json['bn.num_batches_tracked'] = { dtype: 'I64', shape: [], data_offsets: [dataLen, dataLen + 8] };
    const file = raw(json, Buffer.concat([extra.subarray(8 + Number(extra.readBigUInt64LE(0))), Buffer.alloc(8)]));
    const dict = selectStateDict(parseSafetensors(file, 'ok.st'), shapes);
    expect([...dict.keys()]).toEqual([...shapes.keys()]);
    expect(dict.get('features.0.weight')!.data.every((v) => v === 0.25)).toBe(true);
  });

  it('lists every missing tensor, wrong shape and wrong dtype with expected and found shapes', async () => {
    const t = tensors();
    t.delete('embeddings.4.bias');
    t.set('features.3.weight', { shape: [16, 8, 3, 1], data: new Float32Array(16 * 8 * 3) });
    const file = join(dir, 'wrong.safetensors');
    // features.0.bias as I64 (8 bytes per value, written as raw bytes of two F32 each).
    const bytes = encodeSafetensors(t);
    const hl = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + hl).toString());
    const b0 = header['features.0.bias'];
    header['features.0.bias'] = { dtype: 'I64', shape: [4], data_offsets: b0.data_offsets };
    expect(b0.shape).toEqual([8]);
    await writeFile(file, raw(header, bytes.subarray(8 + hl)));
    const e = await errorOf(async () => selectStateDict(await readSafetensors(file), shapes));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toContain(`${file}: weights do not fit the architecture (3 problems)`);
    expect(e.message).toContain('missing tensor embeddings.4.bias (expected shape [128])');
    expect(e.message).toContain('tensor features.3.weight has shape [16, 8, 3, 1] but the architecture needs [16, 8, 3, 3]');
    expect(e.message).toContain('tensor features.0.bias has shape [4] but the architecture needs [8]');
    header['features.0.bias'] = { dtype: 'I32', shape: [8], data_offsets: [b0.data_offsets[0], b0.data_offsets[0] + 32] };
    await writeFile(file, raw(header, bytes.subarray(8 + hl)));
    const e2 = await errorOf(async () => selectStateDict(await readSafetensors(file), shapes));
    expect(e2.message).toContain('tensor features.0.bias [8] has dtype I32; expected one of F32, F16, BF16, F64');
  });
});

describe('clipstream models build', () => {
  it('imports weights: metadata from the file, sha256 of the file, extractor name of the architecture', async () => {
    const shapes = describeSlowFast({ ...SLOWFAST_SMALL, numClasses: 5 }).stateDictShapes;
    const t = new Map(
      [...shapes].map(([name, shape]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(n).map((_, i) => (name.endsWith('running_var') ? 1 : Math.sin(i + name.length) * 0.1));
        return [name, { shape: [...shape], data, dtype: 'BF16' as const }];
      }),
    );
    const weights = join(dir, 'sf.safetensors');
    await writeFile(weights, encodeSafetensors(t, { dataset: 'kinetics-400' }));
    const out = join(dir, 'sf.onnx');
    const r = await buildModelFromArgs({ arch: 'slowfast_r50', width: 'small', weights, out, fp16: false });
    const info = await readModelInfo(out);
    expect(info.extractorName).toBe('SLOWFAST_8x8_R50-small');
    expect(info.dataset).toBe('kinetics-400');
    const { createHash } = await import('node:crypto');
    expect(info.weights).toBe(
      `imported:${createHash('sha256')
        .update(await readFile(weights))
        .digest('hex')}`,
    );
    expect(r.outputs).toContain('logits');
    expect(info.outputs.find((o) => o.name === 'logits')!.dims).toEqual(['batch', 5]);
  });

  it('says seeded weights when there is no file, and YouTube-8M for imported VGGish by default', async () => {
    const out = join(dir, 'v.onnx');
    await buildModelFromArgs({ arch: 'vggish', width: 'small', seed: 9, out, fp16: true });
    let info = await readModelInfo(out);
    expect(info.dataset).toBe('none (seeded weights)');
    expect(info.weights).toBe('seeded:9');
    expect(info.metadata['clipstream.precision']).toBe('float16');
    const shapes = describeVggish(VGGISH_SMALL).stateDictShapes;
    const weights = join(dir, 'v.safetensors');
    await writeFile(
      weights,
      encodeSafetensors(new Map([...shapes].map(([n, s]) => [n, { shape: [...s], data: new Float32Array(s.reduce((a, b) => a * b, 1)) }]))),
    );
    await buildModelFromArgs({ arch: 'vggish', width: 'small', weights, out, fp16: false });
    info = await readModelInfo(out);
    expect(info.dataset).toBe('YouTube-8M');
    expect(info.outputs.map((o) => o.name)).not.toContain('postprocessed');
  });

  it('refuses the weights of the other architecture, naming file and tensors', async () => {
    const e = await errorOf(() => buildModelFromArgs({ arch: 'slowfast_r50', width: 'small', weights: REF_WEIGHTS, out: join(dir, 'x.onnx') }));
    expect(e.message).toContain(`${REF_WEIGHTS}: weights do not fit the architecture`);
    expect(e.message).toContain('missing tensor s1.pathway0_stem.conv.weight (expected shape [8, 3, 1, 7, 7])');
  });
});
