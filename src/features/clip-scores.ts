/**
 * Per-clip scores from small decoded frames: pure arithmetic on packed RGB24, no I/O. The clips
 * job feeds them from a second, small output of the ffmpeg that cuts the clips
 * (src/clips/transcode.ts); `clipstream score` feeds them from a decode of clips that exist.
 *
 * Every per-clip score is a `FrameScorer`: frames go in one by one (`push`), one row of columns
 * comes out (`finish`). The scores, on frames of SCORE_WIDTH px (luma Y = 0.299 R + 0.587 G +
 * 0.114 B on 0–255):
 *
 * | column | what | scale |
 * |---|---|---|
 * | `motion` | mean over consecutive frames of the mean absolute luma difference, / 255 | 0–1 per frame step (so it depends on the frame rate) |
 * | `black` | fraction of frames whose mean luma < BLACK_MAX_MEAN and luma std < BLACK_MAX_STD | 0–1 |
 * | `frozen` | fraction of frames after the first whose mean absolute luma difference to the frame before is < FROZEN_MAX_DIFF | 0–1 |
 * | `sharpness` | mean over frames of the variance of the 4-neighbour Laplacian of luma (interior pixels) | grey levels², 0 for a flat frame |
 * | `brightness` | mean luma / 255 | 0–1 |
 * | `contrast` | mean over frames of the luma standard deviation / 255 | 0–0.5 |
 * | `colorfulness` | mean over frames of Hasler and Süsstrunk's M = σ_rgyb + 0.3 μ_rgyb (rg = R − G, yb = (R + G) / 2 − B) | 0 for grey, ~100+ for vivid |
 * | `text_area` | mean fraction of the frame covered by text boxes, on TEXT_FRAMES evenly spaced frames | 0–1, '' without a detector |
 *
 * scripts/clip_scores_reference.py computes the same numbers independently in numpy.
 */
import { ClipstreamError } from '../errors.js';

/** One decoded frame of a clip: packed RGB24, row after row, `width * height * 3` bytes. */
export interface ClipFrame {
  index: number;
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** A per-clip score: `columns` it writes, frames in order through `push`, the row from `finish`. */
export interface FrameScorer {
  readonly columns: readonly string[];
  push(frame: ClipFrame): void | Promise<void>;
  finish(): Record<string, number | string> | Promise<Record<string, number | string>>;
}

/** The pixel scores, computed together from one luma plane per frame. */
export const PIXEL_SCORES = ['motion', 'black', 'frozen', 'sharpness', 'brightness', 'contrast', 'colorfulness'] as const;
export type PixelScore = (typeof PIXEL_SCORES)[number];
/** Every built-in score, in the order of the clips.csv columns. */
export const SCORE_NAMES = [...PIXEL_SCORES, 'text_area'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

/** Width of the frames scores are computed on (height keeps the aspect, even). */
export const SCORE_WIDTH = 160;
/** A black frame: mean luma below this (0–255)... */
export const BLACK_MAX_MEAN = 24;
/** ...and luma standard deviation below this (a dark frame with bright detail is not black). */
export const BLACK_MAX_STD = 8;
/** A frozen frame: mean absolute luma change to the frame before, on 0–1, under this (ffmpeg freezedetect's default noise, −60 dB). */
export const FROZEN_MAX_DIFF = 0.001;
/** Frames per clip the text detector runs on, evenly spaced. */
export const TEXT_FRAMES = 3;

/** The size frames are scored at for a `width` × `height` clip: SCORE_WIDTH wide (or the clip's width if smaller), the height in proportion, both even. */
export function scoreSize(width: number, height: number): { width: number; height: number } {
  const w = Math.max(2, Math.min(SCORE_WIDTH, width - (width % 2)));
  const h = Math.max(2, 2 * Math.round((height * w) / width / 2));
  return { width: w, height: h };
}

/** Rounds a score for the tables: 6 decimals, so a re-run writes the same text. */
export const roundScore = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x);

function checkFrame(f: ClipFrame): void {
  if (f.rgb.length !== f.width * f.height * 3)
    throw new ClipstreamError('ERR_DECODE', `frame ${f.index}: ${f.rgb.length} bytes where ${f.width}x${f.height} RGB24 needs ${f.width * f.height * 3}`);
}

/**
 * The pixel scores of a clip (any subset of PIXEL_SCORES), one pass over each frame: luma once,
 * then the sums every score needs. Memory: two luma planes.
 *
 * @example
 * const s = new PixelScorer(['motion', 'black']);
 * for (const f of frames) s.push(f);
 * s.finish() // { motion: 0.0123, black: 0 }
 */
export class PixelScorer implements FrameScorer {
  readonly columns: readonly PixelScore[];
  #prev: Float32Array | null = null;
  #cur: Float32Array | null = null;
  #frames = 0;
  #steps = 0;
  #motion = 0;
  #frozen = 0;
  #black = 0;
  #sharp = 0;
  #bright = 0;
  #contrast = 0;
  #colour = 0;
  readonly #want: Set<PixelScore>;

