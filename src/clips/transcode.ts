import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { runTool, stderrTail } from '../media/process.js';
import { withAtomicFile } from '../util/atomic.js';
import { validateInteger } from '../util/validate.js';
import { encoderArgs, type EncodeSettings } from '../media/encoders.js';
import type { PlannedClip } from './plan.js';
import { outputTagArgs, setsarFilter, type MediaFacts } from '../media/facts.js';
import { probeVideo, type FrameTimes, type VideoInfo } from '../media/probe.js';
import { clipScorers, FrameSplitter, scoreSize, type ScoreSetup } from '../features/clip-scores.js';
import { scoreFilter } from './score-file.js';

/** One clip to write: the plan and the mp4 path it must end up at. */
export interface ClipJob {
  clip: PlannedClip;
  out: string;
  /** With `scores`: the clip's scores, set once its file is made (before `onClipDone`). */
  scores?: Record<string, number | string>;
}

export interface TranscodeOptions extends EncodeSettings {
  /** `one-pass`: decode once, encode every clip of a chunk in the same ffmpeg; `per-clip`: one ffmpeg per clip. */
  mode?: 'one-pass' | 'per-clip';
  /** Clips per ffmpeg process in one-pass mode (NeMo's `num_clips_per_chunk`). Default from the size: `clipsPerChunk`. */
  numClipsPerChunk?: number;
  /** ffmpeg processes of one video running at once (chunks, or clips in per-clip mode). Default 1. */
  encodeBatchSize?: number;
  /** Decode with `-hwaccel cuda`. */
  hwaccel?: boolean;
  ffmpegPath?: string;
  /** Kill an ffmpeg that reports no progress for this long. Default 120 s. */
  stallTimeoutMs?: number;
  /** The source's real frame times (probeFrames): per-clip mode seeks between frames s − 1 and s by them. */
  frameTimes?: FrameTimes;
  /** The source's colour and geometry facts: every clip is tagged like its source (colour, range, SAR); absent: tagged by nothing but ffmpeg. */
  look?: Pick<MediaFacts, 'colour' | 'geometry'>;
  /**
   * Score every clip while it is cut: the same ffmpeg also writes each clip's frames, small
   * (`scoreSize`, `scoreFilter`), as raw RGB24 to a pipe of its own (fd 3, 4, ...), which the
   * scorers read as it comes; nothing of the clip's own output changes.
   */
  scores?: ScoreSetup;
  /**
   * Called once a clip's file is complete and verified, before the next chunk starts; a
   * job finishes the clip here (audio), so a kill never loses more than the running chunk.
   */
  onClipDone?: (job: ClipJob) => Promise<void>;
  /**
   * With this handler a failed chunk is retried one clip at a time, and a clip that still
   * fails is handed here instead of failing the whole call: one bad clip costs that clip.
   */
  onClipFailed?: (job: ClipJob, error: ClipstreamError) => Promise<void> | void;
  signal?: AbortSignal;
}

function lastLine(stderr: string): string {
  return stderrTail(stderr, 3) || 'no message';
}

function common(o: TranscodeOptions): string[] {
  // -progress keeps stdout alive, so the stall watchdog only fires on a really hung ffmpeg.
  return ['-hide_banner', '-nostdin', '-v', 'error', '-progress', 'pipe:1', ...(o.hwaccel ? ['-hwaccel', 'cuda'] : [])];
}

/**
 * 4:2:0 needs even sizes: an odd width or height (333×187) loses its last column or row.
 * Cropping, not padding, so no clip gets a border that is not in the source, and kept
 * pixels stay exactly the source's. A no-op for even sizes.
 */
export const EVEN_420 = 'crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,format=yuv420p';

/**
 * EVEN_420 for a source of these facts. A full-range source stays full range (the scaler
 * would squeeze it into limited range on the way to yuv420p, which changes every pixel), and a
 * non-square SAR is set again at the end, whatever an ffmpeg does with it on the way. Square,
 * limited or untagged sources get EVEN_420 itself, so their clips stay as they were.
 */
