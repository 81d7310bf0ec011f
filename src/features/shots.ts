/**
 * Shot boundaries from a stream of small RGB frames: PySceneDetect's ContentDetector,
 * AdaptiveDetector and ThresholdDetector (fades) semantics, re-implemented from their documented
 * behaviour (the facts of PySceneDetect's `scenedetect/detectors/*.py` and `detector.py`, not its
 * code). Pure: no ffmpeg here; src/features/shot-runner.ts decodes a video and pushes its frames.
 *
 * Memory is O(window): a detector keeps the HSV planes of a few frames (the previous one, and the
 * flash look-ahead), never the whole video.
 *
 * Semantic choices, each against what PySceneDetect does:
 * - Score (`content_val`): the mean over pixels of |ΔH|, |ΔS|, |ΔV| between a frame and the one
 *   before it, on OpenCV's 8-bit HSV (H 0-179, S and V 0-255, cv2.cvtColor's fixed-point
 *   arithmetic, so the same pixel gives the same HSV bytes), averaged with weights
 *   (hue, sat, lum, edges; default 1, 1, 1, 0) divided by the sum of |weights|. The edge component
 *   (weight > 0) is the mean |Δ| of PySceneDetect's edge maps: cv2.Canny on V (aperture 3, L1) with
 *   thresholds (1 ∓ 1/3) × V's median, dilated by a square of 4 + round(sqrt(w h) / 192) (odd) px. As PySceneDetect,
 *   the first frame scores 0, and H's difference is the plain difference (no wrap-around at 180).
 * - A frame is "above" when its score >= threshold (PySceneDetect: `>=`, default 27). The cut is
 *   put on that frame: the first frame of the new shot, as PySceneDetect's cut timecode.
 * - Minimum shot length (`min_scene_len`, default 15 frames): PySceneDetect's FlashFilter in MERGE
 *   mode (its default). The start of the video counts as the last "above" frame; a frame above
 *   threshold at least the minimum after the last above frame is a cut; an above frame closer than
 *   that (once a first cut was made) starts merging, and the merged run of cuts ends on its LAST
 *   above frame, emitted once no above frame came for the minimum length and the run itself spans
 *   at least the minimum. `SUPPRESS` mode (a cut only when the minimum passed since the last cut) is
 *   `filterMode: 'suppress'`. Lengths in frames compare frame indices; in seconds (`minShotS`),
 *   frame times (PySceneDetect compares seconds in both cases; the same for constant frame rate).
 * - Flashes: NOT in PySceneDetect. A camera flash (or a 1-3 frame insert) makes two above frames,
 *   in and out; PySceneDetect's ContentDetector cuts at the flash when it is more than the minimum
 *   after the last cut (merge only hides the second one). Here, with `flashFrames` = K > 0 (default
 *   3), an above frame f is a flash when one of the K frames after it is within the threshold of
 *   frame f-1 (the picture came back): f and the frames up to the return are then not above. With
 *   `flashFrames: 0` the cut list is PySceneDetect's.
 * - AdaptiveDetector: the content score of frame t against the mean score of the `windowWidth`
 *   (default 2) frames on each side; a cut at t when that ratio >= `adaptiveThreshold` (3.0) and
 *   the score >= `minContentVal` (15); a zero mean counts as ratio 255 when the score reaches
 *   minContentVal (as PySceneDetect); the ratio is capped at 255. The minimum length is measured, as
 *   PySceneDetect does, from the last cut to the frame being read (t + windowWidth). The first frames
 *   (score 0 for frame 0) fill the window; the last windowWidth frames are never targets (as
 *   PySceneDetect, which has no post-processing step for them). Flash rejection as above.
 * - Fades (ThresholdDetector, FLOOR method, fade_bias 0): a frame is dark when the mean of all its
 *   R, G and B bytes is < threshold (default 12). A fade-out is the first dark frame after a bright
 *   one, the fade-in the first bright frame after a dark run; the boundary is put at
 *   out + round(duration / 2) (Python's round: half to even) when the fade-in is at least the
 *   minimum length after the last fade boundary (or the first frame). A video that starts dark
 *   counts its first frame as the fade-out, as PySceneDetect. A video ending dark gets no boundary
 *   (PySceneDetect's `add_final_scene` off). When fades are combined with another detector
 *   (`withFades`), one fade-out + fade-in is ONE boundary of kind 'fade': the other detector's cuts
 *   inside the dark run (from 2 frames before the fade-out to 2 frames after the fade-in) are
 *   dropped, as they are the fade's own edges. The fade's score is the darkest frame's mean.
 */