  constructor(columns: readonly PixelScore[] = PIXEL_SCORES) {
    this.columns = PIXEL_SCORES.filter((c) => columns.includes(c));
    this.#want = new Set(this.columns);
  }

  push(f: ClipFrame): void {
    checkFrame(f);
    const n = f.width * f.height;
    if (!this.#cur || this.#cur.length !== n) {
      this.#cur = new Float32Array(n);
      this.#prev = null;
    }
    const y = this.#cur;
    const rgb = f.rgb;
    let sum = 0;
    let sum2 = 0;
    let rg = 0;
    let rg2 = 0;
    let yb = 0;
    let yb2 = 0;
    const colour = this.#want.has('colorfulness');
    for (let i = 0, p = 0; i < n; i++, p += 3) {
      const r = rgb[p]!;
      const g = rgb[p + 1]!;
      const b = rgb[p + 2]!;
      const v = 0.299 * r + 0.587 * g + 0.114 * b;
      y[i] = v;
      sum += v;
      sum2 += v * v;
      if (colour) {
        const a = r - g;
        const c = 0.5 * (r + g) - b;
        rg += a;
        rg2 += a * a;
        yb += c;
        yb2 += c * c;
      }
    }
    const mean = sum / n;
    const std = Math.sqrt(Math.max(0, sum2 / n - mean * mean));
    this.#bright += mean / 255;
    this.#contrast += std / 255;
    if (mean < BLACK_MAX_MEAN && std < BLACK_MAX_STD) this.#black++;
    if (colour) {
      const mrg = rg / n;
      const myb = yb / n;
      const srg = Math.max(0, rg2 / n - mrg * mrg);
      const syb = Math.max(0, yb2 / n - myb * myb);
      this.#colour += Math.sqrt(srg + syb) + 0.3 * Math.sqrt(mrg * mrg + myb * myb);
    }
    if (this.#want.has('sharpness')) this.#sharp += laplacianVariance(y, f.width, f.height);
    const prev = this.#prev;
    if (prev) {
      let d = 0;
      for (let i = 0; i < n; i++) d += Math.abs(y[i]! - prev[i]!);
      d /= n * 255;
      this.#motion += d;
      if (d < FROZEN_MAX_DIFF) this.#frozen++;
      this.#steps++;
    }
    // The plane just filled becomes the one before; the older one is reused.
    this.#cur = prev ?? new Float32Array(n);
    this.#prev = y;
    this.#frames++;
  }

  finish(): Record<string, number> {
    const n = this.#frames;
    const steps = this.#steps;
    const all: Record<PixelScore, number> = {
      motion: steps > 0 ? this.#motion / steps : 0,
      black: n > 0 ? this.#black / n : 0,
      frozen: steps > 0 ? this.#frozen / steps : 0,
      sharpness: n > 0 ? this.#sharp / n : 0,
      brightness: n > 0 ? this.#bright / n : 0,
      contrast: n > 0 ? this.#contrast / n : 0,
      colorfulness: n > 0 ? this.#colour / n : 0,
    };
    if (n === 0) throw new ClipstreamError('ERR_DECODE', 'no frames to score');
    return Object.fromEntries(this.columns.map((c) => [c, roundScore(all[c])]));
  }
}

/** Variance of the 4-neighbour Laplacian (y[i-1] + y[i+1] + up + down − 4 y) over interior pixels; 0 when there are none. */
export function laplacianVariance(y: ArrayLike<number>, w: number, h: number): number {
  if (w < 3 || h < 3) return 0;
  let s = 0;
  let s2 = 0;
  for (let r = 1; r < h - 1; r++) {
    const o = r * w;
    for (let c = 1; c < w - 1; c++) {
      const i = o + c;
      const l = y[i - 1]! + y[i + 1]! + y[i - w]! + y[i + w]! - 4 * y[i]!;
      s += l;
      s2 += l * l;
    }
  }
  const m = (w - 2) * (h - 2);
  const mean = s / m;
  return Math.max(0, s2 / m - mean * mean);
}

/** The text detector contract (src/infer/text-detector.ts): boxes of text in one RGB frame. */
export interface TextDetectorLike {
  detect(rgb: Uint8Array, width: number, height: number): Promise<readonly unknown[]>;
}

/** The frame indices of `count` evenly spaced frames among `numFrames` (the middles of equal parts). */
export function spacedFrames(numFrames: number, count: number): number[] {
  const k = Math.max(0, Math.min(count, numFrames));
  return Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * numFrames) / k));
}

