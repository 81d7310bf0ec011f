import onnxProto from 'onnx-proto';
import { ClipstreamError } from '../errors.js';

const { onnx } = onnxProto;

/** ONNX opset the builders target; ORT 1.30 runs it and it still takes `axes` of ReduceMean as an attribute. */
export const OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (onnx 1.12+). */
export const IR_VERSION = 8;

/** A dimension: a fixed size, or a symbolic name such as `batch`. */
export type Dim = number | string;

/** A node attribute with its ONNX type spelled out, because a JS number alone cannot say INT or FLOAT. */
export type Attr = { type: 'int'; value: number } | { type: 'ints'; value: number[] } | { type: 'float'; value: number } | { type: 'string'; value: string };

/** Shorthands for `Attr`: `{ kernel_shape: ints([3, 3]) }`. */
export const ints = (value: number[]): Attr => ({ type: 'ints', value });
export const int = (value: number): Attr => ({ type: 'int', value });

function attributeProto(name: string, attr: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (attr.type) {
    case 'int':
      return { name, type: T.INT, i: attr.value };
    case 'ints':
      return { name, type: T.INTS, ints: attr.value };
    case 'float':
      return { name, type: T.FLOAT, f: attr.value };
    case 'string':
      return { name, type: T.STRING, s: Buffer.from(attr.value, 'utf8') };
  }
}

function valueInfo(name: string, dims: Dim[], elemType: number): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Float32 to little-endian bytes regardless of host byte order, so files are identical everywhere. */
function float32LE(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}

function int64LE(data: readonly number[]): Uint8Array {
  const out = new Uint8Array(data.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i]), true);
  return out;
}

/** What a graph output was declared as; tests and manifests read this without running the model. */
export interface DeclaredTensor {
  name: string;
  dims: Dim[];
  /** Element type; absent means float32 (so float-only manifests read as before). */
  type?: 'uint8';
}

/**
 * Accumulates an ONNX graph in insertion order and serialises it. Nothing depends on
 * clocks, hashes of objects or host byte order, so the same calls give the same bytes.
 *
 * @example
 * const g = new GraphBuilder('tiny');
 * g.addInput('x', ['batch', 4]);
 * g.addInitializer('w', [2, 4], new Float32Array(8).fill(0.5));
 * g.addNode('Gemm', ['x', 'w'], ['y'], { transB: int(1) });
 * g.addOutput('y', ['batch', 2]);
 * const bytes = g.toBuffer();
 */
export class GraphBuilder {
  readonly name: string;
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly initializerNames = new Set<string>();
  private readonly inputs: DeclaredTensor[] = [];
  private readonly outputs: DeclaredTensor[] = [];
  private readonly metadata: [string, string][] = [];
  private counter = 0;
  /** False while only declaring shapes: initializers keep their dims but no data, and nothing can be serialised. */
  readonly materialize: boolean;

  constructor(name: string, options: { materialize?: boolean } = {}) {
    this.name = name;
    this.materialize = options.materialize ?? true;
  }

  /** Adds a float32 constant; `docString` says where a transformed value (e.g. BN-folded) came from. */
  addInitializer(name: string, dims: number[], data: Float32Array, docString?: string): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (this.materialize && size !== data.length) {
      throw new ClipstreamError('ERR_MODEL', `Initializer ${name}: shape [${dims.join(', ')}] needs ${size} values but got ${data.length}`);
    }
    this.claim(name);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: this.materialize ? float32LE(data) : new Uint8Array(0),
      ...(docString === undefined ? {} : { docString }),
    });
    return name;
  }

  /** Adds an int64 constant (indices, shapes). */
  addInt64Initializer(name: string, dims: number[], data: readonly number[]): string {
    this.claim(name);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: int64LE(data) });
    return name;
  }

  /**
   * Adds a node. `outputs` may be a single prefix string, in which case one output named
   * `<prefix>` is created; returns the first output's name so calls chain.
   */
  addNode(opType: string, inputs: string[], outputs: string[] | string, attrs: Record<string, Attr> = {}): string {
    const outs = typeof outputs === 'string' ? [outputs] : outputs;
    const attribute = Object.keys(attrs)
      .sort()
      .map((k) => attributeProto(k, attrs[k]));
    this.nodes.push({ name: `${opType}_${this.counter++}`, opType, input: inputs, output: outs, attribute });
    return outs[0];
  }

  /** Declares a graph input, float32 unless `type` says `uint8`. */
  addInput(name: string, dims: Dim[], type: 'float32' | 'uint8' = 'float32'): void {
    this.inputs.push(type === 'uint8' ? { name, dims, type } : { name, dims });
  }

  addOutput(name: string, dims: Dim[]): void {
    this.outputs.push({ name, dims });
  }

  setMetadata(key: string, value: string): void {
    const existing = this.metadata.find(([k]) => k === key);
    if (existing) existing[1] = value;
    else this.metadata.push([key, value]);
  }

  metadataEntries(): Record<string, string> {
    return Object.fromEntries(this.metadata);
  }

  /** Declared outputs, in order. */
  declaredOutputs(): DeclaredTensor[] {
    return this.outputs.map((o) => ({ name: o.name, dims: [...o.dims] }));
  }

  declaredInputs(): DeclaredTensor[] {
    return this.inputs.map((o) => ({ ...o, dims: [...o.dims] }));
  }

  /** Number of float parameters held by initializers (for size reports). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.initializers) {
      if (t.dataType === onnx.TensorProto.DataType.FLOAT) n += (t.dims ?? []).reduce<number>((a, b) => a * Number(b), 1);
    }
    return n;
  }

  toModelProto(): onnxProto.onnx.ModelProto {
    const FLOAT = onnx.TensorProto.DataType.FLOAT;
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      // No package version here: a release bump must not make the shipped files stale.
      producerName: 'clipstream',
      producerVersion: '1',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs.map((t) => valueInfo(t.name, t.dims, t.type === 'uint8' ? onnx.TensorProto.DataType.UINT8 : FLOAT)),
        output: this.outputs.map((t) => valueInfo(t.name, t.dims, FLOAT)),
      },
      metadataProps: this.metadata.map(([key, value]) => ({ key, value })),
    });
  }

  toBuffer(): Buffer {
    if (!this.materialize) throw new ClipstreamError('ERR_MODEL', `Graph ${this.name} was declared without weights and cannot be serialised`);
    const bytes = onnx.ModelProto.encode(this.toModelProto()).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private claim(name: string): void {
    if (this.initializerNames.has(name)) throw new ClipstreamError('ERR_MODEL', `Duplicate initializer ${name}`);
    this.initializerNames.add(name);
  }
}