import { InvalidOptionError } from '../errors.js';

/** One decoded frame, packed RGB24 (`width * height * 3` bytes). */
export interface ShotFrame {
  index: number;
  time: number;
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** A shot boundary: `frame` is the first frame of the new shot. */
export interface ShotBoundary {
  frame: number;
  score: number;
  kind: 'cut' | 'fade';
}

export interface ShotDetector {
  readonly name: string;
  /** The RGB24 frame size this detector wants for a source of this size (content: PySceneDetect's downscale, see shotFrameSize). */
  frameSize(source: { width: number; height: number }): { width: number; height: number };
  push(frame: ShotFrame): void | Promise<void>;
  /** Boundaries in frame order, after the last frame was pushed. */
  finish(): ShotBoundary[] | Promise<ShotBoundary[]>;
}

/** Weights of the content score's components (PySceneDetect's `Components`). */
export interface ContentWeights {
  hue: number;
  sat: number;
  lum: number;
  edges: number;
}

export interface MinShotOptions {
  /** Minimum shot length in seconds (frame times). Wins over minShotFrames. */
  minShotS?: number;
  /** Minimum shot length in frames (PySceneDetect's default `min_scene_len`: 15). */
  minShotFrames?: number;
}

export interface ContentDetectorOptions extends MinShotOptions {
  /** Score at or above which a frame is a cut (default 27, PySceneDetect's). */
  threshold?: number;
  /** Component weights (default hue 1, sat 1, lum 1, edges 0). */
  weights?: Partial<ContentWeights>;
  /** PySceneDetect's FlashFilter mode for the minimum length (default 'merge'). */
  filterMode?: 'merge' | 'suppress';
  /** Reject flashes up to this many frames long (default 3; 0: PySceneDetect's exact behaviour). */
  flashFrames?: number;
  /** Larger side of the analysed frames (default 256, PySceneDetect's automatic downscale; never upscaled; see shotFrameSize). */
  width?: number;
}

export interface AdaptiveDetectorOptions extends MinShotOptions {
  /** Ratio of a frame's score to its neighbours' mean that makes a cut (default 3.0). */
  adaptiveThreshold?: number;
  /** Score a cut must reach whatever the ratio (default 15). */
  minContentVal?: number;
  /** Frames on each side of the target averaged (default 2). */
  windowWidth?: number;
  weights?: Partial<ContentWeights>;
  flashFrames?: number;
  width?: number;
}

export interface FadeOptions extends MinShotOptions {
  /** Mean intensity (0-255) below which a frame is dark (default 12, ThresholdDetector's). */
  threshold?: number;
}

/** The larger side of the analysed frames (PySceneDetect's `DEFAULT_MIN_WIDTH`, applied to the larger side as it does). */
export const DEFAULT_SHOT_WIDTH = 256;
export const DEFAULT_CONTENT_THRESHOLD = 27;
export const DEFAULT_MIN_SHOT_FRAMES = 15;
export const DEFAULT_FLASH_FRAMES = 3;
export const DEFAULT_FADE_THRESHOLD = 12;

function finite(v: number, name: string, min: number, max = Number.POSITIVE_INFINITY): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidOptionError(`${name} must be a number from ${min}${Number.isFinite(max) ? ` to ${max}` : ''}, got ${String(v)}`, name);
  }
  return v;
}

function integer(v: number, name: string, min: number, max: number): number {
  finite(v, name, min, max);
  if (!Number.isInteger(v)) throw new InvalidOptionError(`${name} must be a whole number, got ${v}`, name);
  return v;
}

