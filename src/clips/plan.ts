/**
 * Clip planning: which frame spans of a video become clips. Everything is computed in
 * frames (end exclusive) so that a plan is exact and re-runs give the same clip ids;
 * seconds come from the frames' own timestamps when they are known (`times`), so a
 * variable-frame-rate video is planned where its frames really are; else from the rate.
 */
import { ClipstreamError } from '../errors.js';
import { validateInteger, validateNumber } from '../util/validate.js';
import { parseCsvLines } from '../util/csv.js';
import type { TimelineRun } from './timeline.js';

/** A span as written in a span table, before the video's frame rate is known. */
export interface SpanSpec {
  videoId: string;
  start: number;
  end: number;
  unit: 'frame' | 'second';
}

/** Frame rate and length of a source video, from probing it. */
export interface VideoTiming {
  fps: number;
  numFrames: number;
  /**
   * Presentation time of every frame in seconds from the first frame (so `times[0]` is 0),
   * plus one more entry: where the last frame ends. `numFrames + 1` entries. When absent,
   * frame `n` is taken to be at `n / fps`.
   */
  times?: ArrayLike<number>;
  /**
   * Where the source's timestamps restart or jump (timeline.ts), when they do: `times` are
   * then content times, and no clip crosses from one run into the next.
   */
  runs?: readonly TimelineRun[];
}

/** The time of frame `n` (n may be numFrames: the end), to the microsecond. */
function timeOf(t: VideoTiming, n: number): number {
  const s = t.times ? t.times[n]! : n / t.fps;
  // Microsecond precision keeps tables stable without float noise like 2.9999999999.
  return Math.round(s * 1e6) / 1e6;
}

/**
 * The frame nearest to `seconds`: the number of frames whose midpoint with the next lies
 * at or before it. With times at n / fps this is exactly `Math.round(seconds * fps)`.
 */