export function even420(look?: Pick<MediaFacts, 'colour' | 'geometry'>): string {
  if (!look) return EVEN_420;
  const full = look.colour.range === 'pc' ? 'crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,scale=in_range=full:out_range=full,format=yuv420p' : EVEN_420;
  const sar = setsarFilter(look);
  return sar ? `${full},${sar}` : full;
}

const RGB = /^(?:gbr|rgb|bgr|argb|abgr|rgba|bgra|0rgb|0bgr|x2rgb|x2bgr|pal8)/;

/**
 * What of a source's look its clips can carry. Clips are YUV 4:2:0: an RGB source is
 * converted by ffmpeg's default matrix into limited range, so its own matrix (`gbr`) and
 * range do not describe the clip and are not tagged (its primaries and transfer are).
 *
 * @example clipLook(facts).colour // { matrix: null, primaries: 'bt709', transfer: 'bt709', range: null, tagged: true } for a BT.709 RGB source
 */
export function clipLook(facts: Pick<MediaFacts, 'colour' | 'geometry' | 'video'>): Pick<MediaFacts, 'colour' | 'geometry'> {
  const c = facts.colour;
  if (!RGB.test(facts.video.pixFmt) && c.matrix !== 'gbr' && c.matrix !== 'rgb') return { colour: c, geometry: facts.geometry };
  const colour = { ...c, matrix: null, range: null, tagged: c.primaries !== null || c.transfer !== null };
  return { colour, geometry: facts.geometry };
}

/** The encoder's options, then the source's colour tags (none for an untagged source). */
const encodeArgs = (o: TranscodeOptions) => [...encoderArgs(o), ...(o.look ? outputTagArgs(o.look) : [])];

/**
 * One ffmpeg, one decode, one encoder per clip. `split` copies every decoded frame to each
 * branch and `trim` keeps frames [s, e) by their index, so clips are exact to the frame
 * whatever the keyframe layout. Passthrough vsync keeps ffmpeg from duplicating or dropping
 * frames to match a nominal rate.
 *
 * With `seek` (and the source's real frame times), the decode starts at the keyframe before
 * the chunk's first frame instead of frame 0, and each branch keeps its frames by their raw
 * timestamps: many chunks of a long video then cost about one decode in all, not one each. A seek that lands wrong gives a short clip, which
 * the check after encoding catches; `runChunk` then cuts the chunk from frame 0.
 */
export function onePassArgs(info: VideoInfo, jobs: readonly { clip: PlannedClip; tmp: string }[], o: TranscodeOptions, seek = false): string[] {
  const k = jobs.length;
  const t = o.frameTimes?.times;
  const first = Math.min(...jobs.map((j) => j.clip.startFrame));
  const byTime = seek && t !== undefined && first > 0;
  const branches = jobs.map((_, i) => `[s${i}]`).join('');
  const small = o.scores ? scoreSize(info.width, info.height) : null;
  // With scores each clip's frames also go, small, to a pipe: split after the clip's own chain, so its encoder gets the same frames.
  const tail = (i: number) => (small ? `,split=2[o${i}][q${i}];[q${i}]${scoreFilter(small.width, small.height)}[r${i}]` : `[o${i}]`);
  const graph = [
    `[0:v:0]split=${k}${branches}`,
    ...jobs.map(
      ({ clip }, i) =>
        `[s${i}]${byTime ? trimByTime(t, clip) : `trim=start_frame=${clip.startFrame}:end_frame=${clip.endFrame}`},setpts=PTS-STARTPTS,${even420(o.look)}${tail(i)}`,
    ),
  ].join(';');
  const args = [...common(o), '-vsync', '0', ...(byTime ? seekTo(t, first) : []), '-i', info.path, '-filter_complex', graph];
  for (const [i, { tmp }] of jobs.entries()) {
    args.push('-map', `[o${i}]`, ...encodeArgs(o), '-an', '-sn', '-dn', '-map_metadata', '-1', '-movflags', '+faststart', '-f', 'mp4', tmp);
    if (small) args.push(...rawPipeArgs(`[r${i}]`, 3 + i));
  }
  return args;
}

/** An output of raw RGB24 frames to pipe `fd`, for the scorers. */
const rawPipeArgs = (map: string, fd: number) => ['-map', map, '-an', '-sn', '-dn', '-f', 'rawvideo', '-pix_fmt', 'rgb24', `pipe:${fd}`];