/**
 * PySceneDetect's automatic downscale (0.7's `compute_downscale_factor` and the resize in
 * SceneManager): when the larger side is over `size` (default 256), the factor is larger side / size
 * (not a whole number) and each side becomes round(side / factor) (Python's round: half to even),
 * at least 1; a source no larger than that is not scaled. So a 1920x1080 source is analysed at
 * 256x144, a 1080x1920 one at 144x256, 640x360 at 256x144, 320x180 at 256x144, 200x100 as it is.
 */
export function shotFrameSize(source: { width: number; height: number }, size = DEFAULT_SHOT_WIDTH): { width: number; height: number } {
  const larger = Math.max(source.width, source.height);
  if (larger <= size) return { width: source.width, height: source.height };
  const factor = larger / size;
  return { width: Math.max(1, roundHalfEven(source.width / factor)), height: Math.max(1, roundHalfEven(source.height / factor)) };
}

// ---------------------------------------------------------------------------------------------
// RGB -> HSV exactly as OpenCV's cvtColor(COLOR_RGB2HSV) for 8-bit input: fixed point with a
// 12-bit shift, division tables rounded to nearest (ties to even, as cvRound).

const HSV_SHIFT = 12;
const roundHalfEven = (x: number): number => {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
};
const S_DIV = new Int32Array(256);
const H_DIV = new Int32Array(256);
for (let i = 1; i < 256; i++) {
  S_DIV[i] = roundHalfEven((255 << HSV_SHIFT) / i);
  H_DIV[i] = roundHalfEven((180 << HSV_SHIFT) / (6 * i));
}

/** OpenCV 8-bit HSV of packed RGB, into three planes (H 0-179, S, V 0-255). */
export function rgbToHsvPlanes(rgb: Uint8Array, pixels: number, h: Uint8Array, s: Uint8Array, v: Uint8Array): void {
  const half = 1 << (HSV_SHIFT - 1);
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    const diff = max - min;
    let hue: number;
    if (max === r) hue = g - b;
    else if (max === g) hue = b - r + 2 * diff;
    else hue = r - g + 4 * diff;
    hue = (hue * H_DIV[diff]! + half) >> HSV_SHIFT;
    if (hue < 0) hue += 180;
    h[p] = hue;
    s[p] = (diff * S_DIV[max]! + half) >> HSV_SHIFT;
    v[p] = max;
  }
}

/** The HSV planes of one frame. */
class HsvFrame {
  readonly h: Uint8Array;
  readonly s: Uint8Array;
  readonly v: Uint8Array;
  /** The dilated edge map of V (0 or 255), when the edge weight is not 0. */
  edges: Uint8Array | null = null;
  index = -1;
  time = 0;
  constructor(readonly pixels: number) {
    this.h = new Uint8Array(pixels);
    this.s = new Uint8Array(pixels);
    this.v = new Uint8Array(pixels);
  }
}

// ---------------------------------------------------------------------------------------------
// The edge component, as PySceneDetect computes it: cv2.Canny on V (aperture 3, L1 gradient) with
// thresholds from V's median (low = int(max(0, (1 - 1/3) median)), high = int(min(255, (1 + 1/3) median))),
// then cv2.dilate with a square kernel of 4 + round(sqrt(w h) / 192) pixels, made odd.

/** PySceneDetect's `_estimated_kernel_size` (Python's round: half to even). */
export function edgeKernelSize(width: number, height: number): number {
  const size = 4 + roundHalfEven(Math.sqrt(width * height) / 192);
  return size % 2 === 0 ? size + 1 : size;
}

/** numpy.median of 8-bit values (the mean of the two middle ones for an even count). */
function median8(v: Uint8Array): number {
  const hist = new Uint32Array(256);
  for (let i = 0; i < v.length; i++) hist[v[i]!]!++;
  const at = (k: number) => {
    let c = 0;
    for (let x = 0; x < 256; x++) {
      c += hist[x]!;
      if (c > k) return x;
    }
    return 255;
  };
  const n = v.length;
  return n % 2 === 1 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
}

