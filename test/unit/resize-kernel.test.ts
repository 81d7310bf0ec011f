/**
 * The exact resize (WebAssembly kernel) against the recipe written out pixel by pixel: torch's
 * bilinear `align_corners=False` taps (float32 scale and source position, clamped at 0), the
 * short side to `size` (long side floored), SlowFast's crop, the two blends in doubles
 * (horizontal first), rounded half up. Every byte must be equal, not within a level: the
 * kernel replaced plain loops that gave these bytes, and the features must not move.
 * The stream side (PickedFrames) must give the same frames whatever the chunking.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resizeWindowFilter } from '../../src/media/decode.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { PickedFrames } from '../../src/media/picked-frames.js';
import { FrameResizer } from '../../src/media/resize.js';

function recipe(src: Uint8Array, w: number, h: number, size: number, crop: 'top-left' | 'center'): Uint8Array {
  const f = Math.fround;
  const sw = w < h ? size : Math.floor((w / h) * size);
  const sh = w < h ? Math.floor((h / w) * size) : size;
  let cx = Math.ceil((sw - size) / 2);
  let cy = Math.ceil((sh - size) / 2);
  if (crop === 'top-left') {
    if (sh > sw) cy = 0;
    else cx = 0;
  }
  const tap = (inSize: number, outSize: number, o: number): [number, number, number] => {
    const s = Math.max(0, f(f(f(inSize / outSize) * f(o + 0.5)) - 0.5));
    const lo = Math.min(Math.floor(s), inSize - 1);
    return [lo, Math.min(lo + 1, inSize - 1), Math.min(Math.max(f(s - lo), 0), 1)];
  };
  const out = new Uint8Array(size * size * 3);
  for (let r = 0; r < size; r++) {
    const [y0, y1, b] = tap(h, sh, cy + r);
    for (let c = 0; c < size; c++) {
      const [x0, x1, q] = tap(w, sw, cx + c);
      for (let ch = 0; ch < 3; ch++) {
        const px = (y: number, x: number) => src[(y * w + x) * 3 + ch]!;
        const top = (1 - q) * px(y0, x0) + q * px(y0, x1);
        const bottom = (1 - q) * px(y1, x0) + q * px(y1, x1);
        out[(r * size + c) * 3 + ch] = Math.floor((1 - b) * top + b * bottom + 0.5);
      }
    }
  }
  return out;
}

/** A frame with gradients, noise and hard edges (every tap weight matters). */
function frame(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let x = seed;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const p = Math.floor(i / 3);
    out[i] = (p % w) * 7 + Math.floor(p / w) * 3 > 300 ? x >>> 24 : ((p % w) * 255) / w;
  }
  return out;
}

const cases: Array<[number, number, number, 'top-left' | 'center']> = [
  [640, 360, 256, 'top-left'],
  [320, 240, 256, 'center'],
  [270, 480, 256, 'center'],
  [271, 479, 64, 'top-left'],
  [99, 37, 32, 'center'],
  [97, 41, 33, 'top-left'],
  [256, 256, 256, 'top-left'],
  [1281, 721, 100, 'center'],
];

