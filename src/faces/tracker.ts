import { validateInteger, validateNumber } from '../util/validate.js';
import { iou, type Detection } from './boxes.js';

/** A detection tied to the sampled frame it came from. */
export interface FrameDetection extends Detection {
  /** Source frame number. */
  frame: number;
  /** Position among the sampled frames (frame / sampleEvery). */
  sample: number;
  /** Presentation time of the frame (seconds), when known. */
  time?: number;
}

/** Detections of one face over consecutive samples, in time order. */
export interface Track {
  detections: FrameDetection[];
}

export interface TrackOptions {
  /** A detection continues a track when its IoU with the track's last box is at least this (default 0.3). */
  iouThreshold?: number;
  /** Samples a face may be missing before its track ends (default 2). */
  maxGap?: number;
  /** Largest change of any box coordinate within a kept block, as a fraction of the frame side (default 0.06, seed 002). */
  maxBoxVariation?: number;
  /** Blocks with this many detections or fewer are dropped (default 16: seed 002 keeps blocks of more than 16). */
  minDetections?: number;
}

export type ResolvedTrackOptions = Required<TrackOptions>;

export function resolveTrackOptions(o: TrackOptions = {}, prefix = 'options'): ResolvedTrackOptions {
  return {
    iouThreshold: validateNumber(o.iouThreshold ?? 0.3, `${prefix}.iouThreshold`, 0, 1),
    maxGap: validateInteger(o.maxGap ?? 2, `${prefix}.maxGap`, 0, 10_000),
    maxBoxVariation: validateNumber(o.maxBoxVariation ?? 0.06, `${prefix}.maxBoxVariation`, 0, 10),
    minDetections: validateInteger(o.minDetections ?? 16, `${prefix}.minDetections`, 0, 1_000_000),
  };
}

/** What the linker takes per sampled frame; `time` (seconds), when given, is kept on each detection. */
export interface SampleDetections {
  frame: number;
  sample: number;
  time?: number;
  detections: Detection[];
}

/**
 * Links per-sample detections into tracks, one sample at a time. Each sample's detections are
 * matched greedily, best IoU first, to the tracks seen within the last `maxGap + 1` samples; a
 * detection that overlaps no track by `iouThreshold` (the face jumped, or a new face) starts a
 * new track, and a track not continued for more than `maxGap` samples ends. Ended tracks are
 * released in order of their first frame (ties: the one that ended first) as soon as no
 * running track started before them, so memory holds the running tracks, not the video.
 *
 * @example
 * const linker = new TrackLinker({ maxGap: 2 });
 * for (const s of samples) for (const t of linker.push(s)) use(t);
 * for (const t of linker.finish()) use(t);
 */
export class TrackLinker {
  private readonly o: ResolvedTrackOptions;
  private active: Track[] = [];
  /** Ended, not yet released; sorted by first frame, stable. */
  private readonly ended: Track[] = [];

  constructor(options: TrackOptions = {}) {
    this.o = resolveTrackOptions(options);
  }

  /** Adds one sample (in sample order); returns the tracks that can be released now. */
  push(s: SampleDetections): Track[] {
    const o = this.o;
    const stillActive: Track[] = [];
    for (const t of this.active) {
      if (s.sample - t.detections[t.detections.length - 1]!.sample > o.maxGap + 1) this.end(t);
      else stillActive.push(t);
    }
    const active = stillActive;
    this.active = active;
    const pairs: Array<{ t: number; d: number; v: number }> = [];
    active.forEach((t, ti) => {
      const last = t.detections[t.detections.length - 1]!;
      s.detections.forEach((d, di) => {
        const v = iou(last, d);
        if (v >= o.iouThreshold && v > 0) pairs.push({ t: ti, d: di, v });
      });
    });
    pairs.sort((a, b) => b.v - a.v);
    const usedT = new Set<number>();
    const usedD = new Set<number>();
    const at = (d: Detection): FrameDetection => ({ ...d, frame: s.frame, sample: s.sample, ...(s.time !== undefined ? { time: s.time } : {}) });
    for (const p of pairs) {
      if (usedT.has(p.t) || usedD.has(p.d)) continue;
      usedT.add(p.t);
      usedD.add(p.d);
      active[p.t]!.detections.push(at(s.detections[p.d]!));
    }
    s.detections.forEach((d, di) => {
      if (!usedD.has(di)) active.push({ detections: [at(d)] });
    });
    return this.release();
  }

  /** Ends every running track; returns all tracks not released yet, in order. */
  finish(): Track[] {
    for (const t of this.active) this.end(t);
    this.active = [];
    return this.ended.splice(0);
  }

  private end(t: Track): void {
    const start = t.detections[0]!.frame;
    let i = this.ended.length;
    while (i > 0 && this.ended[i - 1]!.detections[0]!.frame > start) i--;
    this.ended.splice(i, 0, t);
  }

  private release(): Track[] {
    const first = Math.min(...this.active.map((t) => t.detections[0]!.frame));
    let n = 0;
    while (n < this.ended.length && this.ended[n]!.detections[0]!.frame <= first) n++;
    return this.ended.splice(0, n);
  }
}

/**
 * Links all samples of a video into tracks (see TrackLinker), in order of their first frame.
 *
 * @example
 * linkTracks([{ frame: 0, sample: 0, detections: [box] }, ...], { maxGap: 2 })
 */
export function linkTracks(samples: SampleDetections[], options: TrackOptions = {}): Track[] {
  const linker = new TrackLinker(options);
  const out = samples.flatMap((s) => linker.push(s));
  return [...out, ...linker.finish()];
}

/**
 * Cuts a track into blocks in which every box coordinate stays within `maxBoxVariation` of the
 * frame side (x over the width, y over the height), and keeps the blocks with more than
 * `minDetections` detections, as seed 002's builder does for stable talking heads.
 *
 * @example
 * stableBlocks(track, 1920, 1080, { maxBoxVariation: 0.06, minDetections: 16 })
 */
export function stableBlocks(track: Track, frameWidth: number, frameHeight: number, options: TrackOptions = {}): Track[] {
  const o = resolveTrackOptions(options);
  const blocks: Track[] = [];
  let current: FrameDetection[] = [];
  let lo = [0, 0, 0, 0];
  let hi = [0, 0, 0, 0];
  const coords = (d: FrameDetection) => [d.x1 / frameWidth, d.y1 / frameHeight, d.x2 / frameWidth, d.y2 / frameHeight];
  const flush = () => {
    if (current.length > o.minDetections) blocks.push({ detections: current });
    current = [];
  };
  for (const d of track.detections) {
    const c = coords(d);
    if (current.length > 0) {
      const nlo = lo.map((v, i) => Math.min(v, c[i]!));
      const nhi = hi.map((v, i) => Math.max(v, c[i]!));
      if (nhi.some((v, i) => v - nlo[i]! > o.maxBoxVariation)) {
        flush();
      } else {
        lo = nlo;
        hi = nhi;
        current.push(d);
        continue;
      }
    }
    lo = c;
    hi = [...c];
    current.push(d);
  }
  flush();
  return blocks;
}
