/**
 * The JSON flavour of a feature shard: the same records, arrays as nested lists.
 *
 * Writing goes through stream-json's Stringer (tokens -> text, correct string escaping);
 * we make the tokens ourselves rather than use its Disassembler, because the Disassembler
 * prints numbers with `String(value)`, i.e. the float64 repr of a float32 value
 * (0.10000000149011612 for 0.1f) -- exact but twice as long. We print the shortest
 * decimal that maps back to the same float32.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Token } from 'stream-json/core/parser.js';
import stringer from 'stream-json/core/stringer.js';
import streamArray from 'stream-json/streamers/stream-array.js';
import { ClipstreamError } from '../errors.js';
import type { FeatureRecord, FeatureSet, Tensor, WarningHandler } from '../types.js';
import { asFeatureRecord } from './msgpack-numpy.js';

/**
 * The shortest decimal string that `Math.fround` maps back to `x` (a float32 value).
 * 9 significant digits always suffice for float32. NaN/Infinity have no JSON form: null.
 *
 * @example formatFloat32(Math.fround(0.1)) // '0.1'
 */
export function formatFloat32(x: number): string {
  if (!Number.isFinite(x)) return 'null';
  // '-0.0', not '-0': Python's json reads '-0' as the integer 0 and loses the sign.
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0';
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}

function* tensorTokens(t: Tensor, onNonFinite: () => void): Generator<Token> {
  const { data, shape } = t;
  if (shape.length === 0) {
    if (!Number.isFinite(data[0])) onNonFinite();
    yield Number.isFinite(data[0]) ? { name: 'numberValue', value: formatFloat32(data[0]) } : { name: 'nullValue', value: null };
    return;
  }
  // Walk the C-order data with an index per dimension rather than recursing per element.
  const dims = shape.length;
  let offset = 0;
  const rec = function* (d: number): Generator<Token> {
    yield { name: 'startArray' };
    if (d === dims - 1) {
      for (let i = 0; i < shape[d]; i++) {
        const v = data[offset++];
        if (Number.isFinite(v)) yield { name: 'numberValue', value: formatFloat32(v) };
        else {
          onNonFinite();
          yield { name: 'nullValue', value: null };
        }
      }
    } else {
      for (let i = 0; i < shape[d]; i++) yield* rec(d + 1);
    }
    yield { name: 'endArray' };
  };
  yield* rec(0);
}

function* featureSetTokens(sets: FeatureSet[], onNonFinite: (layer: string) => void): Generator<Token> {
  yield { name: 'startArray' };
  for (const s of sets) {
    yield { name: 'startObject' };
    yield { name: 'keyValue', value: 'extractor_name' };
    yield { name: 'stringValue', value: s.extractor_name };
    yield { name: 'keyValue', value: 'dataset' };
    yield { name: 'stringValue', value: s.dataset };
    yield { name: 'keyValue', value: 'feat_array' };
    yield { name: 'startObject' };
    for (const [layer, t] of Object.entries(s.feat_array)) {
      yield { name: 'keyValue', value: layer };
      yield* tensorTokens(t, () => onNonFinite(`${s.extractor_name}.${layer}`));
    }
    yield { name: 'endObject' };
    yield { name: 'endObject' };
  }
  yield { name: 'endArray' };
}

function* recordTokens(r: FeatureRecord, onNonFinite: (layer: string) => void): Generator<Token> {
  yield { name: 'startObject' };
  yield { name: 'keyValue', value: 'filename' };
  yield { name: 'stringValue', value: r.filename };
  yield { name: 'keyValue', value: 'id' };
  yield { name: 'stringValue', value: r.id };
  yield { name: 'keyValue', value: 'segment' };
  yield { name: 'startArray' };
  for (const x of r.segment) yield Number.isFinite(x) ? { name: 'numberValue', value: String(x) } : { name: 'nullValue', value: null };
  yield { name: 'endArray' };
  yield { name: 'keyValue', value: 'visual_features' };
  yield* featureSetTokens(r.visual_features, onNonFinite);
  yield { name: 'keyValue', value: 'audio_features' };
  yield* featureSetTokens(r.audio_features, onNonFinite);
  if (r.__key__ !== undefined) {
    yield { name: 'keyValue', value: '__key__' };
    yield { name: 'stringValue', value: r.__key__ };
  }
  if (r.audio_note !== undefined) {
    yield { name: 'keyValue', value: 'audio_note' };
    yield { name: 'stringValue', value: r.audio_note };
  }
  yield { name: 'endObject' };
}

