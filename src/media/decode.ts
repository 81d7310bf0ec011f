import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipstreamError, type Where } from '../errors.js';
import type { DecodedAudio, DecodedVideo } from '../types.js';
import { validateInteger, validateNumber, validateOneOf, validateBoolean } from '../util/validate.js';
import { ffmpegPath } from './ffmpeg-path.js';
import { mp4DisplayMatrix, mp4VideoFacts, pipeLayout, predictFrameCount } from './mp4.js';
import { PickedFrames } from './picked-frames.js';
import { runTool, stderrTail, type RunOptions, type ToolResult } from './process.js';
import { linspaceIndices } from './sampling.js';

export interface DecodeOptions {
  /** Seconds decoded from the start of each clip (ACAV100M: 10). */
  windowSeconds?: number;
  /** Frames kept, spread evenly over the decoded window (ACAV100M: 32). */
  numFrames?: number;
  /** Short side after scaling, and the side of the square crop (ACAV100M: 256). */
  size?: number;
  /** Crop position: ACAV100M's spatial index 0 (`top-left`) or 1 (`center`). */
  crop?: 'top-left' | 'center';
  /** Decode the video stream (default true). */
  video?: boolean;
  /** Decode the audio stream, mixed to mono (default true). A clip without audio gets `audio: null`. */
  audio?: boolean;
  /** Audio sample rate after resampling (VGGish: 16000). */
  sampleRate?: number;
  /** Clips shorter than this are skipped and reported (ACAV100M: a quarter of the window, 2.5 s). */
  minDurationSeconds?: number;
  /** Decoder threads per ffmpeg process. */
  threads?: number;
  /** Kill an ffmpeg that produced no output for this long. */
  stallTimeoutMs?: number;
  /** Kill an ffmpeg that runs longer than this. */
  timeoutMs?: number;
  /** Binary to run (default: FFMPEG_PATH or the bundled one). */
  ffmpeg?: string;
  /**
   * `exact` (default): frames converted to RGB by ffmpeg at the source size, then scaled in JS
   * exactly as torch's bilinear `F.interpolate(align_corners=False)` (the reference recipe).
   * `fast`: ffmpeg's own bilinear scaler on the YUV frames (cheaper, up to ~1-2 levels off on
   * average and much more at sharp edges).
   */
  resize?: 'exact' | 'fast';
  /**
   * YUV -> RGB matrix. `bt601` (default): BT.601 whatever the file declares, as the PyAV
   * reference (scripts/decode_reference.py), ACAV100M and torchvision convert; features meant to
   * match theirs need it. `source`: the matrix the file declares (BT.709 for most HD video;
   * BT.601 when untagged), the colorimetrically right conversion. The range (limited or full)
   * follows the file in both, as in the reference.
   */
  colorMatrix?: 'bt601' | 'source';
}

export type ResolvedDecodeOptions = Required<DecodeOptions>;

export function resolveDecodeOptions(options: DecodeOptions = {}, prefix = 'options'): ResolvedDecodeOptions {
  const o = {
    windowSeconds: options.windowSeconds ?? 10,
    numFrames: options.numFrames ?? 32,
    size: options.size ?? 256,
    crop: options.crop ?? 'top-left',
    video: options.video ?? true,
    audio: options.audio ?? true,
    sampleRate: options.sampleRate ?? 16000,
    minDurationSeconds: options.minDurationSeconds ?? (options.windowSeconds ?? 10) / 4,
    threads: options.threads ?? 1,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    timeoutMs: options.timeoutMs ?? 300_000,
    ffmpeg: options.ffmpeg ?? ffmpegPath(),
    resize: options.resize ?? 'exact',
    colorMatrix: options.colorMatrix ?? 'bt601',
  };
  validateNumber(o.windowSeconds, `${prefix}.windowSeconds`, 0.1, 3600);
  validateInteger(o.numFrames, `${prefix}.numFrames`, 1, 1024);
  validateInteger(o.size, `${prefix}.size`, 8, 4096);
  validateOneOf(o.crop, `${prefix}.crop`, ['top-left', 'center'] as const);
  validateBoolean(o.video, `${prefix}.video`);
  validateBoolean(o.audio, `${prefix}.audio`);
  validateInteger(o.sampleRate, `${prefix}.sampleRate`, 1000, 192000);
  validateNumber(o.minDurationSeconds, `${prefix}.minDurationSeconds`, 0, 3600);
  validateInteger(o.threads, `${prefix}.threads`, 0, 64);
  validateInteger(o.stallTimeoutMs, `${prefix}.stallTimeoutMs`, 1, 86_400_000);
  validateInteger(o.timeoutMs, `${prefix}.timeoutMs`, 1, 86_400_000);
  validateOneOf(o.resize, `${prefix}.resize`, ['exact', 'fast'] as const);
  validateOneOf(o.colorMatrix, `${prefix}.colorMatrix`, ['bt601', 'source'] as const);
  return o;
}

