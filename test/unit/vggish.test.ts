import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import {
  FFT_LENGTH,
  LOG_OFFSET,
  NUM_MEL_BINS,
  NUM_SPECTROGRAM_BINS,
  SAMPLES_PER_EXAMPLE,
  logMelSpectrogram,
  melWeightMatrix,
  periodicHann,
  rfftMagnitude,
  vggishExamples,
} from '../../src/features/vggish.js';

// Fixture written by scripts/vggish_reference.py (numpy, independent of the code under test).
interface RefCase {
  name: string;
  sampleRate: number;
  numSamples: number;
  shape: number[];
  pcm: { offset: number; count: number; dtype: 'int16le'; scale: number };
  examples: { offset: number; count: number; dtype: 'float32le' };
}
interface RefMeta {
  melMatrix: { shape: [number, number]; entries: [number, number, number][] };
  cases: RefCase[];
}

const dir = new URL('../../fixtures/reference/', import.meta.url);
const meta = JSON.parse(readFileSync(new URL('vggish_frontend.json', dir), 'utf8')) as RefMeta;
const blob = readFileSync(new URL('vggish_frontend.bin', dir));

function refPcm(c: RefCase): Float32Array {
  const out = new Float32Array(c.pcm.count);
  for (let i = 0; i < out.length; i++) out[i] = blob.readInt16LE(c.pcm.offset + 2 * i) / c.pcm.scale;
  return out;
}
function refExamples(c: RefCase): Float32Array {
  const out = new Float32Array(c.examples.count);
  for (let i = 0; i < out.length; i++) out[i] = blob.readFloatLE(c.examples.offset + 4 * i);
  return out;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = d; // NaN propagates as a failure
  }
  return max;
}
function caseNamed(name: string): RefCase {
  const c = meta.cases.find((x) => x.name === name);
  if (c === undefined) throw new Error(`fixture has no case ${name}`);
  return c;
}

const EXAMPLE_SIZE = 96 * NUM_MEL_BINS;
const TOLERANCE = 1e-4;

describe('VGGish front end vs numpy reference', () => {
  it.each(meta.cases.map((c) => [c.name, c] as const))('%s: shape and values', (_name, c) => {
    const got = vggishExamples(refPcm(c), c.sampleRate);
    expect(got.shape).toEqual(c.shape);
    expect(got.data).toBeInstanceOf(Float32Array);
    const err = got.data.length === 0 ? 0 : maxAbsDiff(got.data, refExamples(c));
    expect(err).toBeLessThan(TOLERANCE);
  });

  it('reference covers loud, quiet and silent frames (so a wrong front end cannot pass by accident)', () => {
    const ref = refExamples(caseNamed('mix_3s'));
    const min = ref.reduce((m, v) => Math.min(m, v), Infinity);
    const max = ref.reduce((m, v) => Math.max(m, v), -Infinity);
    expect(min).toBeCloseTo(Math.log(LOG_OFFSET), 5); // the digital-silence gap
    expect(max).toBeGreaterThan(3);
  });

  it('mel weight matrix equals mel_features.spectrogram_to_mel_matrix', () => {
    const [rows, cols] = meta.melMatrix.shape;
    expect([rows, cols]).toEqual([NUM_SPECTROGRAM_BINS, NUM_MEL_BINS]);
    const expected = new Float64Array(rows * cols);
    for (const [r, c, w] of meta.melMatrix.entries) expected[r * cols + c] = w;
    expect(maxAbsDiff(melWeightMatrix(), expected)).toBeLessThan(1e-12);
  });

  it('float64 log-mel frames agree with the float32 examples', () => {
    const c = caseNamed('loud_1_5s');
    const { data, shape } = logMelSpectrogram(refPcm(c), 16000);
    expect(shape).toEqual([148, NUM_MEL_BINS]); // 1 + floor((24000 - 400) / 160), tail included
    expect(maxAbsDiff(data.subarray(0, EXAMPLE_SIZE), refExamples(c))).toBeLessThan(TOLERANCE);
  });
});

