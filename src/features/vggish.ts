/**
 * VGGish log-mel front end: mono 16 kHz PCM -> [N, 1, 96, 64] examples, matching the
 * published AudioSet code (tensorflow/models research/audioset/vggish: vggish_params.py,
 * mel_features.py, vggish_input.py; torchvggish copies it). The VGGish weights were
 * trained on exactly these features, so every detail (periodic window, no frame padding,
 * magnitude rather than power, mel triangles built in the mel domain, zeroed DC row,
 * log offset, dropped tails) is kept. scripts/vggish_reference.py and
 * test/unit/vggish.test.ts prove the match.
 */
import { ClipstreamError, InvalidOptionError } from '../errors.js';
import type { Tensor } from '../types.js';

/** Sample rate the features are defined at; resampling belongs to the decoder (ffmpeg). */
export const VGGISH_SAMPLE_RATE = 16000;
/** 25 ms analysis window at 16 kHz. */
export const STFT_WINDOW_LENGTH = 400;
/** 10 ms hop at 16 kHz. */
export const STFT_HOP_LENGTH = 160;
/** Next power of two above the window, as mel_features.log_mel_spectrogram picks it. */
export const FFT_LENGTH = 512;
/** Non-redundant bins of a real FFT of FFT_LENGTH. */
export const NUM_SPECTROGRAM_BINS = FFT_LENGTH / 2 + 1;
export const NUM_MEL_BINS = 64;
export const MEL_MIN_HZ = 125;
export const MEL_MAX_HZ = 7500;
/** Added before the log so silence maps to log(0.01) instead of -Infinity. */
export const LOG_OFFSET = 0.01;
/** Frames per example (0.96 s). */
export const EXAMPLE_FRAMES = 96;
/** Examples do not overlap. */
export const EXAMPLE_HOP_FRAMES = 96;
/** Shortest input that yields one example: 400 + 95 * 160 = 15600 samples. */
export const SAMPLES_PER_EXAMPLE = STFT_WINDOW_LENGTH + (EXAMPLE_FRAMES - 1) * STFT_HOP_LENGTH;

const MEL_BREAK_FREQUENCY_HERTZ = 700;
const MEL_HIGH_FREQUENCY_Q = 1127;

/** PCM accepted by the front end; float64 is allowed so tests can feed exact values. */
export type Pcm = Float32Array | Float64Array;

/**
 * HTK mel scale, natural-log form. VGGish uses this, not the Slaney scale of librosa's default.
 *
 * @example hertzToMel(700) // 1127 * ln 2 ≈ 781.17
 */
export function hertzToMel(hertz: number): number {
  return MEL_HIGH_FREQUENCY_Q * Math.log(1 + hertz / MEL_BREAK_FREQUENCY_HERTZ);
}

/**
 * Periodic Hann window, 0.5 - 0.5 cos(2πn/N): one full period over N points, unlike the
 * symmetric window of numpy.hanning. Using the symmetric one shifts every feature slightly.
 *
 * @example periodicHann(4) // [0, 0.5, 1, 0.5]
 */
export function periodicHann(length: number): Float64Array {
  const window = new Float64Array(length);
  for (let n = 0; n < length; n++) window[n] = 0.5 - 0.5 * Math.cos(((2 * Math.PI) / length) * n);
  return window;
}

/**
 * Complete frames in `count` items, without padding: 1 + floor((count - window) / hop),
 * never negative (upstream errors out below one window; here it is simply zero).
 *
 * @example countFrames(15600, 400, 160) // 96
 */
export function countFrames(count: number, windowLength: number, hopLength: number): number {
  if (count < windowLength) return 0;
  return 1 + Math.floor((count - windowLength) / hopLength);
}

export interface MelMatrixOptions {
  numMelBins?: number;
  numSpectrogramBins?: number;
  sampleRate?: number;
  lowerEdgeHertz?: number;
  upperEdgeHertz?: number;
}