/** TG22 of OpenCV's Canny: tan(22.5°) in 15-bit fixed point. */
const TG22 = Math.round(Math.tan(Math.PI / 8) * (1 << 15)); // 13573

/** cv2.Canny(src, low, high) (aperture 3, L1 gradient, replicated border): 255 on edges, 0 elsewhere. */
export function canny(src: Uint8Array, width: number, height: number, lowThreshold: number, highThreshold: number): Uint8Array {
  let lowT = lowThreshold;
  let highT = highThreshold;
  if (lowT > highT) [lowT, highT] = [highT, lowT];
  const low = Math.floor(lowT);
  const high = Math.floor(highT);
  const n = width * height;
  const dx = new Int32Array(n);
  const dy = new Int32Array(n);
  const mag = new Int32Array(n);
  const px = (x: number, y: number) => src[(y < 0 ? 0 : y >= height ? height - 1 : y) * width + (x < 0 ? 0 : x >= width ? width - 1 : x)]!;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const gx = px(x + 1, y - 1) + 2 * px(x + 1, y) + px(x + 1, y + 1) - (px(x - 1, y - 1) + 2 * px(x - 1, y) + px(x - 1, y + 1));
      const gy = px(x - 1, y + 1) + 2 * px(x, y + 1) + px(x + 1, y + 1) - (px(x - 1, y - 1) + 2 * px(x, y - 1) + px(x + 1, y - 1));
      const i = y * width + x;
      dx[i] = gx;
      dy[i] = gy;
      mag[i] = Math.abs(gx) + Math.abs(gy);
    }
  }
  const m = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : mag[y * width + x]!);
  // 0: not an edge; 1: a candidate (a local maximum above low); 2: an edge.
  const state = new Uint8Array(n);
  const stack: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const v = mag[i]!;
      if (v <= low) continue;
      const xs = dx[i]!;
      const ys = dy[i]!;
      const ax = Math.abs(xs);
      const ay = Math.abs(ys) * (1 << 15);
      const tg22x = ax * TG22;
      let max: boolean;
      if (ay < tg22x) max = v > m(x - 1, y) && v >= m(x + 1, y);
      else {
        const tg67x = tg22x + ax * (1 << 16);
        if (ay > tg67x) max = v > m(x, y - 1) && v >= m(x, y + 1);
        else {
          const sgn = (xs ^ ys) < 0 ? -1 : 1;
          max = v > m(x - sgn, y - 1) && v > m(x + sgn, y + 1);
        }
      }
      if (!max) continue;
      if (v > high) {
        state[i] = 2;
        stack.push(i);
      } else state[i] = 1;
    }
  }
  while (stack.length > 0) {
    const i = stack.pop()!;
    const x = i % width;
    const y = (i - x) / width;
    for (let oy = -1; oy <= 1; oy++) {
      for (let ox = -1; ox <= 1; ox++) {
        const nx = x + ox;
        const ny = y + oy;
        if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
        const j = ny * width + nx;
        if (state[j] === 1) {
          state[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = state[i] === 2 ? 255 : 0;
  return out;
}

/** cv2.dilate with a `size`×`size` square of ones (pixels outside the image ignored). */
export function dilateSquare(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const r = size >> 1;
  const rows = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(width - 1, x + r); k++) if (src[y * width + k]! > v) v = src[y * width + k]!;
      rows[y * width + x] = v;
    }
  }
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(height - 1, y + r); k++) if (rows[k * width + x]! > v) v = rows[k * width + x]!;
      out[y * width + x] = v;
    }
  }
  return out;
}

/** PySceneDetect's edge map of a V plane. */
export function edgeMap(v: Uint8Array, width: number, height: number): Uint8Array {
  const median = median8(v);
  const sigma = 1 / 3;
  const low = Math.trunc(Math.max(0, (1 - sigma) * median));
  const high = Math.trunc(Math.min(255, (1 + sigma) * median));
  return dilateSquare(canny(v, width, height, low, high), width, height, edgeKernelSize(width, height));
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d < 0 ? -d : d;
  }
  return sum / a.length;
}