export interface DecodedClip {
  video: DecodedVideo | null;
  audio: DecodedAudio | null;
  /** Container duration when ffmpeg knows it, else what was decoded. */
  durationSeconds: number;
  fps: number | null;
  sourceWidth: number | null;
  sourceHeight: number | null;
}

/**
 * ffmpeg filter: short side to `size` (floor on the long side, as SlowFast), then the square
 * crop, in RGB: the one scaler resizes and converts (ffmpeg negotiates rgb24 for its output), so
 * the matrix is set on it (see rgbFilter).
 */
export function videoFilter(size: number, crop: 'top-left' | 'center', colorMatrix: 'bt601' | 'source' = 'bt601'): string {
  const matrix = colorMatrix === 'bt601' ? ':in_color_matrix=bt601' : '';
  const scale =
    `${colorMatrix === 'bt601' ? `${REFERENCE_RANGE},` : ''}scale=w='if(lt(iw\\,ih)\\,${size}\\,floor(iw/ih*${size}))':` +
    `h='if(lt(iw\\,ih)\\,floor(ih/iw*${size})\\,${size})':flags=bilinear${matrix}`;
  const cropXY = crop === 'center' ? `x='ceil((iw-${size})/2)':y='ceil((ih-${size})/2)'` : 'x=0:y=0';
  return `${scale},crop=${size}:${size}:${cropXY},format=rgb24`;
}

/**
 * The range as the PyAV reference takes it: from the pixel format alone (yuvj* full, the rest
 * TV range), whatever the frame's range tag says. A full-range VP9 or AV1 stream decodes to
 * yuv420p tagged full: PyAV converts it as TV range (18 levels from a by-the-tag conversion),
 * while an H.264 one decodes to yuvj420p, full for both. Clearing the tag gives swscale's own
 * default, which is that rule.
 */
const REFERENCE_RANGE = 'setparams=range=unknown';

/**
 * The conversion to packed RGB. ffmpeg's scaler takes the input matrix from the frame's tag
 * (`in_color_matrix=auto`): a BT.709-tagged clip would be converted by BT.709, up to ~40 levels
 * from the BT.601 of the reference. For untagged input both give the same bytes. The range is
 * the reference's (REFERENCE_RANGE); with `source`, the tag's. The scaler's flags are PyAV's
 * (bilinear): 8-bit 4:2:0 takes swscale's unscaled converter, which ignores them, but 10-bit
 * input upsamples its chroma by them (the default bicubic was up to ~100 levels off at edges).
 */
export function rgbFilter(colorMatrix: 'bt601' | 'source'): string {
  return colorMatrix === 'bt601' ? `${REFERENCE_RANGE},scale=in_color_matrix=bt601:flags=bilinear,format=rgb24` : 'scale=flags=bilinear,format=rgb24';
}

