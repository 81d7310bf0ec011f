import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  decodeFeatureRecord,
  encodeFeatureRecord,
  msgpackArrayHeader,
  ndarrayMap,
  packMsgpackNumpy,
  unpackMsgpackNumpy,
} from '../../src/sinks/msgpack-numpy.js';
import type { FeatureRecord } from '../../src/types.js';
import { recordFor, tensor } from '../helpers/feature-fixtures.js';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import msgpack, msgpack_numpy, numpy'], { encoding: 'utf8' });
const noPython = probe.status !== 0;
const skipReason = `skipped: ${PY} cannot import msgpack + msgpack_numpy + numpy (${(probe.error?.message ?? probe.stderr ?? '').trim().split('\n').pop()})`;
if (noPython) console.warn(`msgpack-numpy Python interop tests ${skipReason}`);

function python(script: string, input?: Buffer): Buffer {
  const r = spawnSync(PY, ['-c', script], { input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** What msgpack_numpy 0.4.8 emits for np.array([[1,2,3],[4,5,6]], dtype=np.float32), captured once. */
const PY_NDARRAY_2X3 =
  '85c4026e64c3c40474797065a33c6634c4046b696e64c400c4057368617065920203c40464617461c418' + '0000803f0000004000004040000080400000a0400000c040';

describe('msgpack-numpy, TypeScript side', () => {
  it('packs an ndarray exactly as msgpack_numpy does (bin keys, str type, bin kind, int shape)', () => {
    const t = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
    expect(packMsgpackNumpy(t).toString('hex')).toBe(PY_NDARRAY_2X3);
  });

  it('round-trips a feature record, values bit for bit and data aligned', () => {
    const r = recordFor(3);
    const back = decodeFeatureRecord(encodeFeatureRecord(r));
    expect(back).toEqual(r);
    const layer = back.visual_features[0].feat_array.layer_1;
    expect(layer.shape).toEqual([2, 3]);
    expect(Object.is(layer.data[1], -0)).toBe(true);
    expect(layer.data.byteOffset % 4).toBe(0);
  });

  it('encodes equal records to equal bytes (resume relies on it)', () => {
    expect(encodeFeatureRecord(recordFor(4)).equals(encodeFeatureRecord(recordFor(4)))).toBe(true);
  });

  it.each([[{ data: new Float32Array(0), shape: [0] }], [{ data: new Float32Array([2.5]), shape: [] }], [tensor([2, 3, 4], 9)]])(
    'round-trips edge shapes %#',
    (t) => {
      expect(unpackMsgpackNumpy(packMsgpackNumpy({ t }))).toEqual({ t });
    },
  );

  it('refuses a bare typed array and a shape that does not match the data', () => {
    expect(() => packMsgpackNumpy({ x: new Float32Array(2) })).toThrow('value.x: Float32Array is not a Tensor; wrap it as {data: Float32Array, shape}');
    expect(() => ndarrayMap({ data: new Float32Array(5), shape: [2, 3] }, 'layer_0')).toThrow('layer_0: shape [2, 3] holds 6 values but data has 5');
  });

  it('rejects an ndarray of another dtype, truncated msgpack and a malformed record, naming where', () => {
    const f8 = Buffer.from(PY_NDARRAY_2X3.replace('a33c6634', 'a33c6638'), 'hex');
    expect(() => unpackMsgpackNumpy(f8, 'x.msgpack')).toThrow(`x.msgpack: ndarray of dtype "<f8" is not supported; clipstream Tensors are float32 ('<f4')`);
    expect(() => unpackMsgpackNumpy(Buffer.from(PY_NDARRAY_2X3, 'hex').subarray(0, 20), 'x.msgpack')).toThrow(/^x\.msgpack: not valid msgpack/);
    const notRecord = packMsgpackNumpy({ filename: 'a.mp4', id: 7 });
    expect(() => decodeFeatureRecord(notRecord, 'rec 0')).toThrow('rec 0: not a feature record: id must be a string');
  });

  it('writes the smallest msgpack array header', () => {
    expect(msgpackArrayHeader(3).toString('hex')).toBe('93');
    expect(msgpackArrayHeader(300).toString('hex')).toBe('dc012c');
    expect(msgpackArrayHeader(70000).toString('hex')).toBe('dd00011170');
  });
});

describe('msgpack-numpy, Python interop', () => {
  it.skipIf(noPython)(
    `TS -> Python: msgpack_numpy.decode gives float32 ndarrays with the right shapes and values (${noPython ? skipReason : 'python found'})`,
    () => {
      const records: FeatureRecord[] = [recordFor(0), recordFor(1), recordFor(2)];
      const bytes = Buffer.concat([msgpackArrayHeader(records.length), ...records.map(encodeFeatureRecord)]);
      const out = python(
        `
import sys, json, math, msgpack, msgpack_numpy as m, numpy as np
recs = msgpack.unpackb(sys.stdin.buffer.read(), object_hook=m.decode)
def arr(a):
    assert isinstance(a, np.ndarray), type(a)
    return {'dtype': str(a.dtype), 'shape': list(a.shape), 'c': bool(a.flags['C_CONTIGUOUS']),
            'values': [float(x) for x in a.ravel()], 'neg0': [i for i, x in enumerate(a.ravel()) if x == 0 and math.copysign(1, x) < 0]}
def fs(sets):
    return [{'keys': list(s.keys()), 'extractor_name': s['extractor_name'], 'dataset': s['dataset'],
             'feat_array': {k: arr(v) for k, v in s['feat_array'].items()}} for s in sets]
print(json.dumps([{'keys': list(r.keys()), 'filename': r['filename'], 'id': r['id'], 'segment': r['segment'],
                   'visual_features': fs(r['visual_features']), 'audio_features': fs(r['audio_features'])} for r in recs]))
`,
        bytes,
      );
      const got = JSON.parse(out.toString('utf8'));
      expect(got).toHaveLength(3);
      records.forEach((r, i) => {
        const g = got[i];
        expect(g.keys).toEqual(['filename', 'id', 'segment', 'visual_features', 'audio_features', '__key__']);
        expect([g.filename, g.id, g.segment]).toEqual([r.filename, r.id, r.segment]);
        for (const field of ['visual_features', 'audio_features'] as const) {
          r[field].forEach((s, j) => {
            const gs = g[field][j];
            expect(gs.keys).toEqual(['extractor_name', 'dataset', 'feat_array']);
            expect([gs.extractor_name, gs.dataset]).toEqual([s.extractor_name, s.dataset]);
            for (const [layer, t] of Object.entries(s.feat_array)) {
              const a = gs.feat_array[layer];
              expect(a.dtype).toBe('float32');
              expect(a.shape).toEqual(t.shape);
              expect(a.c).toBe(true);
              // float32 -> Python float is exact, and JSON carries doubles (and -0.0) exactly: bit for bit.
              expect(a.values).toEqual(Array.from(t.data));
              expect(a.neg0).toEqual(Array.from(t.data).flatMap((x, k) => (Object.is(x, -0) ? [k] : [])));
            }
          });
        }
      });
    },
  );

  it.skipIf(noPython)(
    `Python -> TS: arrays packed by msgpack_numpy decode to Tensors, byte-identical to ours (${noPython ? skipReason : 'python found'})`,
    () => {
      const out = python(`
import sys, msgpack, msgpack_numpy as m, numpy as np
rec = {'filename': 'abc_10.mp4', 'id': 'abc', 'segment': [10.5, 20.5],
       'visual_features': [{'extractor_name': 'SLOWFAST_8x8_R50', 'dataset': 'kinetics-400',
                            'feat_array': {'layer_0': np.arange(24, dtype=np.float32).reshape(2, 3, 4) / np.float32(7),
                                           'layer_1': np.zeros((0,), dtype=np.float32),
                                           'layer_2': np.array(1.25, dtype=np.float32)}}],
       'audio_features': [{'extractor_name': 'VGGish', 'dataset': 'YouTube-8M',
                           'feat_array': {'layer_0': np.arange(8, dtype='>f4')}}]}
sys.stdout.buffer.write(msgpack.packb(rec, default=m.encode))
`);
      const r = decodeFeatureRecord(out, 'python record');
      const l0 = r.visual_features[0].feat_array.layer_0;
      expect(l0.shape).toEqual([2, 3, 4]);
      expect(Array.from(l0.data)).toEqual(Array.from({ length: 24 }, (_, i) => Math.fround(i / 7)));
      expect(r.visual_features[0].feat_array.layer_1).toEqual({ data: new Float32Array(0), shape: [0] });
      expect(r.visual_features[0].feat_array.layer_2).toEqual({ data: new Float32Array([1.25]), shape: [] });
      // A big-endian array from Python is byte-swapped on the way in.
      expect(r.audio_features[0].feat_array.layer_0).toEqual({ data: Float32Array.from({ length: 8 }, (_, i) => i), shape: [8] });
      expect(r.segment).toEqual([10.5, 20.5]);
      // Apart from the big-endian layer (which we write little-endian), our bytes equal Python's.
      const le = { ...r, audio_features: [] };
      const pyLe = python(
        `
import sys, msgpack, msgpack_numpy as m
rec = msgpack.unpackb(sys.stdin.buffer.read(), object_hook=m.decode)
rec['audio_features'] = []
sys.stdout.buffer.write(msgpack.packb(rec, default=m.encode))
`,
        out,
      );
      expect(encodeFeatureRecord(le).toString('hex')).toBe(pyLe.toString('hex'));
    },
  );
});