describe('FrameResizer (WebAssembly kernel) gives the recipe byte for byte', () => {
  it.each(cases)('%ix%i to %i (%s)', (w, h, size, crop) => {
    const r = new FrameResizer(w, h, size, crop);
    const src = new Uint8Array(2 * w * h * 3);
    src.set(frame(w, h, 1));
    src.set(frame(w, h, 2), w * h * 3);
    const dst = new Uint8Array(2 * size * size * 3);
    r.resize(src, 0, dst, 0);
    r.resize(src, w * h * 3, dst, size * size * 3);
    r.close();
    expect(Buffer.from(dst.subarray(0, size * size * 3)).equals(Buffer.from(recipe(frame(w, h, 1), w, h, size, crop)))).toBe(true);
    expect(Buffer.from(dst.subarray(size * size * 3)).equals(Buffer.from(recipe(frame(w, h, 2), w, h, size, crop)))).toBe(true);
  });

  it('resizers of different sizes used in turn, and kernels reused after close, keep their own tables', () => {
    const a = new FrameResizer(64, 48, 32, 'center');
    const b = new FrameResizer(48, 64, 40, 'top-left');
    const fa = frame(64, 48, 3);
    const fb = frame(48, 64, 4);
    const oa = new Uint8Array(32 * 32 * 3);
    const ob = new Uint8Array(40 * 40 * 3);
    for (let i = 0; i < 2; i++) {
      a.resize(fa, 0, oa, 0);
      b.resize(fb, 0, ob, 0);
      expect(Buffer.from(oa).equals(Buffer.from(recipe(fa, 64, 48, 32, 'center')))).toBe(true);
      expect(Buffer.from(ob).equals(Buffer.from(recipe(fb, 48, 64, 40, 'top-left')))).toBe(true);
    }
    a.close();
    expect(() => a.resize(fa, 0, oa, 0)).toThrow(/after close/);
    const c = new FrameResizer(30, 20, 16, 'top-left'); // may get a's kernel
    const fc = frame(30, 20, 5);
    const oc = new Uint8Array(16 * 16 * 3);
    c.resize(fc, 0, oc, 0);
    b.resize(fb, 0, ob, 0);
    expect(Buffer.from(oc).equals(Buffer.from(recipe(fc, 30, 20, 16, 'top-left')))).toBe(true);
    expect(Buffer.from(ob).equals(Buffer.from(recipe(fb, 48, 64, 40, 'top-left')))).toBe(true);
  });
});

describe('PickedFrames: the picked frames resized as the bytes arrive', () => {
  const [w, h, size] = [99, 61, 24];
  const distinct = [frame(w, h, 10), frame(w, h, 11), frame(w, h, 12)];
  // Picks repeat when a clip has fewer frames than asked for: frame 0 twice, frame 2 three times.
  const picks = [0, 0, 4, 9, 9, 9];
  const source = Buffer.concat(distinct.map((d) => Buffer.from(d)));
  const expected = Buffer.concat([0, 0, 1, 2, 2, 2].map((i) => Buffer.from(recipe(distinct[i]!, w, h, size, 'center'))));
  // The whole frame piped (a window as large as the frame): the crop filter's line says so.
  const stream = `[Parsed_crop_4 @ 0x55d0c0a8e2c0] w:${w} h:${h} sar:1/1 -> w:${w} h:${h} sar:1/1`;

  it.each([1, 7, 4096, 65536, source.length])('in chunks of %i bytes, the size known from the start', (chunk) => {
    const p = new PickedFrames(picks, size, 'center');
    for (const line of stream.split('\n')) p.line(line);
    for (let at = 0; at < source.length; at += chunk) p.push(source.subarray(at, at + chunk));
    expect(p.finish('')).toEqual({ width: w, height: h });
    expect(p.complete()).toBe(true);
    expect(Buffer.from(p.frames).equals(expected)).toBe(true);
    p.close();
  });

  it('bytes that come before the size line wait for it; a size only in the final stderr still works', () => {
    const late = new PickedFrames(picks, size, 'center');
    late.push(source.subarray(0, 1000));
    for (const line of stream.split('\n')) late.line(line);
    late.push(source.subarray(1000));
    late.finish('');
    expect(late.complete()).toBe(true);
    expect(Buffer.from(late.frames).equals(expected)).toBe(true);
    const never = new PickedFrames(picks, size, 'center');
    never.push(source);
    expect(never.complete()).toBe(false);
    never.finish(`frame=1\n${stream}\nOutput #0`);
    expect(never.complete()).toBe(true);
    expect(Buffer.from(never.frames).equals(expected)).toBe(true);
  });

  it('too few or too many bytes, or no size at all, is not complete', () => {
    const short = new PickedFrames(picks, size, 'center');
    short.push(source.subarray(0, source.length - 1));
    short.finish(stream);
    expect(short.complete()).toBe(false);
    const long = new PickedFrames(picks, size, 'center');
    long.push(Buffer.concat([source, Buffer.alloc(3)]));
    long.finish(stream);
    expect(long.complete()).toBe(false);
    const unknown = new PickedFrames(picks, size, 'center');
    unknown.push(source);
    expect(unknown.finish('no crop line here')).toBe(null);
    expect(unknown.complete()).toBe(false);
  });
});