/**
 * Audio as VGGish / ACAV100M take it: each channel resampled to `sampleRate` by ffmpeg, all
 * channels kept (a WAV header says how many); the plain mean of all N channels is taken in
 * JS (monoFromWav). ffmpeg's own mono (`-ac 1`, or a stereo downmix first) weights channels
 * by 1/√2 or by a surround matrix: a mono tone would come out 3 dB low.
 */
export function audioFilter(sampleRate: number): string {
  return `aresample=${sampleRate}`;
}

/**
 * The plain mean of all channels of a float32 WAV as ffmpeg writes it to a pipe (sizes in
 * the header may be placeholders, so the data chunk runs to the end of the bytes).
 */
export function monoFromWav(bytes: Buffer, name: string, where: Where): Float32Array {
  if (bytes.length === 0) return new Float32Array(0);
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw new ClipstreamError('ERR_DECODE', `${name}: ffmpeg's audio output is not a WAV stream`, { where });
  }
  let pos = 12;
  let channels = 0;
  while (pos + 8 <= bytes.length) {
    const id = bytes.toString('latin1', pos, pos + 4);
    const size = bytes.readUInt32LE(pos + 4);
    if (id === 'fmt ' && pos + 12 <= bytes.length) channels = bytes.readUInt16LE(pos + 10);
    if (id === 'data') {
      if (channels === 0) break;
      const data = bytes.subarray(pos + 8);
      const n = Math.floor(data.length / (4 * channels));
      // One copy into an aligned array (the data chunk may start at any offset of the pipe's buffer).
      const all = new Float32Array(n * channels);
      new Uint8Array(all.buffer).set(data.subarray(0, n * channels * 4));
      if (channels === 1) return all;
      const out = new Float32Array(n);
      for (let i = 0, at = 0; i < n; i++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += all[at++]!;
        out[i] = sum / channels;
      }
      return out;
    }
    pos += 8 + size + (size & 1);
  }
  throw new ClipstreamError('ERR_DECODE', `${name}: ffmpeg's audio output has no ${channels === 0 ? 'format' : 'data'} chunk`, { where });
}

function parseInfo(stderr: string): { duration: number | null; fps: number | null; width: number | null; height: number | null } {
  const d = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  const duration = d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : null;
  const videoLine = /Stream #0:\d+[^\n]*: Video: [^\n]*/.exec(stderr)?.[0] ?? '';
  const fpsMatch = /([\d.]+) (?:fps|tbr)/.exec(videoLine);
  const sizeMatch = /, (\d{1,5})x(\d{1,5})[ ,]/.exec(videoLine);
  return {
    duration,
    fps: fpsMatch ? Number(fpsMatch[1]) : null,
    width: sizeMatch ? Number(sizeMatch[1]) : null,
    height: sizeMatch ? Number(sizeMatch[2]) : null,
  };
}

/**
 * The part of the RGB frame the exact resize reads, cut by ffmpeg before the pipe: along the
 * long side, the source pixels under the square crop and 4 more (the two taps of the bilinear
 * and rounding need 2); the short side whole. It saves the pipe 23 % of a 4:3 frame's bytes and
 * 43 % of a 16:9 one's (320x240, 640x360 to 256). At the origin for `top-left`, centred (rounded
 * down) for `center`: resize.ts, windowAt, puts it where ffmpeg did from the sizes ffmpeg logs
 * (PickedFrames).
 */
export function resizeWindowFilter(size: number, crop: 'top-left' | 'center'): string {
  const w = `if(gte(iw\\,ih)\\,min(iw\\,ceil(${size}*iw/floor(iw/ih*${size}))+4)\\,iw)`;
  const h = `if(lt(iw\\,ih)\\,min(ih\\,ceil(${size}*ih/floor(ih/iw*${size}))+4)\\,ih)`;
  const at = crop === 'center' ? "x='floor((iw-ow)/2)':y='floor((ih-oh)/2)'" : 'x=0:y=0';
  return `crop=w='${w}':h='${h}':${at}`;
}