function resolveWeights(w: Partial<ContentWeights> | undefined): ContentWeights {
  const weights = { hue: w?.hue ?? 1, sat: w?.sat ?? 1, lum: w?.lum ?? 1, edges: w?.edges ?? 0 };
  for (const [k, v] of Object.entries(weights)) finite(v, `weights.${k}`, -1e6, 1e6);
  if (Math.abs(weights.hue) + Math.abs(weights.sat) + Math.abs(weights.lum) + Math.abs(weights.edges) === 0) {
    throw new InvalidOptionError('weights: at least one weight must be non-zero', 'weights');
  }
  return weights;
}

function contentScore(a: HsvFrame, b: HsvFrame, w: ContentWeights): number {
  let sum = 0;
  if (w.hue !== 0) sum += w.hue * meanAbsDiff(a.h, b.h);
  if (w.sat !== 0) sum += w.sat * meanAbsDiff(a.s, b.s);
  if (w.lum !== 0) sum += w.lum * meanAbsDiff(a.v, b.v);
  if (w.edges !== 0 && a.edges && b.edges) sum += w.edges * meanAbsDiff(a.edges, b.edges);
  return sum / (Math.abs(w.hue) + Math.abs(w.sat) + Math.abs(w.lum) + Math.abs(w.edges));
}

/** The minimum shot length, in frames or seconds, as one comparison. */
class MinLength {
  readonly seconds: number | null;
  readonly frames: number;
  constructor(o: MinShotOptions, prefix: string) {
    this.seconds = o.minShotS === undefined ? null : finite(o.minShotS, `${prefix}.minShotS`, 0, 86_400);
    this.frames = o.minShotFrames === undefined ? DEFAULT_MIN_SHOT_FRAMES : integer(o.minShotFrames, `${prefix}.minShotFrames`, 0, 1e9);
  }
  get disabled(): boolean {
    return this.seconds === null ? this.frames <= 0 : this.seconds <= 0;
  }
  /** True when `to` is at least the minimum after `from`. */
  met(from: { index: number; time: number }, to: { index: number; time: number }): boolean {
    if (this.seconds === null) return to.index - from.index >= this.frames;
    return to.time - from.time >= this.seconds - 1e-9;
  }
}

interface Mark {
  index: number;
  time: number;
}

/**
 * PySceneDetect's FlashFilter (detector.py): enforces the minimum length on a stream of
 * above/below decisions, in MERGE or SUPPRESS mode. Returns the frames cut at this step.
 */
class MinLengthFilter {
  private lastAbove: Mark | null = null;
  private lastAboveScore = 0;
  private mergeEnabled = false;
  private merging = false;
  private mergeStart: Mark = { index: 0, time: 0 };
  constructor(
    private readonly min: MinLength,
    private readonly mode: 'merge' | 'suppress',
  ) {}

  step(at: Mark, above: boolean, score: number, out: ShotBoundary[]): void {
    const cut = (m: Mark, s: number) => out.push({ frame: m.index, score: s, kind: 'cut' });
    if (this.min.disabled) {
      if (above) cut(at, score);
      return;
    }
    if (this.lastAbove === null) this.lastAbove = at;
    const metLength = this.min.met(this.lastAbove, at);
    if (this.mode === 'suppress') {
      if (above && metLength) {
        this.lastAbove = at;
        cut(at, score);
      }
      return;
    }
    if (above) {
      this.lastAbove = at;
      this.lastAboveScore = score;
    }
    if (this.merging) {
      if (metLength && !above && this.min.met(this.mergeStart, this.lastAbove)) {
        this.merging = false;
        cut(this.lastAbove, this.lastAboveScore);
      }
      return;
    }
    if (!above) return;
    if (metLength) {
      this.mergeEnabled = true;
      cut(at, score);
      return;
    }
    if (this.mergeEnabled) {
      this.merging = true;
      this.mergeStart = at;
    }
  }
}