export function frameAt(t: VideoTiming, seconds: number): number {
  if (!t.times) return Math.round(seconds * t.fps);
  const x = seconds + 1e-9;
  let lo = 0;
  let hi = t.numFrames;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((t.times[mid]! + t.times[mid + 1]!) / 2 <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One clip to cut: frames `[startFrame, endFrame)` of `videoId`. */
export interface PlannedClip {
  videoId: string;
  /** Deterministic: `{videoId}_{startFrame}_{endFrame}`, as Sekai names its clips. */
  clipId: string;
  /** File name stem: the clip id with characters that break webdataset keys or paths replaced. */
  stem: string;
  startFrame: number;
  endFrame: number;
  startS: number;
  endS: number;
}

/** A span that did not survive planning (or cutting) as written, and why. */
export interface SpanIssue {
  videoId: string;
  span: string;
  /**
   * `failed`: planned, but the clip could not be made (the reason says why); `split`: it
   * crossed a restart or a hole in the source's timestamps and was made as one clip each side.
   */
  action: 'clipped' | 'dropped' | 'failed' | 'split';
  reason: string;
}

export interface PlanResult {
  clips: PlannedClip[];
  issues: SpanIssue[];
}

/**
 * `.` would split the webdataset key and `/` a path; both (and anything unusual) become `-`.
 *
 * @example clipStem('a.b/c_d', 0, 25) // 'a-b-c_d_0_25'
 */
export function clipStem(videoId: string, startFrame: number, endFrame: number): string {
  return `${videoId.replace(/[^A-Za-z0-9_-]/g, '-')}_${startFrame}_${endFrame}`;
}

function makeClip(videoId: string, startFrame: number, endFrame: number, timing: VideoTiming): PlannedClip {
  return {
    videoId,
    clipId: `${videoId}_${startFrame}_${endFrame}`,
    stem: clipStem(videoId, startFrame, endFrame),
    startFrame,
    endFrame,
    startS: timeOf(timing, startFrame),
    endS: timeOf(timing, endFrame),
  };
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * A clip of frames [s, e) as one clip per run it touches: audio and frames of one clip must
 * cover the same span, which they cannot across a restart or a hole. Parts shorter than
 * `minLenS` are not made. Each split is one issue naming the breaks.
 */
function clipsInRuns(videoId: string, s: number, e: number, timing: VideoTiming, span: string, minLenS = 0): PlanResult {
  const runs = timing.runs ?? [];
  const cuts = runs.filter((r) => r.start > s && r.start < e);
  if (cuts.length === 0) return { clips: [makeClip(videoId, s, e, timing)], issues: [] };
  const bounds = [s, ...cuts.map((r) => r.start), e];
  const clips: PlannedClip[] = [];
  const parts: string[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const clip = makeClip(videoId, bounds[k]!, bounds[k + 1]!, timing);
    parts.push(`${clip.startFrame}-${clip.endFrame}`);
    if (clip.endS - clip.startS + 1e-9 >= minLenS) clips.push(clip);
  }
  const why = cuts
    .map((r) =>
      r.after!.kind === 'reset'
        ? `a timestamp restart at frame ${r.start} (back from ${round6(r.after!.fromS)} s to ${round6(r.after!.toS)} s)`
        : `a ${round6(r.after!.toS - r.after!.fromS)} s timestamp gap at frame ${r.start} (no frames from ${round6(r.after!.fromS)} s to ${round6(r.after!.toS)} s)`,
    )
    .join(' and ');
  const dropped = parts.length - clips.length;
  const reason =
    `crosses ${why}, where its audio and frames cannot cover the same span: split into frames ${parts.join(', ')}` +
    (dropped > 0 ? ` (${dropped} part(s) shorter than ${minLenS} s not made)` : '');
  return { clips, issues: [{ videoId, span, action: 'split', reason }] };
}

const SEKAI_NAME = /^(.+)_(\d+)_(\d+)$/;

/**
 * Splits a Sekai clip name `<vid>_<start_frame>_<end_frame>` from the right, because
 * YouTube ids themselves contain `_`. A file extension is ignored.
 *
 * @example parseSekaiName('_-5p_Ld_000120_000360.mp4') // { videoId: '_-5p_Ld', start: 120, end: 360, unit: 'frame' }
 */
export function parseSekaiName(name: string): SpanSpec | null {
  const stem = name.replace(/\.[A-Za-z0-9]{2,4}$/, '');
  const m = SEKAI_NAME.exec(stem);
  if (!m) return null;
  return { videoId: m[1]!, start: Number(m[2]), end: Number(m[3]), unit: 'frame' };
}

const NAME_COLUMNS = ['clip_id', 'clip', 'name', 'videoFile', 'video_file', 'file', 'filename'];
const SECOND_COLUMNS: [string, string][] = [
  ['start_s', 'end_s'],
  ['start_time', 'end_time'],
  ['start_sec', 'end_sec'],
  ['start', 'end'],
];

/**
 * Reads a span table (CSV or TSV text). Either a name column (`clip_id`, `videoFile`, ...)
 * holding Sekai names, or `video_id` with `start_frame`/`end_frame`, or with seconds in
 * `start_s`/`end_s` (also `start_time`/`end_time`, `start`/`end`). Spans come back grouped
 * by video and sorted numerically (Sekai's script sorts start frames as strings, which
 * puts frame 1000 before frame 200).
 *
 * @example
 * parseSpanTable('video_id,start_s,end_s\nabc,0,2.5\n', 'spans.csv')
 * // Map { 'abc' => [{ videoId: 'abc', start: 0, end: 2.5, unit: 'second' }] }
 */
export function parseSpanTable(text: string, file: string): Map<string, SpanSpec[]> {
  const delimiter = file.toLowerCase().endsWith('.tsv') ? '\t' : ',';
  const lines = parseCsvLines(text, { delimiter, file });
  const rows = lines.map((l) => l.row);
  const out = new Map<string, SpanSpec[]>();
  if (rows.length === 0) return out;
  const cols = Object.keys(rows[0]!);
  const bad = (i: number, why: string) => new ClipstreamError('ERR_FORMAT', `${file}, line ${lines[i]!.line}: ${why}`, { where: { file } });
  const nameCol = NAME_COLUMNS.find((c) => cols.includes(c));
  const secondCols = SECOND_COLUMNS.find(([a, b]) => cols.includes(a) && cols.includes(b));
  const frameCols = cols.includes('start_frame') && cols.includes('end_frame');
  const hasVideo = cols.includes('video_id');
  if (!(hasVideo && (frameCols || secondCols)) && !nameCol) {
    throw new ClipstreamError(
      'ERR_FORMAT',
      `${file}: no span columns found (columns: ${cols.join(', ')}); expected a clip name column (${NAME_COLUMNS.join(', ')}) ` +
        `with <video_id>_<start_frame>_<end_frame> names, or video_id with start_frame/end_frame or start_s/end_s`,
      { where: { file } },
    );
  }
  rows.forEach((row, i) => {
    let spec: SpanSpec | null;
    if (hasVideo && (frameCols || secondCols)) {
      const [a, b] = frameCols ? ['start_frame', 'end_frame'] : secondCols!;
      const start = Number(row[a]);
      const end = Number(row[b]);
      if (!row.video_id) throw bad(i, 'empty video_id');
      if (row[a] === '' || row[b] === '' || !Number.isFinite(start) || !Number.isFinite(end)) {
        throw bad(i, `${a}/${b} must be numbers but are '${row[a]}'/'${row[b]}'`);
      }
      if (frameCols && (!Number.isInteger(start) || !Number.isInteger(end))) throw bad(i, `frame numbers must be integers but are '${row[a]}'/'${row[b]}'`);
      spec = { videoId: row.video_id, start, end, unit: frameCols ? 'frame' : 'second' };
    } else {
      spec = parseSekaiName(row[nameCol!] ?? '');
      if (!spec) throw bad(i, `'${row[nameCol!]}' in column ${nameCol} is not <video_id>_<start_frame>_<end_frame>`);
    }
    const list = out.get(spec.videoId) ?? [];
    list.push(spec);
    out.set(spec.videoId, list);
  });
  for (const list of out.values()) list.sort((x, y) => x.start - y.start || x.end - y.end);
  return out;
}

function validTiming(t: VideoTiming, videoId: string): void {
  if (!(t.fps > 0) || !Number.isInteger(t.numFrames) || t.numFrames < 0 || (t.times !== undefined && t.times.length !== t.numFrames + 1)) {
    throw new ClipstreamError('ERR_PROBE', `video ${videoId}: cannot plan clips without a frame rate and frame count (fps ${t.fps}, frames ${t.numFrames})`, {
      where: { key: videoId },
    });
  }
}

/**
 * Turns span specs into clips for a video of known timing. A span that runs past the
 * last frame is cut at the end (`pastEnd: 'clip'`, the default) or dropped; one that
 * starts past the end, or is empty, is dropped. Every change is listed in `issues`.
 *
 * @example
 * planSpans(specs, { fps: 25, numFrames: 250 }).clips[0] // { clipId: 'abc_0_50', startFrame: 0, endFrame: 50, ... }
 */
export function planSpans(specs: readonly SpanSpec[], timing: VideoTiming, pastEnd: 'clip' | 'drop' = 'clip'): PlanResult {
  const clips: PlannedClip[] = [];
  const issues: SpanIssue[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    validTiming(timing, spec.videoId);
    const toFrame = (v: number) => (spec.unit === 'frame' ? v : frameAt(timing, v));
    const s = Math.max(0, toFrame(spec.start));
    let e = toFrame(spec.end);
    const span = spec.unit === 'frame' ? `frames ${spec.start}-${spec.end}` : `${spec.start}-${spec.end} s`;
    const issue = (action: SpanIssue['action'], reason: string) => issues.push({ videoId: spec.videoId, span, action, reason });
    if (e <= s) {
      issue('dropped', `empty span (end ${e} <= start ${s} in frames)`);
      continue;
    }
    if (s >= timing.numFrames) {
      issue('dropped', `starts at frame ${s}, past the end of the video (${timing.numFrames} frames)`);
      continue;
    }
    if (e > timing.numFrames) {
      if (pastEnd === 'drop') {
        issue('dropped', `ends at frame ${e}, past the end of the video (${timing.numFrames} frames)`);
        continue;
      }
      issue('clipped', `ends at frame ${e}, past the end of the video; cut to ${timing.numFrames}`);
      e = timing.numFrames;
    }
    const parts = clipsInRuns(spec.videoId, s, e, timing, span);
    issues.push(...parts.issues);
    for (const clip of parts.clips) {
      if (seen.has(clip.clipId)) continue;
      seen.add(clip.clipId);
      clips.push(clip);
    }
  }
  return { clips, issues };
}

export interface FixedStrideOptions {
  /** Clip length in seconds. */
  clipLenS: number;
  /** Distance between clip starts in seconds. */
  clipStrideS: number;
  /** Tail clips shorter than this are not made; default 0 (any non-empty tail is kept). */
  minClipLengthS?: number;
  /** At most this many clips per video; 0 or absent for no limit. */
  limitClips?: number;
}

/**
 * NeMo Curator's FixedStrideExtractorStage: starts at 0, stride, 2·stride, ... while inside
 * the video; each clip ends `clipLenS` later or at the end of the video; clips shorter than
 * `minClipLengthS` are skipped; at most `limitClips`. Computed in frames, so ids are exact.
 *
 * @example
 * fixedStride('abc', { fps: 10, numFrames: 95 }, { clipLenS: 4, clipStrideS: 4 }).clips.map((c) => c.clipId)
 * // ['abc_0_40', 'abc_40_80', 'abc_80_95']
 */
export function fixedStride(videoId: string, timing: VideoTiming, options: FixedStrideOptions): PlanResult {
  validTiming(timing, videoId);
  const len = validateNumber(options.clipLenS, 'options.clipLenS', Number.MIN_VALUE);
  const stride = validateNumber(options.clipStrideS, 'options.clipStrideS', Number.MIN_VALUE);
  const minLen = validateNumber(options.minClipLengthS ?? 0, 'options.minClipLengthS', 0);
  const limit = validateInteger(options.limitClips ?? 0, 'options.limitClips', 0);
  const clips: PlannedClip[] = [];
  const issues: SpanIssue[] = [];
  for (let k = 0; ; k++) {
    const s = frameAt(timing, k * stride);
    if (s >= timing.numFrames) break;
    const e = Math.min(timing.numFrames, frameAt(timing, k * stride + len));
    const seconds = timing.times ? timing.times[e]! - timing.times[s]! : (e - s) / timing.fps;
    if (e > s && seconds + 1e-9 >= minLen) {
      const parts = clipsInRuns(videoId, s, e, timing, `${round6(k * stride)}-${round6(k * stride + len)} s`, minLen);
      issues.push(...parts.issues);
      for (const clip of parts.clips) if (limit === 0 || clips.length < limit) clips.push(clip);
    }
    if (limit > 0 && clips.length >= limit) break;
  }
  return { clips, issues };
}

/**
 * Seed 002's `--clip-duration`: consecutive parts of `minutes` minutes covering the whole
 * video; the last part holds what is left.
 *
 * @example fixedParts('abc', { fps: 10, numFrames: 900 }, 1).clips.map((c) => c.clipId) // ['abc_0_600', 'abc_600_900']
 */
export function fixedParts(videoId: string, timing: VideoTiming, minutes: number): PlanResult {
  const s = validateNumber(minutes, 'options.partMinutes', Number.MIN_VALUE) * 60;
  return fixedStride(videoId, timing, { clipLenS: s, clipStrideS: s });
}

/** From shots to clips (NeMo Curator's and Panda-70M's rules). */
export interface ShotClipOptions {
  /** Seconds taken off each end of a shot first (transitions leak into the frames next to a cut); default 0. */
  trimS?: number;
  /** Shots (after the trim) shorter than this make no clip; default 0. */
  minClipLengthS?: number;
  /** Longer shots are cut to this length (`truncate`: the first piece only) or into pieces of it (`stride`); absent: no limit. */
  maxClipLengthS?: number;
  maxLengthMode?: 'truncate' | 'stride';
}

/**
 * The clips of a video's shots (frames [start_frame, end_frame), end exclusive): each shot trimmed
 * by `trimS` at both ends; kept when at least `minClipLengthS` long; a longer one than
 * `maxClipLengthS` truncated to its first piece or, with `stride`, cut into consecutive pieces of
 * that length (a last piece shorter than `minClipLengthS` is not made). Seconds come from the
 * frames' times, as for every plan; a clip never crosses a timestamp break.
 *
 * @example
 * planShots('abc', { fps: 10, numFrames: 100 }, [{ start_frame: 0, end_frame: 30 }, { start_frame: 30, end_frame: 100 }], { maxClipLengthS: 4 }).clips.map((c) => c.clipId)
 * // ['abc_0_30', 'abc_30_70', 'abc_70_100']
 */
export function planShots(
  videoId: string,
  timing: VideoTiming,
  shots: readonly { start_frame: number; end_frame: number }[],
  options: ShotClipOptions = {},
): PlanResult {
  validTiming(timing, videoId);
  const trim = validateNumber(options.trimS ?? 0, 'options.trimS', 0);
  const minLen = validateNumber(options.minClipLengthS ?? 0, 'options.minClipLengthS', 0);
  const maxLen = options.maxClipLengthS === undefined ? null : validateNumber(options.maxClipLengthS, 'options.maxClipLengthS', Number.MIN_VALUE);
  const mode = options.maxLengthMode ?? 'stride';
  const seconds = (s: number, e: number) => (timing.times ? timing.times[e]! - timing.times[s]! : (e - s) / timing.fps);
  const clips: PlannedClip[] = [];
  const issues: SpanIssue[] = [];
  for (const shot of shots) {
    const s0 = Math.max(0, Math.min(shot.start_frame, timing.numFrames));
    const e0 = Math.max(s0, Math.min(shot.end_frame, timing.numFrames));
    const s = trim > 0 ? Math.max(s0, frameAt(timing, timeOf(timing, s0) + trim)) : s0;
    const e = trim > 0 ? Math.min(e0, frameAt(timing, timeOf(timing, e0) - trim)) : e0;
    if (e <= s || seconds(s, e) + 1e-9 < minLen) continue;
    const pieces: [number, number][] = [];
    if (maxLen === null) pieces.push([s, e]);
    else {
      for (let k = 0; ; k++) {
        const ps = k === 0 ? s : pieces[k - 1]![1];
        if (ps >= e) break;
        const pe = Math.min(e, Math.max(ps + 1, frameAt(timing, timeOf(timing, ps) + maxLen)));
        if (k > 0 && seconds(ps, pe) + 1e-9 < minLen) break;
        pieces.push([ps, pe]);
        if (mode === 'truncate') break;
      }
    }
    for (const [ps, pe] of pieces) {
      const parts = clipsInRuns(videoId, ps, pe, timing, `shot frames ${shot.start_frame}-${shot.end_frame}`, minLen);
      issues.push(...parts.issues);
      clips.push(...parts.clips);
    }
  }
  return { clips, issues };
}
