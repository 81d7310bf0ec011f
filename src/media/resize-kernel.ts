/**
 * The two passes of FrameResizer as a small WebAssembly module, assembled here from its
 * opcodes (no toolchain, no file): the same IEEE double operations in the same order as the
 * plain loops they replace, so the bytes are the same, at about a third of the CPU time of
 * V8's code for those loops (no bounds checks, no boxing).
 *
 * hpass: for each listed source row, each output column's pixel blended from its two taps:
 *   rows[o + ch] = p * src[l + ch] + q * src[r + ch]            (ch = 0, 1, 2)
 * vpass: each output row blended from its two horizontally blended rows, rounded:
 *   dst[k] = trunc(a * rows[top + k] + b * rows[bottom + k] + 0.5)
 */

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];

// Opcodes used (WebAssembly 1.0 core).
const I32 = 0x7f;
const F64 = 0x7c;
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const f64c = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return [0x44, ...b];
};
const add = [0x6a];
const ltU = [0x49];
const fadd = [0xa0];
const fmul = [0xa2];
const u8ToF64 = [0xb8]; // f64.convert_i32_u
const truncU = [0xab]; // i32.trunc_f64_u (the values are within 0.5 .. 255.5)
const load8 = (offset: number) => [0x2d, 0, ...uleb(offset)];
const loadI32 = [0x28, 2, 0];
const loadF64 = (offset: number) => [0x2b, 3, ...uleb(offset)];
const storeF64 = (offset: number) => [0x39, 3, ...uleb(offset)];
const store8 = [0x3a, 0, 0];
// SIMD (WebAssembly 2.0, in Node since 16): prefix 0xfd, then the opcode as LEB128.
const V128 = 0x7b;
const v128Load = [0xfd, 0x00, 3, 0];
const f64x2Splat = [0xfd, 0x14];
const f64x2Add = [0xfd, ...uleb(0xf0)];
const f64x2Mul = [0xfd, ...uleb(0xf2)];
const truncSatU = [0xfd, ...uleb(0xfd)]; // i32x4.trunc_sat_f64x2_u_zero
const store8Lane = (offset: number, lane: number) => [0xfd, ...uleb(0x58), 0, ...uleb(offset), lane];
/** `for (; local < limit; local += step) body` with the test first (block + loop). */
const forLoop = (local: number, limit: number[], step: number, body: number[]): number[] => [
  0x02,
  0x40,
  0x03,
  0x40,
  ...get(local),
  ...limit,
  ...ltU,
  0x45, // i32.eqz
  0x0d,
  1, // br_if to the block's end
  ...body,
  ...get(local),
  ...i32c(step),
  ...add,
  ...set(local),
  0x0c,
  0, // br to the loop's start
  0x0b,
  0x0b,
];

/*
 * hpass(src, rowStarts, rowStartsEnd, cols, colsEnd, rows): `rowStarts` lists the byte offsets
 * (from src) of the source rows the crop reads, i32 each; `cols` one 24-byte record per output
 * column: left tap byte offset (i32), right (i32), p (f64), q (f64); `rows` receives f64s.
 */
function hpass(): number[] {
  // params 0 src, 1 rowAt, 2 rowEnd, 3 cols, 4 colsEnd, 5 out; locals 6 base, 7 c, 8 l, 9 r (i32), 10 p, 11 q (f64)
  const [src, rowAt, rowEnd, cols, colsEnd, out, base, c, l, r, p, q] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const blend = (ch: number) => [
    ...get(out),
    ...get(p),
    ...get(l),
    ...load8(ch),
    ...u8ToF64,
    ...fmul,
    ...get(q),
    ...get(r),
    ...load8(ch),
    ...u8ToF64,
    ...fmul,
    ...fadd,
    ...storeF64(ch * 8),
  ];
  const column = [
    ...get(base),
    ...get(c),
    ...loadI32,
    ...add,
    ...set(l),
    ...get(base),
    ...get(c),
    0x28,
    2,
    4, // i32.load offset 4
    ...add,
    ...set(r),
    ...get(c),
    ...loadF64(8),
    ...set(p),
    ...get(c),
    ...loadF64(16),
    ...set(q),
    ...blend(0),
    ...blend(1),
    ...blend(2),
    ...get(out),
    ...i32c(24),
    ...add,
    ...set(out),
  ];
  const row = [...get(src), ...get(rowAt), ...loadI32, ...add, ...set(base), ...get(cols), ...set(c), ...forLoop(c, get(colsEnd), 24, column)];
  const body = forLoop(rowAt, get(rowEnd), 4, row);
  return [
    ...vec(
      [
        [4, I32],
        [2, F64],
      ].map(([n, t]) => [...uleb(n!), t!]),
    ),
    ...body,
    0x0b,
  ];
}

/*
 * vpass(taps, tapsEnd, rows, width, dst): `taps` one 24-byte record per output row: top row's
 * byte offset in rows (i32), bottom's (i32), a (f64), b (f64); each output row is `width` bytes.
 */