describe('the window ffmpeg cuts before the pipe (resizeWindowFilter) holds every pixel the resize reads', () => {
  // Real ffmpeg, one RGB frame per size: the whole frame (for the recipe) and the window cut by
  // the filter (what the exact decode pipes); PickedFrames takes the window's sizes from the crop
  // filter's own log line. Odd sizes, both orientations, up- and downscales, extreme aspects.
  const sizes: Array<[number, number, number, 'top-left' | 'center']> = [
    [640, 360, 256, 'top-left'],
    [640, 360, 256, 'center'],
    [321, 241, 256, 'center'],
    [270, 480, 256, 'top-left'],
    [271, 479, 256, 'center'],
    [1281, 721, 224, 'center'],
    [2000, 64, 32, 'center'],
    [64, 1999, 40, 'top-left'],
    [101, 53, 8, 'center'],
    [37, 29, 256, 'top-left'],
    [999, 997, 256, 'center'],
    [257, 256, 256, 'center'],
  ];
  const run = (args: string[]) => execFileSync(ffmpegPath(), ['-hide_banner', '-nostats', ...args], { maxBuffer: 1 << 28 });

  it.each(sizes)('%ix%i to %i (%s)', (w, h, size, crop) => {
    // testsrc2 rounds odd sizes down: its frame is scaled to the size (nearest neighbour keeps edges sharp).
    const source = ['-f', 'lavfi', '-i', `testsrc2=s=${w + 1}x${h + 1}:r=25:d=0.04`, '-frames:v', '1'];
    const rgb = `format=rgb24,scale=${w}:${h}:flags=neighbor`;
    const full = run(['-loglevel', 'error', ...source, '-vf', rgb, '-f', 'rawvideo', 'pipe:1']);
    expect(full.length).toBe(w * h * 3);
    const cut = spawnSync(
      ffmpegPath(),
      [
        '-hide_banner',
        '-nostats',
        '-loglevel',
        'verbose',
        ...source,
        '-filter_complex',
        `[0:v]${rgb},${resizeWindowFilter(size, crop)}[v]`,
        '-map',
        '[v]',
        '-f',
        'rawvideo',
        'pipe:1',
      ],
      { maxBuffer: 1 << 28 },
    );
    expect(cut.status).toBe(0);
    expect(cut.stdout.length).toBeLessThanOrEqual(full.length);
    const p = new PickedFrames([0], size, crop);
    p.push(cut.stdout);
    const stderr = cut.stderr.toString('utf8');
    expect(p.finish(stderr)).toEqual({ width: w, height: h });
    expect(p.failure).toBe(null);
    expect(p.complete()).toBe(true);
    expect(Buffer.from(p.frames).equals(Buffer.from(recipe(new Uint8Array(full), w, h, size, crop)))).toBe(true);
    p.close();
  });

  it('a window that misses a pixel the resize reads is refused, not resized', () => {
    expect(() => new FrameResizer(640, 360, 256, 'top-left', { x: 0, y: 0, width: 300, height: 360 })).toThrow(/misses pixels the resize to 256 reads/);
    expect(() => new FrameResizer(640, 360, 256, 'center', { x: 142, y: 0, width: 362, height: 360 })).toThrow(/misses pixels/);
  });
});