/** numpy.linspace's arithmetic (start + i * step, last point pinned to stop), so bin edges agree to the last bit. */
function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * Mel weight matrix, row-major [numSpectrogramBins][numMelBins], so that mel = spectrum · W.
 * Triangles are linear in mel (not Hz), band edges are evenly spaced in mel between the
 * edge frequencies, and the DC row is zero, as in mel_features.spectrogram_to_mel_matrix.
 * Defaults are VGGish's (64 bands, 257 bins, 16 kHz, 125-7500 Hz). Returns a fresh array.
 *
 * @example
 * const w = melWeightMatrix();          // 257 * 64 entries
 * const weightOfBin5InBand0 = w[5 * 64 + 0];
 */
export function melWeightMatrix(options: MelMatrixOptions = {}): Float64Array {
  const numMelBins = options.numMelBins ?? NUM_MEL_BINS;
  const numBins = options.numSpectrogramBins ?? NUM_SPECTROGRAM_BINS;
  const sampleRate = options.sampleRate ?? VGGISH_SAMPLE_RATE;
  const lower = options.lowerEdgeHertz ?? MEL_MIN_HZ;
  const upper = options.upperEdgeHertz ?? MEL_MAX_HZ;
  const nyquist = sampleRate / 2;
  if (!Number.isInteger(numMelBins) || numMelBins < 1) {
    throw new InvalidOptionError(`Expected integer of at least 1 for numMelBins but received ${numMelBins}`, 'numMelBins');
  }
  if (!Number.isInteger(numBins) || numBins < 2) {
    throw new InvalidOptionError(`Expected integer of at least 2 for numSpectrogramBins but received ${numBins}`, 'numSpectrogramBins');
  }
  if (!(lower >= 0 && lower < upper && upper <= nyquist)) {
    throw new InvalidOptionError(
      `Expected 0 <= lowerEdgeHertz < upperEdgeHertz <= Nyquist (${nyquist} Hz) but received ${lower} and ${upper}`,
      'lowerEdgeHertz',
    );
  }
  const binsMel = linspace(0, nyquist, numBins).map(hertzToMel);
  const edges = linspace(hertzToMel(lower), hertzToMel(upper), numMelBins + 2);
  const matrix = new Float64Array(numBins * numMelBins);
  for (let band = 0; band < numMelBins; band++) {
    const lo = edges[band];
    const mid = edges[band + 1];
    const hi = edges[band + 2];
    // Row 0 stays zero: HTK leaves the DC bin out of every band.
    for (let bin = 1; bin < numBins; bin++) {
      const rising = (binsMel[bin] - lo) / (mid - lo);
      const falling = (hi - binsMel[bin]) / (hi - mid);
      matrix[bin * numMelBins + band] = Math.max(0, Math.min(rising, falling));
    }
  }
  return matrix;
}

/**
 * Everything that depends only on the constants, built on first use so importing the
 * module costs nothing and per-frame work allocates nothing.
 */
interface Plan {
  window: Float64Array;
  /** Bit-reversal permutation of the 256-point complex FFT. */
  bitrev: Uint16Array;
  /** cos/sin(2πk/256), k < 128: butterfly twiddles. */
  cos256: Float64Array;
  sin256: Float64Array;
  /** cos/sin(2πk/512), k <= 256: split a packed 256-point result into the 512-point real spectrum. */
  cos512: Float64Array;
  sin512: Float64Array;
  re: Float64Array;
  im: Float64Array;
  magnitude: Float64Array;
  /** Mel matrix stored by band as contiguous runs of non-zero weights: ~460 products per frame instead of 16448. */
  bandStart: Int32Array;
  bandWeights: Float64Array[];
}

const HALF = FFT_LENGTH / 2;
let plan: Plan | undefined;