const midpoint = (t: ArrayLike<number>, n: number) => (t[n - 1]! + t[n]!) / 2;

/**
 * Input options that start decoding at the keyframe before frame `s`, on raw timestamps
 * (`-copyts`: the probe's timeline whatever streams are mapped). `-ss` counts from the
 * file's start, which is at or before the first frame: taking it from the first frame
 * can only seek a little earlier. The exact start is the `trim` that follows.
 */
function seekTo(t: ArrayLike<number>, s: number): string[] {
  return ['-copyts', '-noaccurate_seek', '-ss', Math.max(0, midpoint(t, s) - t[0]!).toFixed(6)];
}

/** Frames [s, e) by their raw timestamps: from the midpoint of s − 1 and s to that of e − 1 and e. */
function trimByTime(t: ArrayLike<number>, { startFrame: s, endFrame: e }: PlannedClip): string {
  const parts = [...(s > 0 ? [`start=${midpoint(t, s).toFixed(6)}`] : []), ...(e < t.length ? [`end=${midpoint(t, e).toFixed(6)}`] : [])];
  return parts.length > 0 ? `trim=${parts.join(':')}` : 'null';
}

/**
 * Clips per ffmpeg when not given: each branch holds an encoder with its lookahead, so a
 * pass of 32 1080p clips takes gigabytes. The budget is 32 clips at 640×360, at least one.
 *
 * @example clipsPerChunk(1920, 1080) // 3
 */
export function clipsPerChunk(width: number, height: number): number {
  const pixels = width > 0 && height > 0 ? width * height : 640 * 360;
  return Math.max(1, Math.min(32, Math.floor((32 * 640 * 360) / pixels)));
}

/**
 * The usual way, for comparison: seek, then take frames [s, e). With the source's real
 * frame times (`frameTimes`) the decode starts at the keyframe before s and the frames are
 * kept by their raw timestamps, from the midpoint of s − 1 and s to that of e − 1 and e, so
 * the cut is right whatever the frame rate or reordering (a B-frame AVI starts at 2 frames,
 * not 0; a VFR video is not at n / fps). A demuxer that lands after the target (AVI in its
 * first GOP) gives too few frames, which the check after encoding catches (and `runChunk`
 * cuts that clip from frame 0 instead). Without times: seek half a frame before s / fps.
 */