/**
 * Turns records into JSON text one record at a time: `begin()`, `record(r)` per record,
 * `end()`; each returns the text to append. Non-finite values become null (with a warning).
 */
export class JsonShardText {
  private readonly toText = stringer({ useValues: true });

  constructor(
    private readonly where: string,
    private readonly onWarning?: WarningHandler,
  ) {}

  private text(tokens: Iterable<Token>): string {
    let out = '';
    for (const t of tokens) {
      const s = this.toText(t);
      if (typeof s === 'string') out += s;
    }
    return out;
  }

  begin(): string {
    return this.text([{ name: 'startArray' }]);
  }

  record(r: FeatureRecord): string {
    const bad = new Set<string>();
    const s = this.text(recordTokens(r, (layer) => bad.add(layer)));
    if (bad.size > 0) {
      this.onWarning?.(
        new ClipstreamError(
          'ERR_FORMAT',
          `${this.where}: NaN/Infinity in ${[...bad].join(', ')} of ${r.filename} written as null (JSON has no such numbers; use the msgpack format to keep them)`,
          {
            where: { file: this.where },
          },
        ),
      );
    }
    return s;
  }

  end(): string {
    return `${this.text([{ name: 'endArray' }])}\n`;
  }
}

/** A nested list of numbers (null = NaN) to a Tensor, its shape read off the nesting. */
export function tensorFromNested(v: unknown, where: string): Tensor {
  const shape: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) shape.push(x.length);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let offset = 0;
  const walk = (x: unknown, d: number): void => {
    if (d === shape.length) {
      if (x === null) data[offset++] = NaN;
      else if (typeof x === 'number') data[offset++] = x;
      else throw new ClipstreamError('ERR_FORMAT', `${where}: expected a number, found ${JSON.stringify(x)}`);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[d]) {
      throw new ClipstreamError('ERR_FORMAT', `${where}: ragged nested list (expected shape [${shape.join(', ')}])`);
    }
    for (const y of x) walk(y, d + 1);
  };
  walk(v, 0);
  return { data, shape };
}

function withTensors(v: unknown, where: string): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const r = v as Record<string, unknown>;
  for (const field of ['visual_features', 'audio_features']) {
    const sets = r[field];
    if (!Array.isArray(sets)) continue;
    sets.forEach((s: unknown, i: number) => {
      const fa = (s as Record<string, unknown> | null)?.feat_array;
      if (typeof fa !== 'object' || fa === null || Array.isArray(fa)) return;
      for (const [layer, x] of Object.entries(fa)) (fa as Record<string, unknown>)[layer] = tensorFromNested(x, `${where}.${field}[${i}].feat_array.${layer}`);
    });
  }
  return v;
}

/** Reads a JSON feature shard, streaming the text so no single string has to hold the file. */
export async function readJsonShard(path: string): Promise<FeatureRecord[]> {
  const records: FeatureRecord[] = [];
  // pipeline reports its own AbortError when our consumer throws, so keep ours aside.
  let invalid: ClipstreamError | undefined;
  try {
    await pipeline(createReadStream(path), streamArray.withParserAsStream(), async (items: AsyncIterable<{ key: number; value: unknown }>) => {
      for await (const { key, value } of items) {
        try {
          records.push(asFeatureRecord(withTensors(value, `${path} record ${key}`), `${path} record ${key}`));
        } catch (err) {
          invalid = err as ClipstreamError;
          throw err;
        }
      }
    });
  } catch (err) {
    if (invalid) throw invalid;
    if (err instanceof ClipstreamError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ClipstreamError('ERR_IO', `${path}: no such feature shard`, { cause: err, where: { file: path } });
    }
    throw new ClipstreamError('ERR_FORMAT', `${path} is not a feature shard: expected a JSON list of records (${(err as Error).message})`, {
      cause: err,
      where: { file: path },
    });
  }
  return records;
}