/**
 * The content scores of a frame stream, with flash rejection: `next` receives each frame's
 * (index, time, score, above) once `flashFrames` later frames are known (or at flush).
 */
class ScoredStream {
  private readonly ring: HsvFrame[] = [];
  /** Scores of the frames in the ring (same positions). */
  private readonly scores: number[] = [];
  private readonly above: boolean[] = [];
  private pixels = -1;
  private pendingStart = 0;
  /** Frames still to be cleared as part of a flash (index bound, exclusive). */
  private flashUntil = -1;
  constructor(
    private readonly weights: ContentWeights,
    private readonly isAbove: (score: number) => boolean,
    private readonly flashFrames: number,
    private readonly next: (m: Mark, score: number, above: boolean) => void,
    private readonly name: string,
  ) {}

  push(frame: ShotFrame): void {
    const pixels = frame.width * frame.height;
    if (this.pixels === -1) this.pixels = pixels;
    if (pixels !== this.pixels || frame.rgb.length < pixels * 3) {
      throw new InvalidOptionError(
        `${this.name}: frame ${frame.index} is ${frame.width}x${frame.height} (${frame.rgb.length} bytes), not like the first frame (${this.pixels} pixels)`,
        'frame',
      );
    }
    // The ring: the last decided frame (f-1 of the next decision) and the undecided ones after it
    // (at most flashFrames of them between pushes): flashFrames + 2 frames, plane sets reused.
    let hsv: HsvFrame;
    if (this.ring.length >= this.flashFrames + 2) {
      hsv = this.ring.shift()!;
      this.scores.shift();
      this.above.shift();
    } else hsv = new HsvFrame(pixels);
    rgbToHsvPlanes(frame.rgb, pixels, hsv.h, hsv.s, hsv.v);
    if (this.weights.edges !== 0) hsv.edges = edgeMap(hsv.v, frame.width, frame.height);
    hsv.index = frame.index;
    hsv.time = frame.time;
    const prev = this.ring.at(-1);
    const score = prev ? contentScore(hsv, prev, this.weights) : 0;
    this.ring.push(hsv);
    this.scores.push(score);
    this.above.push(prev !== undefined && this.isAbove(score));
    this.decideReady(false);
  }

  flush(): void {
    this.decideReady(true);
  }

  /** Decide every undecided frame whose look-ahead is complete (all of them at the end). */
  private decideReady(end: boolean): void {
    for (;;) {
      const pos = this.ring.findIndex((f) => f.index >= this.pendingStart);
      if (pos < 0) return;
      const ahead = this.ring.length - 1 - pos;
      if (!end && ahead < this.flashFrames) return;
      const frame = this.ring[pos]!;
      let above = this.above[pos]!;
      if (frame.index < this.flashUntil) above = false;
      else if (above && this.flashFrames > 0 && pos > 0) {
        const before = this.ring[pos - 1]!;
        for (let k = 1; k <= Math.min(this.flashFrames, ahead); k++) {
          if (!this.isAbove(contentScore(this.ring[pos + k]!, before, this.weights))) {
            this.flashUntil = this.ring[pos + k]!.index + 1;
            above = false;
            break;
          }
        }
      }
      this.next({ index: frame.index, time: frame.time }, this.scores[pos]!, above);
      this.pendingStart = frame.index + 1;
    }
  }
}

/**
 * PySceneDetect's ContentDetector (plus flash rejection, see the module's notes).
 *
 * @example
 * const d = contentDetector({ threshold: 27 });
 * for (const f of frames) d.push(f);
 * d.finish(); // [{ frame: 48, score: 96.1, kind: 'cut' }]
 */