export function perClipArgs(info: VideoInfo, clip: PlannedClip, tmp: string, o: TranscodeOptions): string[] {
  const t = o.frameTimes?.times;
  const s = clip.startFrame;
  let input: string[];
  let vf = even420(o.look);
  if (t) {
    // Frame 0 needs no seek, and some demuxers seek wrongly to 0 (a B-frame AVI lands seconds later).
    input = s === 0 ? ['-copyts'] : seekTo(t, s);
    vf = `${trimByTime(t, clip)},setpts=PTS-STARTPTS,${vf}`;
  } else {
    input = s === 0 ? [] : ['-ss', ((s - 0.5) / info.fps).toFixed(6)];
  }
  return [
    ...common(o),
    '-vsync',
    '0',
    ...input,
    '-i',
    info.path,
    '-map',
    '0:v:0',
    '-frames:v',
    String(clip.endFrame - s),
    '-vf',
    vf,
    ...encodeArgs(o),
    '-an',
    '-sn',
    '-dn',
    '-map_metadata',
    '-1',
    '-movflags',
    '+faststart',
    '-f',
    'mp4',
    tmp,
    // With scores, a second output of the same decode: the clip's frames, small, to fd 3.
    ...(o.scores
      ? ['-map', '0:v:0', '-frames:v', String(clip.endFrame - s), '-vf', `${vf},${scoreFilterOf(info)}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:3']
      : []),
  ];
}

function scoreFilterOf(info: VideoInfo): string {
  const { width, height } = scoreSize(info.width, info.height);
  return scoreFilter(width, height);
}

/**
 * Checks a clip file before it is trusted (made now, or found by a re-run): it must have a
 * video stream with exactly `frames` frames (and an audio stream when `audio`). Returns its
 * probe; throws naming the file and what is wrong.
 *
 * @example const info = await verifyClip('clips/abc_0_50.mp4', 50, { audio: true });
 */
export async function verifyClip(file: string, frames: number, o: { audio?: boolean; signal?: AbortSignal } = {}): Promise<VideoInfo> {
  let info: VideoInfo;
  try {
    info = await probeVideo(file, { signal: o.signal });
  } catch (err) {
    if (o.signal?.aborted) throw err;
    throw new ClipstreamError('ERR_ENCODE', `${file} is not a valid clip: ${(err as Error).message}`, { cause: err, where: { file } });
  }
  if (info.numFrames !== frames)
    throw new ClipstreamError('ERR_ENCODE', `${file} has ${info.numFrames} frames where the clip needs ${frames}`, { where: { file } });
  if (o.audio && info.audioCodec === null) throw new ClipstreamError('ERR_ENCODE', `${file} has no audio stream`, { where: { file } });
  return info;
}

type Route = 'per-clip' | 'seek' | 'from-0';

async function runChunk(info: VideoInfo, videoId: string, jobs: readonly ClipJob[], o: TranscodeOptions, perClip: boolean): Promise<void> {
  const seeks = o.frameTimes !== undefined && Math.min(...jobs.map((j) => j.clip.startFrame)) > 0;
  try {
    await runOnce(info, videoId, jobs, o, perClip ? 'per-clip' : seeks ? 'seek' : 'from-0');
  } catch (err) {
    // A seek that landed wrong is no reason to lose the clips: decode from frame 0.
    if (!(perClip || seeks) || o.signal?.aborted) throw err;
    await runOnce(info, videoId, jobs, o, 'from-0');
  }
}

/** Every path in `outs` through withAtomicFile at once: `produce` gets their temp paths; each is fsynced and renamed after it. */
function atomicAll(outs: readonly string[], produce: (tmps: string[]) => Promise<void>, tmps: string[] = []): Promise<void> {
  if (outs.length === 0) return produce(tmps);
  return withAtomicFile(outs[0]!, (tmp) => atomicAll(outs.slice(1), produce, [...tmps, tmp]));
}

async function runOnce(info: VideoInfo, videoId: string, jobs: readonly ClipJob[], o: TranscodeOptions, route: Route): Promise<void> {
  await atomicAll(
    jobs.map((j) => j.out),
    async (tmps) => {
      const withTmp = jobs.map((j, i) => ({ ...j, tmp: tmps[i]! }));
      const args = route === 'per-clip' ? perClipArgs(info, jobs[0]!.clip, withTmp[0]!.tmp, o) : onePassArgs(info, withTmp, o, route === 'seek');
      // Scorers are made afresh at every start of the ffmpeg (runTool retries a transient failure).
      let scoring: { set: ReturnType<typeof clipScorers>; split: FrameSplitter }[] = [];
      const small = o.scores ? scoreSize(info.width, info.height) : null;
      const res = await runTool(o.ffmpegPath ?? ffmpegPath(), args, {
        signal: o.signal,
        stallTimeoutMs: o.stallTimeoutMs ?? 120_000,
        where: { key: videoId, file: info.path },
        ...(o.scores && small
          ? {
              extraOutputs: jobs.length,
              extraSinks: () => {
                scoring = jobs.map((j) => {
                  const set = clipScorers(o.scores!, j.clip.endFrame - j.clip.startFrame, j.clip.stem);
                  return { set, split: new FrameSplitter(small.width, small.height, (f) => set.pushSync(f)) };
                });
                return scoring.map(
                  ({ split }) =>
                    (chunk: Buffer) =>
                      split.write(chunk),
                );
              },
            }
          : {}),
      });
      if (res.extraError !== undefined && !o.signal?.aborted) {
        const e = res.extraError as Error;
        throw new ClipstreamError('ERR_DECODE', `video ${videoId} (${info.path}): scoring clips failed: ${e?.message ?? String(e)}`, {
          cause: e,
          where: { key: videoId, file: info.path },
        });
      }
      if (res.code !== 0 || res.killedBy || res.signal) {
        const why = res.killedBy
          ? `ffmpeg was killed (${res.killedBy === 'stall' ? 'no progress' : 'timeout'})`
          : res.signal
            ? `ffmpeg was killed by ${res.signal}`
            : `ffmpeg exited with ${res.code}`;
        const names = jobs.map((j) => j.clip.clipId).join(', ');
        throw new ClipstreamError('ERR_ENCODE', `video ${videoId} (${info.path}): cutting clips ${names} failed: ${why}: ${lastLine(res.stderr)}`, {
          where: { key: videoId, file: info.path },
          transient: res.transient === true,
        });
      }
      // ffmpeg can exit 0 having written an mp4 without frames: nothing unverified gets a final name.
      for (const j of withTmp) {
        try {
          await verifyClip(j.tmp, j.clip.endFrame - j.clip.startFrame, { signal: o.signal });
        } catch (err) {
          if (o.signal?.aborted) throw err;
          throw new ClipstreamError('ERR_ENCODE', `video ${videoId} (${info.path}): clip ${j.clip.clipId} came out wrong: ${(err as Error).message}`, {
            cause: err,
            where: { key: videoId, file: info.path },
          });
        }
      }
      for (const [i, j] of jobs.entries()) {
        const sc = scoring[i];
        if (!sc) continue;
        const want = j.clip.endFrame - j.clip.startFrame;
        sc.split.end();
        if (sc.split.frames !== want)
          throw new ClipstreamError(
            'ERR_DECODE',
            `video ${videoId} (${info.path}): clip ${j.clip.clipId}: ${sc.split.frames} frames scored where it has ${want}`,
            {
              where: { key: videoId, file: info.path },
            },
          );
        j.scores = await sc.set.finish();
      }
    },
  );
}

/**
 * Cuts and encodes clips of one video. Each mp4 appears under its final name only once
 * complete. In one-pass mode clips are grouped into chunks of `numClipsPerChunk` in plan
 * order; each chunk is one ffmpeg that decodes the video once.
 *
 * @example
 * await transcodeClips(info, 'abc', [{ clip, out: 'out/abc_0_50.mp4' }], { encoder: 'libx264', threads: 1, crf: 23 });
 */
export async function transcodeClips(info: VideoInfo, videoId: string, jobs: readonly ClipJob[], options: TranscodeOptions): Promise<void> {
  const perChunk = validateInteger(options.numClipsPerChunk ?? clipsPerChunk(info.width, info.height), 'options.numClipsPerChunk', 1);
  const parallel = validateInteger(options.encodeBatchSize ?? 1, 'options.encodeBatchSize', 1);
  validateInteger(options.threads, 'options.encoderThreads', 1);
  const perClip = options.mode === 'per-clip';
  const chunks: ClipJob[][] = [];
  const size = perClip ? 1 : perChunk;
  for (let i = 0; i < jobs.length; i += size) chunks.push(jobs.slice(i, i + size));
  let next = 0;
  let firstError: unknown = null;
  const asError = (j: ClipJob, e: unknown) =>
    e instanceof ClipstreamError ? e : new ClipstreamError('ERR_ENCODE', String((e as Error)?.message ?? e), { cause: e, where: { key: j.clip.clipId } });
  // A clip whose finishing step fails (its audio) costs that clip, not its chunk.
  const finish = async (chunk: readonly ClipJob[]) => {
    for (const j of chunk) {
      try {
        await options.onClipDone?.(j);
      } catch (err) {
        if (options.signal?.aborted || !options.onClipFailed) throw err;
        await options.onClipFailed(j, asError(j, err));
      }
    }
  };
  const worker = async () => {
    while (next < chunks.length && firstError === null) {
      const chunk = chunks[next++]!;
      try {
        try {
          await runChunk(info, videoId, chunk, options, perClip);
        } catch (err) {
          if (options.signal?.aborted || !options.onClipFailed) throw err;
          // Which clip broke the chunk? Each alone: the good ones are kept, the bad one is named.
          for (const j of chunk) {
            try {
              if (chunk.length === 1) throw err;
              await runChunk(info, videoId, [j], options, perClip);
              await finish([j]);
            } catch (one) {
              if (options.signal?.aborted) throw one;
              await options.onClipFailed(j, asError(j, one));
            }
          }
          continue;
        }
        await finish(chunk);
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, chunks.length) }, worker));
  if (firstError !== null) throw firstError;
}