/**
 * `text_area`: the text detector on TEXT_FRAMES evenly spaced frames of a clip of `numFrames`
 * frames; the score is the mean of `area(boxes, width, height)` (the fraction of the frame
 * covered). The chosen frames are copied (a few small frames) and detected in `finish`.
 */
export class TextAreaScorer implements FrameScorer {
  readonly columns = ['text_area'] as const;
  readonly #pick: Set<number>;
  readonly #kept: ClipFrame[] = [];

  constructor(
    readonly detector: TextDetectorLike,
    readonly area: (boxes: readonly unknown[], width: number, height: number) => number,
    numFrames: number,
    frames = TEXT_FRAMES,
  ) {
    this.#pick = new Set(spacedFrames(numFrames, frames));
  }

  push(f: ClipFrame): void {
    checkFrame(f);
    if (this.#pick.has(f.index)) this.#kept.push({ ...f, rgb: Uint8Array.from(f.rgb) });
  }

  async finish(): Promise<Record<string, number | string>> {
    if (this.#kept.length === 0) return { text_area: '' };
    let sum = 0;
    for (const f of this.#kept) sum += this.area(await this.detector.detect(f.rgb, f.width, f.height), f.width, f.height);
    return { text_area: roundScore(sum / this.#kept.length) };
  }
}

/** Runs several scorers as one: every frame to each, the rows merged. */
export class ScorerSet implements FrameScorer {
  readonly columns: readonly string[];
  constructor(readonly scorers: readonly FrameScorer[]) {
    this.columns = scorers.flatMap((s) => s.columns);
  }

  async push(f: ClipFrame): Promise<void> {
    for (const s of this.scorers) await s.push(f);
  }

  /** `push` without a promise when no scorer needs one (the ffmpeg pipe is then never paused). */
  pushSync(f: ClipFrame): Promise<void> | undefined {
    let wait: Promise<void> | undefined;
    for (const s of this.scorers) {
      if (wait) wait = wait.then(() => s.push(f));
      else {
        const r = s.push(f);
        if (r) wait = r;
      }
    }
    return wait;
  }

  async finish(): Promise<Record<string, number | string>> {
    const row: Record<string, number | string> = {};
    for (const s of this.scorers) Object.assign(row, await s.finish());
    return row;
  }
}

/**
 * Which scores a run computes, from the option: `true` or absent (default: the pixel scores,
 * PIXEL_SCORES, which cost little), `'all'` (SCORE_NAMES: also `text_area`, which runs a text
 * detector), `false` / `'none'`, or a list (an array or a comma-separated string) of SCORE_NAMES.
 * An unknown name is an error naming it.
 *
 * @example parseScoreList('motion,black') // ['motion', 'black']
 */
export function parseScoreList(value: boolean | string | readonly string[] | undefined, option = 'options.scores'): ScoreName[] {
  if (value === undefined || value === true) return [...PIXEL_SCORES];
  if (value === 'all') return [...SCORE_NAMES];
  if (value === false || value === 'none' || value === '') return [];
  const names = (typeof value === 'string' ? value.split(',') : [...value]).map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!(SCORE_NAMES as readonly string[]).includes(n))
      throw new ClipstreamError('ERR_INVALID_OPTION', `${option}: unknown score '${n}' (known: ${SCORE_NAMES.join(', ')}, or all, none)`, {
        where: { option },
      });
  }
  return SCORE_NAMES.filter((n) => names.includes(n));
}

/**
 * Raw RGB24 bytes as they come from a pipe (any chunking) cut into frames of `width` × `height`
 * for a scorer, numbered from 0. `write` returns a promise only when the scorer's push did (the
 * caller then waits before the next chunk); `end` fails when bytes of a partial frame are left.
 */
export class FrameSplitter {
  readonly frameBytes: number;
  #buf: Uint8Array;
  #fill = 0;
  #index = 0;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly sink: (frame: ClipFrame) => void | Promise<void>,
  ) {
    this.frameBytes = width * height * 3;
    this.#buf = new Uint8Array(this.frameBytes);
  }

  /** Frames seen so far. */
  get frames(): number {
    return this.#index;
  }

  write(chunk: Uint8Array): void | Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.frameBytes - this.#fill, chunk.length - off);
      this.#buf.set(chunk.subarray(off, off + take), this.#fill);
      this.#fill += take;
      off += take;
      if (this.#fill === this.frameBytes) {
        this.#fill = 0;
        const r = this.sink({ index: this.#index++, rgb: this.#buf, width: this.width, height: this.height });
        if (r) return r.then(() => this.write(chunk.subarray(off)));
      }
    }
  }

  end(): void {
    if (this.#fill !== 0)
      throw new ClipstreamError('ERR_DECODE', `${this.#fill} bytes of a partial ${this.width}x${this.height} frame after frame ${this.#index}`);
  }
}

/** A text detector with its area function, as src/infer/text-detector.ts gives them. */
export interface TextScoring {
  detector: TextDetectorLike;
  area: (boxes: readonly unknown[], width: number, height: number) => number;
  /** Frames per clip it runs on (default TEXT_FRAMES). */
  frames?: number;
}

/** What a run scores: the built-in names, the text detector for `text_area`, and plug-in scorers made per clip. */
export interface ScoreSetup {
  names: readonly ScoreName[];
  text?: TextScoring;
  /**
   * `text_area` from the finished clip file instead of the small frames: the detector needs frames
   * about 640 px wide (src/infer/text-detector.ts), which the 160 px score frames are not. The
   * clips job and `scoreClipFile` fill it in after the frames (`textAreaOfFile`).
   */
  textFile?: TextScoring & { width?: number };
  /** One more scorer per clip (an ONNX model, ...); `columns` of each must not repeat another's. */
  plugins?: readonly ((clip: { numFrames: number; stem: string }) => FrameScorer)[];
  /** Its columns, in order: every name asked for (text_area empty without a detector), then the plug-ins'. */
  columns: readonly string[];
  /** Releases the models the setup opened (text detector, plug-in scorers); the job calls it once its run ends. */
  close?: () => Promise<void>;
}

/** The scorers of one clip of `numFrames` frames (file name stem `stem`) under `setup`; text_area is '' when no detector is given. */
export function clipScorers(setup: ScoreSetup, numFrames: number, stem = ''): ScorerSet {
  const list: FrameScorer[] = [];
  const pixel = setup.names.filter((n): n is PixelScore => n !== 'text_area');
  if (pixel.length > 0) list.push(new PixelScorer(pixel));
  if (setup.names.includes('text_area')) {
    if (setup.text && !setup.textFile) list.push(new TextAreaScorer(setup.text.detector, setup.text.area, numFrames, setup.text.frames));
    else list.push({ columns: ['text_area'], push: () => {}, finish: () => ({ text_area: '' }) });
  }
  for (const make of setup.plugins ?? []) list.push(make({ numFrames, stem }));
  return new ScorerSet(list);
}