export function contentDetector(options: ContentDetectorOptions = {}): ShotDetector {
  const threshold = finite(options.threshold ?? DEFAULT_CONTENT_THRESHOLD, 'threshold', 0, 255);
  const weights = resolveWeights(options.weights);
  const flashFrames = integer(options.flashFrames ?? DEFAULT_FLASH_FRAMES, 'flashFrames', 0, 64);
  const width = integer(options.width ?? DEFAULT_SHOT_WIDTH, 'width', 2, 4096);
  const mode = options.filterMode ?? 'merge';
  if (mode !== 'merge' && mode !== 'suppress') throw new InvalidOptionError(`filterMode must be merge or suppress, got ${String(mode)}`, 'filterMode');
  const filter = new MinLengthFilter(new MinLength(options, 'content'), mode);
  const out: ShotBoundary[] = [];
  const stream = new ScoredStream(
    weights,
    (s) => s >= threshold,
    flashFrames,
    (m, score, above) => filter.step(m, above, score, out),
    'content detector',
  );
  return {
    name: 'content',
    frameSize: (source) => shotFrameSize(source, width),
    push: (frame) => stream.push(frame),
    finish: () => {
      stream.flush();
      return out.slice();
    },
  };
}

/**
 * PySceneDetect's AdaptiveDetector (plus flash rejection): a cut where a frame's content score is
 * `adaptiveThreshold` times the mean of its neighbours' and at least `minContentVal`.
 */
export function adaptiveDetector(options: AdaptiveDetectorOptions = {}): ShotDetector {
  const adaptiveThreshold = finite(options.adaptiveThreshold ?? 3, 'adaptiveThreshold', 0, 255);
  const minContentVal = finite(options.minContentVal ?? 15, 'minContentVal', 0, 255);
  const windowWidth = integer(options.windowWidth ?? 2, 'windowWidth', 1, 100);
  const weights = resolveWeights(options.weights);
  const flashFrames = integer(options.flashFrames ?? DEFAULT_FLASH_FRAMES, 'flashFrames', 0, 64);
  const width = integer(options.width ?? DEFAULT_SHOT_WIDTH, 'width', 2, 4096);
  const min = new MinLength(options, 'adaptive');
  const out: ShotBoundary[] = [];
  const window: { mark: Mark; score: number; above: boolean }[] = [];
  let lastCut: Mark | null = null;
  const required = 2 * windowWidth + 1;
  // Flash rejection needs "the picture came back", judged at minContentVal; the adaptive test itself
  // runs on the window of (score, not-a-flash) pairs.
  const stream = new ScoredStream(
    weights,
    (s) => s >= minContentVal,
    flashFrames,
    (mark, score, above) => {
      if (lastCut === null) lastCut = mark;
      window.push({ mark, score, above });
      if (window.length < required) return;
      if (window.length > required) window.shift();
      const target = window[windowWidth]!;
      let sum = 0;
      for (let i = 0; i < window.length; i++) if (i !== windowWidth) sum += window[i]!.score;
      const mean = sum / (2 * windowWidth);
      let ratio = 0;
      if (Math.abs(mean) >= 0.00001) ratio = Math.min(target.score / mean, 255);
      else if (target.score >= minContentVal) ratio = 255;
      const thresholdMet = target.above && ratio >= adaptiveThreshold && target.score >= minContentVal;
      // PySceneDetect measures the minimum from the last cut to the frame being read, not the target.
      if (thresholdMet && (min.disabled || min.met(lastCut, mark))) {
        lastCut = target.mark;
        out.push({ frame: target.mark.index, score: target.score, kind: 'cut' });
      }
    },
    'adaptive detector',
  );
  return {
    name: 'adaptive',
    frameSize: (source) => shotFrameSize(source, width),
    push: (frame) => stream.push(frame),
    finish: () => {
      stream.flush();
      return out.slice();
    },
  };
}

/** A fade-out + fade-in found by the threshold test: dark from `out` to `in` (exclusive). */
export interface FadeSpan {
  out: number;
  in: number;
  /** Where the boundary goes (fade_bias 0). */
  frame: number;
  /** Mean intensity of the darkest frame of the span. */
  darkest: number;
}

/** PySceneDetect's ThresholdDetector (FLOOR, fade_bias 0) on mean intensity, streaming. */
export class FadeFinder {
  private readonly threshold: number;
  private readonly min: MinLength;
  private lastCut: Mark | null = null;
  private state: 'in' | 'out' | null = null;
  private fadeAt: Mark = { index: 0, time: 0 };
  private darkest = 255;
  readonly spans: FadeSpan[] = [];