function getPlan(): Plan {
  if (plan !== undefined) return plan;
  const bits = Math.log2(HALF);
  const bitrev = new Uint16Array(HALF);
  for (let i = 0; i < HALF; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    bitrev[i] = r;
  }
  const cos256 = new Float64Array(HALF / 2);
  const sin256 = new Float64Array(HALF / 2);
  for (let k = 0; k < HALF / 2; k++) {
    cos256[k] = Math.cos((2 * Math.PI * k) / HALF);
    sin256[k] = Math.sin((2 * Math.PI * k) / HALF);
  }
  const cos512 = new Float64Array(HALF + 1);
  const sin512 = new Float64Array(HALF + 1);
  for (let k = 0; k <= HALF; k++) {
    cos512[k] = Math.cos((2 * Math.PI * k) / FFT_LENGTH);
    sin512[k] = Math.sin((2 * Math.PI * k) / FFT_LENGTH);
  }
  const matrix = melWeightMatrix();
  const bandStart = new Int32Array(NUM_MEL_BINS);
  const bandWeights: Float64Array[] = [];
  for (let band = 0; band < NUM_MEL_BINS; band++) {
    let first = -1;
    let last = -1;
    for (let bin = 0; bin < NUM_SPECTROGRAM_BINS; bin++) {
      if (matrix[bin * NUM_MEL_BINS + band] !== 0) {
        if (first < 0) first = bin;
        last = bin;
      }
    }
    const weights = new Float64Array(first < 0 ? 0 : last - first + 1);
    for (let i = 0; i < weights.length; i++) weights[i] = matrix[(first + i) * NUM_MEL_BINS + band];
    bandStart[band] = Math.max(first, 0);
    bandWeights.push(weights);
  }
  plan = {
    window: periodicHann(STFT_WINDOW_LENGTH),
    bitrev,
    cos256,
    sin256,
    cos512,
    sin512,
    re: new Float64Array(HALF),
    im: new Float64Array(HALF),
    magnitude: new Float64Array(NUM_SPECTROGRAM_BINS),
    bandStart,
    bandWeights,
  };
  return plan;
}

/**
 * |rfft| of the 512 real samples already packed into p.re/p.im (even samples as real,
 * odd as imaginary, in bit-reversed order): a 256-point complex FFT plus one split pass
 * does the work of a 512-point real FFT at half the cost.
 */