/**
 * ffmpeg's autorotation (what its CLI inserts for a display matrix, as in 5.1 and later) as
 * filters that only move pixels, to run after the RGB conversion: the reference converts the
 * stored frame, then turns it. Turning 4:2:0 first moves where the chroma samples sit, and
 * 10-bit chroma is interpolated by that siting: edges came out up to ~110 levels from the
 * reference (defect 9). [] when the matrix turns nothing; null when ffmpeg would rotate by an
 * angle that is not a quarter turn (its `rotate` filter interpolates: autorotation is left on).
 *
 * @example orientFilters([0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30]) // ['transpose=clock']
 */
export function orientFilters(m: readonly number[]): string[] | null {
  const fp = (v: number) => v / 65536;
  const s0 = Math.hypot(fp(m[0]!), fp(m[3]!));
  const s1 = Math.hypot(fp(m[1]!), fp(m[4]!));
  if (s0 === 0 || s1 === 0) return null;
  // fftools' get_rotation: the clockwise angle, rounded, in [0, 360).
  let theta = -Math.round(-((Math.atan2(fp(m[1]!) / s1, fp(m[0]!) / s0) * 180) / Math.PI));
  theta -= 360 * Math.floor(theta / 360 + 0.9 / 360);
  if (Math.abs(theta - 90) < 1) return [`transpose=${m[3]! > 0 ? 'cclock_flip' : 'clock'}`];
  if (Math.abs(theta - 180) < 1) return [...(m[0]! < 0 ? ['hflip'] : []), ...(m[4]! < 0 ? ['vflip'] : [])];
  if (Math.abs(theta - 270) < 1) return [`transpose=${m[3]! < 0 ? 'clock_flip' : 'cclock'}`];
  if (Math.abs(theta) > 1) return null;
  return m[4]! < 0 ? ['vflip'] : [];
}

/** Where decodeArgs reads and writes; the defaults are the pipes decodeClip uses. */
export interface DecodeIo {
  input: string;
  video: string;
  audio: string;
}

/**
 * The ffmpeg arguments of one clip decode. Exported so that the bench can run the very same
 * decode with other outputs (e.g. `/dev/null`) as the baseline of the decode stage.
 * With `picks` only those frames (distinct indices) are converted and piped; in `exact` mode
 * they come at the source size in RGB, for FrameResizer.
 */
export function decodeArgs(
  options: ResolvedDecodeOptions,
  withAudio: boolean,
  io: DecodeIo = { input: 'pipe:0', video: 'pipe:1', audio: 'pipe:3' },
  picks: number[] | null = null,
  orient: readonly string[] | null = null,
): string[] {
  // With `orient` (see orientFilters) the frames are turned after the RGB conversion, not before.
  const exactOrient = options.resize === 'exact' && orient !== null;
  const args = [
    '-hide_banner',
    '-nostats',
    '-loglevel',
    picks ? 'verbose' : 'info',
    '-threads',
    String(options.threads),
    '-t',
    String(options.windowSeconds),
    ...(exactOrient ? ['-noautorotate'] : []),
    '-i',
    io.input,
  ];
  const spatial =
    options.resize === 'exact'
      ? [rgbFilter(options.colorMatrix), ...(exactOrient ? orient : []), resizeWindowFilter(options.size, options.crop)].join(',')
      : videoFilter(options.size, options.crop, options.colorMatrix);
  if (options.video && picks) {
    // Only the kept frames are scaled, cropped, converted and piped; a second branch counts the
    // frames of the window so that the caller can check the picks were made from the right total.
    const select = [...new Set(picks)].map((i) => `eq(n\\,${i})`).join('+');
    args.push(
      '-filter_complex',
      `[0:v:0]trim=end=${options.windowSeconds},split=2[keep][count];[keep]select='${select}',${spatial}[v];[count]null[n]`,
      '-vsync',
      '0',
      '-map',
      '[v]',
      '-pix_fmt',
      'rgb24',
      '-f',
      'rawvideo',
      io.video,
      '-map',
      '[n]',
      '-f',
      'null',
      '-',
    );
  } else if (options.video) {
    args.push('-map', '0:v:0', '-vf', spatial, '-pix_fmt', 'rgb24', '-f', 'rawvideo', io.video);
  }
  if (withAudio) {
    args.push('-map', '0:a:0', '-af', audioFilter(options.sampleRate), '-c:a', 'pcm_f32le', '-bitexact', '-f', 'wav', io.audio);
  }
  return args;
}