function vpass(): number[] {
  // params 0 taps, 1 tapsEnd, 2 rows, 3 width, 4 dst; locals 5 t, 6 u, 7 k, 8 last (i32), 9 a, 10 b (f64), 11 va, 12 vb, 13 half, 14 v (v128)
  const [taps, tapsEnd, rows, width, dst, t, u, k, last, a, b, va, vb, half, v] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const step = (local: number, by: number) => [...get(local), ...i32c(by), ...add, ...set(local)];
  // One byte: dst[0] = trunc(a * t[0] + b * u[0] + 0.5).
  const one = [
    ...get(dst),
    ...get(a),
    ...get(t),
    ...loadF64(0),
    ...fmul,
    ...get(b),
    ...get(u),
    ...loadF64(0),
    ...fmul,
    ...fadd,
    ...f64c(0.5),
    ...fadd,
    ...truncU,
    ...store8,
    ...step(t, 8),
    ...step(u, 8),
    ...step(dst, 1),
  ];
  // Two bytes at once, the same operations lane by lane (f64x2: IEEE, no fused multiply-add).
  const two = [
    ...get(dst),
    ...get(va),
    ...get(t),
    ...v128Load,
    ...f64x2Mul,
    ...get(vb),
    ...get(u),
    ...v128Load,
    ...f64x2Mul,
    ...f64x2Add,
    ...get(half),
    ...f64x2Add,
    ...truncSatU,
    0x22,
    ...uleb(v), // local.tee
    ...store8Lane(0, 0),
    ...get(dst),
    ...get(v),
    ...store8Lane(1, 4),
    ...step(t, 16),
    ...step(u, 16),
    ...step(dst, 2),
  ];
  const row = [
    ...get(rows),
    ...get(taps),
    ...loadI32,
    ...add,
    ...set(t),
    ...get(rows),
    ...get(taps),
    0x28,
    2,
    4,
    ...add,
    ...set(u),
    ...get(taps),
    ...loadF64(8),
    ...set(a),
    ...get(taps),
    ...loadF64(16),
    ...set(b),
    ...get(a),
    ...f64x2Splat,
    ...set(va),
    ...get(b),
    ...f64x2Splat,
    ...set(vb),
    ...i32c(0),
    ...set(k),
    // k counts the row's bytes (dst advances with it): pairs while two are left, then the odd one.
    ...forLoop(k, get(last), 2, two),
    ...forLoop(k, get(width), 1, one),
  ];
  const setup = [...f64c(0.5), ...f64x2Splat, ...set(half), ...get(width), ...i32c(1), 0x6b, ...set(last)];
  const body = [...setup, ...forLoop(taps, get(tapsEnd), 24, row)];
  return [
    ...vec(
      [
        [4, I32],
        [2, F64],
        [4, V128],
      ].map(([n, t2]) => [...uleb(n!), t2!]),
    ),
    ...body,
    0x0b,
  ];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const types = section(
    1,
    vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 0],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), 0],
    ]),
  );
  const funcs = section(3, vec([[0], [1]]));
  const memory = section(5, vec([[0x00, ...uleb(1)]]));
  const exports = section(
    7,
    vec([
      [...name('mem'), 0x02, 0],
      [...name('hpass'), 0x00, 0],
      [...name('vpass'), 0x00, 1],
    ]),
  );
  const code = section(10, vec([hpass(), vpass()].map((f) => [...uleb(f.length), ...f])));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...funcs, ...memory, ...exports, ...code]);
}

interface Kernel {
  memory: WebAssembly.Memory;
  hpass(src: number, rowAt: number, rowEnd: number, cols: number, colsEnd: number, out: number): void;
  vpass(taps: number, tapsEnd: number, rows: number, width: number, dst: number): void;
}

let compiled: WebAssembly.Module | null = null;
/** Instances no resizer holds: reused, as a fresh WebAssembly memory per clip costs a reservation and wakes the GC. */
const free: Kernel[] = [];
/** At most this many idle instances are kept (one per decoder running at once is the need). */
const KEEP = 8;

/** An instance of the kernel with a memory of at least `bytes` (the module is compiled once); give it back with `releaseKernel`. */
export function resizeKernel(bytes: number): Kernel {
  compiled ??= new WebAssembly.Module(moduleBytes());
  const k =
    free.pop() ??
    (() => {
      const e = new WebAssembly.Instance(compiled).exports as unknown as { mem: WebAssembly.Memory; hpass: Kernel['hpass']; vpass: Kernel['vpass'] };
      return { memory: e.mem, hpass: e.hpass, vpass: e.vpass };
    })();
  const have = k.memory.buffer.byteLength;
  if (have < bytes) k.memory.grow(Math.ceil((bytes - have) / 65536));
  return k;
}

/** Returns an instance for reuse; the caller must hold no view of its memory any more. */
export function releaseKernel(k: Kernel): void {
  if (free.length < KEEP && !free.includes(k)) free.push(k);
}
