import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;

/** float32 to IEEE half, round to nearest even (overflow to infinity). */
export function floatToHalfBits(f: number): number {
  const u = new Uint32Array(new Float32Array([f]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still right
  return sign | h;
}

/**
 * Turns a float32 clipstream model into its float16 variant for GPUs: every float initializer
 * is stored as float16 and the whole graph computes in float16, with a Cast after each input
 * and before each output so the contract (float32 `frames`/`examples` in, float32 `layer_k`
 * out) and the metadata stay the same; `clipstream.precision` says `float16`.
 * Halves the file size. ONNX Runtime's CPU provider runs it too (slowly, through its own
 * float16 fallbacks), which is how the tests check it.
 *
 * @example
 * const half = toFloat16Model(buildVggish(VGGISH_SMALL).bytes);
 */
export function toFloat16Model(bytes: Uint8Array): Buffer {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  for (const t of graph.initializer ?? []) {
    if (t.dataType !== FLOAT) continue;
    const raw = t.rawData ?? new Uint8Array(0);
    const src = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const n = raw.byteLength / 4;
    const out = new Uint8Array(n * 2);
    const dst = new DataView(out.buffer);
    for (let i = 0; i < n; i++) dst.setUint16(i * 2, floatToHalfBits(src.getFloat32(i * 4, true)), true);
    t.dataType = FLOAT16;
    t.rawData = out;
  }
  const rename = new Map<string, string>();
  const head: onnxProto.onnx.INodeProto[] = [];
  for (const input of graph.input ?? []) {
    if (input.type?.tensorType?.elemType !== FLOAT) continue;
    const name = `${input.name}.fp16`;
    rename.set(input.name!, name);
    head.push({
      name: `Cast_${input.name}_to_fp16`,
      opType: 'Cast',
      input: [input.name!],
      output: [name],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT16 }],
    });
  }
  for (const node of graph.node ?? []) {
    // In-graph casts to float32 (e.g. of a uint8 frames input) now cast to float16.
    if (node.opType !== 'Cast') continue;
    for (const a of node.attribute ?? []) if (a.name === 'to' && Number(a.i) === FLOAT) a.i = FLOAT16;
  }
  const tail: onnxProto.onnx.INodeProto[] = [];
  const outputs = new Set((graph.output ?? []).map((o) => o.name!));
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map((n) => rename.get(n) ?? (outputs.has(n) ? `${n}.fp16` : n));
    node.output = (node.output ?? []).map((n) => (outputs.has(n) ? `${n}.fp16` : n));
  }
  for (const o of graph.output ?? []) {
    tail.push({
      name: `Cast_${o.name}_to_fp32`,
      opType: 'Cast',
      input: [`${o.name}.fp16`],
      output: [o.name!],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
    });
  }
  graph.node = [...head, ...(graph.node ?? []), ...tail];
  model.metadataProps = [...(model.metadataProps ?? []), { key: 'clipstream.precision', value: 'float16' }];
  const enc = onnx.ModelProto.encode(model).finish();
  return Buffer.from(enc.buffer, enc.byteOffset, enc.byteLength);
}