/** Arguments of a pass that only counts the frames of the window (when no index predicts them). */
function countArgs(options: ResolvedDecodeOptions, input: string): string[] {
  return [
    '-hide_banner',
    '-nostats',
    '-loglevel',
    'verbose',
    '-threads',
    String(options.threads),
    '-t',
    String(options.windowSeconds),
    '-i',
    input,
    '-filter_complex',
    `[0:v:0]trim=end=${options.windowSeconds}[n]`,
    '-vsync',
    '0',
    '-map',
    '[n]',
    '-f',
    'null',
    '-',
  ];
}

/** Frames the counting branch (output `index`) saw (ffmpeg's verbose end-of-run summary). */
function countedFrames(stderr: string, index = 1): number | null {
  const m = new RegExp(`Output stream #${index}:0 \\(video\\): (\\d+) frames encoded`).exec(stderr);
  return m ? Number(m[1]) : null;
}

/**
 * Decodes one clip held in memory: the first `windowSeconds`, `numFrames` frames spread
 * evenly over the decoded frames, scaled and cropped to `size`×`size` RGB, and the audio
 * mixed to mono at `sampleRate`. One ffmpeg process, fed through stdin, video on stdout and
 * audio on fd 3 — no temp files. When the container cannot predict the frame count (not an
 * mp4 whose moov or moof/trun index lists the video samples), an extra pass counts the frames
 * first: the exact resize needs the picks, as converting every frame at the source size would
 * hold hundreds of MB.
 *
 * @example
 * const clip = await decodeClip(await readFile('a_0.mp4'), resolveDecodeOptions());
 * clip.video?.frames.length // 32 * 256 * 256 * 3
 */