describe('building blocks', () => {
  it('rfftMagnitude matches a direct DFT', () => {
    let state = 99;
    const x = new Float64Array(400);
    for (let i = 0; i < x.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      x[i] = state / 2 ** 31 - 1;
    }
    const got = rfftMagnitude(x);
    const want = new Float64Array(NUM_SPECTROGRAM_BINS);
    for (let k = 0; k < want.length; k++) {
      let re = 0;
      let im = 0;
      for (let n = 0; n < x.length; n++) {
        re += x[n] * Math.cos((2 * Math.PI * k * n) / FFT_LENGTH);
        im -= x[n] * Math.sin((2 * Math.PI * k * n) / FFT_LENGTH);
      }
      want[k] = Math.hypot(re, im);
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-9);
  });

  it('periodicHann is the periodic (not symmetric) window', () => {
    const w = periodicHann(400);
    expect(w[0]).toBe(0);
    expect(w[200]).toBeCloseTo(1, 15);
    expect(w[399]).toBeGreaterThan(0); // a symmetric window would end on 0
    expect(w[1]).toBeCloseTo(w[399], 15);
  });

  it('digital silence gives log(0.01) everywhere', () => {
    const { data } = vggishExamples(new Float32Array(SAMPLES_PER_EXAMPLE), 16000);
    expect(data.length).toBe(EXAMPLE_SIZE);
    for (const v of data) expect(v).toBe(Math.fround(Math.log(0.01)));
  });
});

describe('frame and example boundaries', () => {
  // Prefixes of the reference signal: frames are local, so a prefix must reproduce the
  // reference's leading examples exactly, and must stop at the right sample count.
  const c = caseNamed('mix_3s');
  const pcm = refPcm(c);
  const ref = refExamples(c);
  it.each([
    [0, 0],
    [1, 0],
    [399, 0],
    [400, 0], // one frame
    [8000, 0],
    [15599, 0], // 95 frames
    [15600, 1], // exactly 96 frames
    [30959, 1], // 191 frames
    [30960, 2], // exactly 192 frames
    [46319, 2],
    [46320, 3],
    [48000, 3],
  ])('%i samples -> %i examples', (length, examples) => {
    const got = vggishExamples(pcm.subarray(0, length), 16000);
    expect(got.shape).toEqual([examples, 1, 96, 64]);
    expect(got.data.length).toBe(examples * EXAMPLE_SIZE);
    if (examples > 0) expect(maxAbsDiff(got.data, ref.subarray(0, examples * EXAMPLE_SIZE))).toBeLessThan(TOLERANCE);
  });

  it('10 s of audio (998 frames) gives 10 examples', () => {
    const { shape } = logMelSpectrogram(new Float32Array(160000), 16000);
    expect(shape[0]).toBe(998);
    expect(vggishExamples(new Float32Array(160000), 16000).shape).toEqual([10, 1, 96, 64]);
  });
});

describe('input validation', () => {
  it.each([
    [44100, 'VGGish front end expects 16000 Hz audio but received 44100 Hz; resample before this stage (ffmpeg -ar 16000)'],
    [48000, 'VGGish front end expects 16000 Hz audio but received 48000 Hz; resample before this stage (ffmpeg -ar 16000)'],
    [8000, 'VGGish front end expects 16000 Hz audio but received 8000 Hz; resample before this stage (ffmpeg -ar 16000)'],
    [NaN, 'VGGish front end expects 16000 Hz audio but received NaN Hz; resample before this stage (ffmpeg -ar 16000)'],
  ])('sample rate %d is rejected', (rate, message) => {
    for (const fn of [vggishExamples, logMelSpectrogram]) {
      let caught: unknown;
      try {
        fn(new Float32Array(20000), rate);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ClipstreamError);
      expect((caught as ClipstreamError).code).toBe('ERR_FORMAT');
      expect((caught as ClipstreamError).message).toBe(message);
    }
  });

  it('rejects PCM that is not a float typed array', () => {
    expect(() => vggishExamples([0, 0, 0] as unknown as Float32Array, 16000)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });

  it('rejects a mel range above Nyquist', () => {
    expect(() => melWeightMatrix({ upperEdgeHertz: 9000 })).toThrow(
      'Expected 0 <= lowerEdgeHertz < upperEdgeHertz <= Nyquist (8000 Hz) but received 125 and 9000',
    );
  });
});