  constructor(options: FadeOptions = {}) {
    this.threshold = Math.trunc(finite(options.threshold ?? DEFAULT_FADE_THRESHOLD, 'fadeThreshold', 0, 255));
    this.min = new MinLength(options, 'fades');
  }

  push(frame: ShotFrame): void {
    const n = frame.width * frame.height * 3;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += frame.rgb[i]!;
    const mean = sum / n;
    const at = { index: frame.index, time: frame.time };
    if (this.lastCut === null) this.lastCut = at;
    if (this.state === null) {
      this.fadeAt = at;
      this.state = mean < this.threshold ? 'out' : 'in';
      this.darkest = mean;
      return;
    }
    if (this.state === 'in' && mean < this.threshold) {
      this.state = 'out';
      this.fadeAt = at;
      this.darkest = mean;
    } else if (this.state === 'out') {
      if (mean >= this.threshold) {
        if (this.min.disabled || this.min.met(this.lastCut, at)) {
          const duration = at.index - this.fadeAt.index;
          this.spans.push({ out: this.fadeAt.index, in: at.index, frame: this.fadeAt.index + roundHalfEven(duration / 2), darkest: this.darkest });
          this.lastCut = at;
        }
        this.state = 'in';
        this.fadeAt = at;
      } else if (mean < this.darkest) this.darkest = mean;
    }
  }
}

/** Frames either side of a fade's dark run within which another detector's cuts are the fade's own. */
const FADE_MARGIN = 2;

/**
 * `detector` plus fades to and from black: one 'fade' boundary per fade-out + fade-in, the other
 * detector's cuts inside the dark run dropped (see the module's notes).
 */
export function withFades(detector: ShotDetector, options: FadeOptions = {}): ShotDetector {
  const fades = new FadeFinder(options);
  return {
    name: `${detector.name}+fades`,
    frameSize: (source) => detector.frameSize(source),
    push: (frame) => {
      fades.push(frame);
      return detector.push(frame);
    },
    finish: async () => {
      const cuts = await detector.finish();
      const spans = fades.spans;
      const kept = cuts.filter((c) => !spans.some((s) => c.frame >= s.out - FADE_MARGIN && c.frame <= s.in + FADE_MARGIN));
      const all: ShotBoundary[] = [...kept, ...spans.map((s) => ({ frame: s.frame, score: s.darkest, kind: 'fade' as const }))];
      return all.sort((a, b) => a.frame - b.frame).filter((b, i, a) => i === 0 || b.frame !== a[i - 1]!.frame);
    },
  };
}

/** A shot: frames [startFrame, endFrame) of the video. */
export interface Shot {
  shot: number;
  /** First frame of the shot. */
  start_frame: number;
  /** One past the last frame (exclusive, as clips.csv's `end_frame`). */
  end_frame: number;
  start_s: number;
  end_s: number;
  /** The score of the boundary that starts the shot (0 for the first shot). */
  score: number;
  /** What starts the shot: 'start' for the first, else the boundary's kind. */
  kind: 'start' | 'cut' | 'fade';
}

/** Shots of a video of `frames` frames from its boundaries; `timeOf(i)` is frame i's start time. */
export function shotsFromBoundaries(boundaries: ShotBoundary[], frames: number, timeOf: (frame: number) => number): Shot[] {
  const shots: Shot[] = [];
  let start = 0;
  let score = 0;
  let kind: Shot['kind'] = 'start';
  const cuts = boundaries.filter((b) => b.frame > 0 && b.frame < frames).sort((a, b) => a.frame - b.frame);
  for (const b of [...cuts, null]) {
    const end = b === null ? frames : b.frame;
    if (end <= start) continue;
    shots.push({ shot: shots.length, start_frame: start, end_frame: end, start_s: timeOf(start), end_s: timeOf(end), score, kind });
    if (b) {
      start = b.frame;
      score = b.score;
      kind = b.kind;
    }
  }
  return shots;
}