export async function decodeClip(data: Buffer, options: ResolvedDecodeOptions, where: Where = {}, signal?: AbortSignal): Promise<DecodedClip> {
  // ffmpeg's GIF demuxer seeks in its input: from a pipe it fails with an I/O error.
  const gif = data.length >= 6 && /^GIF8[79]a$/.test(data.toString('latin1', 0, 6));
  const layout = gif ? null : pipeLayout(data);
  if (layout?.kind === 'fast-start') return decodeFrom(layout.data, 'pipe:0', options, where, signal);
  // The moov cannot be moved in memory: ffmpeg reads a temp file it can seek in, removed after.
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-clip-'));
  try {
    const file = join(dir, gif ? 'clip.gif' : 'clip.mp4');
    await writeFile(file, data);
    return await decodeFrom(data, file, options, where, signal);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** decodeClip on bytes fed through stdin (`input` 'pipe:0') or on a file ffmpeg opens itself. */
async function decodeFrom(data: Buffer, input: string, options: ResolvedDecodeOptions, where: Where, signal?: AbortSignal): Promise<DecodedClip> {
  const io: DecodeIo = { input, video: 'pipe:1', audio: 'pipe:3' };
  const stdin = input === 'pipe:0' ? data : undefined;
  const tool = (args: string[], extraOutputs: number, more: Pick<RunOptions, 'stdoutSink' | 'onStderrLine'> = {}) =>
    runTool(options.ffmpeg, args, { input: stdin, extraOutputs, stallTimeoutMs: options.stallTimeoutMs, timeoutMs: options.timeoutMs, signal, where, ...more });
  const name = where.key ?? where.file ?? 'clip';
  const exact = options.video && options.resize === 'exact';
  // The exact resize turns an mp4/mov with a display matrix after the RGB conversion (orientFilters);
  // anything else keeps ffmpeg's autorotation (a rotation it finds elsewhere, e.g. in an H.264 SEI).
  const matrix = exact ? mp4DisplayMatrix(data) : null;
  const orient = matrix ? orientFilters(matrix) : null;
  // With the exact resize the picked frames are resized as their bytes arrive (PickedFrames);
  // each start of ffmpeg (a transient failure is retried) gets a fresh collector.
  const run = async (withAudio: boolean, picks: number[] | null = null): Promise<ToolResult & { picked?: PickedFrames }> => {
    if (!(exact && picks)) return tool(decodeArgs(options, withAudio, io, picks, orient), withAudio ? 1 : 0);
    let picked: PickedFrames | null = null;
    const result = await tool(decodeArgs(options, withAudio, io, picks, orient), withAudio ? 1 : 0, {
      stdoutSink: () => {
        picked = new PickedFrames(picks, options.size, options.crop);
        return picked.push;
      },
      onStderrLine: (line) => picked?.line(line) ?? false,
    });
    picked ??= new PickedFrames(picks, options.size, options.crop);
    picked.finish(result.stderr);
    picked.close();
    if (picked.failure) throw new ClipstreamError('ERR_DECODE', `${name}: ${picked.failure.message}`, { where, cause: picked.failure });
    return { ...result, picked };
  };
  const fail = (result: ToolResult): never => {
    if (result.killedBy) {
      const why = result.killedBy === 'stall' ? `produced no output for ${options.stallTimeoutMs} ms` : `ran longer than ${options.timeoutMs} ms`;
      throw new ClipstreamError('ERR_DECODE_TIMEOUT', `${name}: ffmpeg ${why} and was killed`, { where, transient: true });
    }
    if (/Stream map '0:v:0' matches no streams|Stream specifier ':v:0' in filtergraph description .* matches no streams/.test(result.stderr)) {
      throw new ClipstreamError('ERR_DECODE', `${name}: no video stream`, { where });
    }
    throw new ClipstreamError(
      'ERR_DECODE',
      `${name}: ffmpeg failed (exit ${result.code ?? result.signal}): ${stderrTail(result.stderr, 3, { skipBanner: true })}`,
      {
        where,
        transient: result.transient === true,
      },
    );
  };
  let withAudio = options.audio;
  // Frame selection inside ffmpeg when the container says how many frames the window holds.
  let total = options.video ? predictFrameCount(data, options.windowSeconds) : null;
  if (exact && total === null) {
    const counting = await tool(countArgs(options, input), 0);
    if (counting.code !== 0 || counting.killedBy) fail(counting);
    total = countedFrames(counting.stderr, 0);
    if (!total) throw new ClipstreamError('ERR_DECODE', `${name}: no video frame could be decoded`, { where });
  }
  const picksFor = (n: number | null) => (n !== null && n > 0 && (exact || n >= options.numFrames) ? linspaceIndices(n, options.numFrames) : null);
  let picks = picksFor(total);
  let result = await run(withAudio, picks);
  if (result.code !== 0 && withAudio && /Stream map '0:a:0' matches no streams/.test(result.stderr)) {
    withAudio = false; // a clip without sound gets audio: null, not an error
    if (!options.video)
      return { video: null, audio: null, durationSeconds: parseInfo(result.stderr).duration ?? 0, fps: null, sourceWidth: null, sourceHeight: null };
    result = await run(false, picks);
  }
  const picked = (r: ToolResult & { picked?: PickedFrames }, p: number[]) =>
    exact ? r.picked?.complete() === true : r.stdout.length === new Set(p).size * options.size * options.size * 3;
  let decodedFrames: number | null = null;
  if (picks && result.code === 0 && !result.killedBy) {
    const counted = countedFrames(result.stderr);
    if (counted !== null && counted === total && picked(result, picks)) {
      decodedFrames = counted;
    } else if (exact && counted) {
      // The index was wrong (a header that lies): pick again from the frames really decoded.
      picks = picksFor(counted);
      result = await run(withAudio, picks);
      if (result.code === 0 && !result.killedBy && countedFrames(result.stderr) === counted && picked(result, picks!)) decodedFrames = counted;
      else if (result.code === 0 && !result.killedBy)
        throw new ClipstreamError('ERR_DECODE', `${name}: ffmpeg decoded a different number of frames on each pass`, { where });
    } else if (!exact) {
      // The prediction was wrong (or unverifiable): decode again the way that needs no prediction.
      picks = null;
      result = await run(withAudio, null);
    } else {
      throw new ClipstreamError('ERR_DECODE', `${name}: no video frame could be decoded`, { where });
    }
  }
  if (result.code !== 0 || result.killedBy) fail(result);

  const info = parseInfo(result.stderr);
  let video: DecodedVideo | null = null;
  if (options.video) {
    const frameBytes = options.size * options.size * 3;
    if (exact && decodedFrames !== null) {
      // ffmpeg picked the frames and converted them to RGB at the source size; PickedFrames scaled and cropped them.
      video = { frames: result.picked!.frames, numFrames: options.numFrames, height: options.size, width: options.size, decodedFrames };
    } else if (decodedFrames !== null) {
      // ffmpeg already picked, scaled and cropped the frames: stdout is the clip, used without a copy.
      video = { frames: result.stdout, numFrames: options.numFrames, height: options.size, width: options.size, decodedFrames };
    } else {
      // Only the fast resize gets here: ffmpeg was told to write size×size RGB frames (scale and
      // crop), so that is the only size its bytes may be cut at. The exact resize always has picks.
      if (exact) throw new ClipstreamError('ERR_DECODE', `${name}: no frame picks for the exact resize (a bug in clipstream)`, { where });
      if (result.stdout.length % frameBytes !== 0) {
        throw new ClipstreamError(
          'ERR_DECODE',
          `${name}: ffmpeg wrote ${result.stdout.length} bytes of video, not a whole number of ${options.size}×${options.size} RGB frames`,
          { where },
        );
      }
      const decoded = result.stdout.length / frameBytes;
      if (decoded === 0) throw new ClipstreamError('ERR_DECODE', `${name}: no video frame could be decoded`, { where });
      const frames = new Uint8Array(options.numFrames * frameBytes);
      linspaceIndices(decoded, options.numFrames).forEach((src, i) => {
        frames.set(result.stdout.subarray(src * frameBytes, (src + 1) * frameBytes), i * frameBytes);
      });
      video = { frames, numFrames: options.numFrames, height: options.size, width: options.size, decodedFrames: decoded };
    }
  }
  let audio: DecodedAudio | null = null;
  if (withAudio) audio = { pcm: monoFromWav(result.extra[0]!, name, where), sampleRate: options.sampleRate };
  const decodedSeconds = Math.max(video && info.fps ? video.decodedFrames / info.fps : 0, audio ? audio.pcm.length / audio.sampleRate : 0);
  // Through a pipe ffmpeg sees only the first fragment of a fragmented MP4 when it states the
  // duration (1 s fragments: "1.02 s"); the fragments' own index gives the whole file's.
  const fragments = mp4VideoFacts(data);
  const containerSeconds = fragments?.fragmented && fragments.samples > 0 ? fragments.durationSeconds : info.duration;
  let durationSeconds = containerSeconds ?? decodedSeconds;
  // Too short only when what was decoded says so too: a header that understates the length must not drop a clip.
  if (durationSeconds < options.minDurationSeconds) durationSeconds = Math.max(durationSeconds, decodedSeconds);
  if (durationSeconds < options.minDurationSeconds) {
    throw new ClipstreamError(
      'ERR_CLIP_TOO_SHORT',
      `${name}: clip is ${durationSeconds.toFixed(2)} s long, shorter than the minimum ${options.minDurationSeconds} s`,
      { where },
    );
  }
  return { video, audio, durationSeconds, fps: info.fps, sourceWidth: info.width, sourceHeight: info.height };
}