function packedMagnitude(p: Plan): Float64Array {
  const { re, im, cos256, sin256, cos512, sin512, magnitude } = p;
  for (let size = 2; size <= HALF; size <<= 1) {
    const half = size >> 1;
    const stride = HALF / size;
    // Twiddle outermost: early stages would otherwise spin tiny inner loops 128 times.
    for (let j = 0; j < half; j++) {
      const wr = cos256[j * stride];
      const wi = -sin256[j * stride];
      for (let a = j; a < HALF; a += size) {
        const b = a + half;
        const tr = wr * re[b] - wi * im[b];
        const ti = wr * im[b] + wi * re[b];
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
  magnitude[0] = Math.abs(re[0] + im[0]);
  magnitude[HALF] = Math.abs(re[0] - im[0]);
  for (let k = 1; k < HALF; k++) {
    const a = re[k];
    const b = im[k];
    const c = re[HALF - k];
    const d = im[HALF - k];
    // Even part (a + c, b - d)/2 and odd part ((b + d), (c - a))/2; X = E + e^{-2πik/512}·O.
    const er = 0.5 * (a + c);
    const ei = 0.5 * (b - d);
    const or = 0.5 * (b + d);
    const oi = 0.5 * (c - a);
    const xr = er + cos512[k] * or + sin512[k] * oi;
    const xi = ei + cos512[k] * oi - sin512[k] * or;
    magnitude[k] = Math.sqrt(xr * xr + xi * xi);
  }
  return magnitude;
}

/**
 * Magnitudes of the 257 non-redundant bins of the 512-point real FFT of `input`
 * (zero-padded up to 512 samples). Exposed so tests can check the FFT on its own.
 *
 * @example
 * const mag = rfftMagnitude(new Float64Array(512).fill(1)); // mag[0] === 512, others ~0
 *
 * @internal used by tests only
 */
export function rfftMagnitude(input: ArrayLike<number>, out: Float64Array = new Float64Array(NUM_SPECTROGRAM_BINS)): Float64Array {
  if (input.length > FFT_LENGTH) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `rfftMagnitude takes at most ${FFT_LENGTH} samples but received ${input.length}`);
  }
  const p = getPlan();
  for (let n = 0; n < HALF; n++) {
    const i = 2 * n;
    p.re[p.bitrev[n]] = i < input.length ? input[i] : 0;
    p.im[p.bitrev[n]] = i + 1 < input.length ? input[i + 1] : 0;
  }
  out.set(packedMagnitude(p));
  return out;
}

function checkInput(pcm: Pcm, sampleRate: number): void {
  if (!(pcm instanceof Float32Array || pcm instanceof Float64Array)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', 'VGGish front end expects PCM as a Float32Array or Float64Array');
  }
  if (sampleRate !== VGGISH_SAMPLE_RATE) {
    throw new ClipstreamError(
      'ERR_FORMAT',
      `VGGish front end expects ${VGGISH_SAMPLE_RATE} Hz audio but received ${sampleRate} Hz; resample before this stage (ffmpeg -ar ${VGGISH_SAMPLE_RATE})`,
    );
  }
}

/** Writes `numFrames` log-mel rows (64 values each) into `out`, computing in float64 whatever `out` stores. */
function fillLogMel(pcm: Pcm, numFrames: number, out: Float32Array | Float64Array): void {
  const p = getPlan();
  const { window, bitrev, re, im, bandStart, bandWeights } = p;
  for (let f = 0; f < numFrames; f++) {
    const offset = f * STFT_HOP_LENGTH;
    // Load the windowed frame straight into the packed, bit-reversed FFT input; the
    // window length is even, so samples pair up exactly and the rest is zero padding.
    for (let n = 0; n < STFT_WINDOW_LENGTH / 2; n++) {
      const i = 2 * n;
      const slot = bitrev[n];
      re[slot] = window[i] * pcm[offset + i];
      im[slot] = window[i + 1] * pcm[offset + i + 1];
    }
    for (let n = STFT_WINDOW_LENGTH / 2; n < HALF; n++) {
      re[bitrev[n]] = 0;
      im[bitrev[n]] = 0;
    }
    const magnitude = packedMagnitude(p);
    const row = f * NUM_MEL_BINS;
    for (let band = 0; band < NUM_MEL_BINS; band++) {
      const weights = bandWeights[band];
      const start = bandStart[band];
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += weights[i] * magnitude[start + i];
      out[row + band] = Math.log(sum + LOG_OFFSET);
    }
  }
}

/**
 * Log-mel spectrogram of the whole signal, float64, row-major [numFrames][64]: every
 * complete 25 ms frame at a 10 ms hop, no padding. Throws ERR_FORMAT unless
 * `sampleRate` is 16000.
 *
 * @example
 * const { data, shape } = logMelSpectrogram(new Float32Array(16000), 16000);
 * // shape = [98, 64]; silence gives log(0.01) everywhere
 */
export function logMelSpectrogram(pcm: Pcm, sampleRate: number): { data: Float64Array; shape: [number, number] } {
  checkInput(pcm, sampleRate);
  const numFrames = countFrames(pcm.length, STFT_WINDOW_LENGTH, STFT_HOP_LENGTH);
  const data = new Float64Array(numFrames * NUM_MEL_BINS);
  fillLogMel(pcm, numFrames, data);
  return { data, shape: [numFrames, NUM_MEL_BINS] };
}

/**
 * VGGish model input: non-overlapping 0.96 s log-mel patches, shape [N, 1, 96, 64], float32,
 * row-major; the incomplete tail is dropped, so audio under 15600 samples gives N = 0
 * (shape [0, 1, 96, 64]) rather than an error. `pcm` is mono in [-1, 1]; `sampleRate`
 * must be 16000 (ClipstreamError ERR_FORMAT otherwise).
 *
 * @example
 * const ex = vggishExamples(audio.pcm, audio.sampleRate); // 10 s -> shape [10, 1, 96, 64]
 */
export function vggishExamples(pcm: Pcm, sampleRate: number): Tensor {
  checkInput(pcm, sampleRate);
  const numFrames = countFrames(pcm.length, STFT_WINDOW_LENGTH, STFT_HOP_LENGTH);
  const numExamples = countFrames(numFrames, EXAMPLE_FRAMES, EXAMPLE_HOP_FRAMES);
  // With hop == window the examples tile the first numExamples*96 frames contiguously, so
  // those frames can be written straight into the output and the tail never computed.
  const data = new Float32Array(numExamples * EXAMPLE_FRAMES * NUM_MEL_BINS);
  fillLogMel(pcm, numExamples * EXAMPLE_FRAMES, data);
  return { data, shape: [numExamples, 1, EXAMPLE_FRAMES, NUM_MEL_BINS] };
}
