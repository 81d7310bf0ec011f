/**
 * The last two steps: join the segment videos with ffmpeg's concat demuxer (stream copy, no
 * re-encode), then put the source's audio back (`--audio=copy`, as it is where the mp4 takes
 * it: see planAudio) or not (`--audio=none`).
 * Both write through withAtomicFile, so the output appears whole or not at all.
 */
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { runTool, runToolOrThrow, stderrTail, succeeded } from '../media/process.js';
import type { FrameTimeline } from '../media/probe.js';
import { withAtomicFile, writeFileAtomic } from '../util/atomic.js';

async function ffmpegTo(out: string, args: (tmp: string) => string[], what: string, signal?: AbortSignal): Promise<void> {
  await withAtomicFile(out, (tmp) =>
    runToolOrThrow(ffmpegPath(), args(tmp), { what, code: 'ERR_ENCODE', signal, stallTimeoutMs: 600_000, where: { file: out } }),
  );
}

/** Quotes a path for a concat list (`'` becomes `'\''`). */
const quote = (p: string) => `'${p.replace(/'/g, "'\\''")}'`;

/**
 * Writes `file_list.txt` (the seed's name) in `dir` for `files` (names inside `dir`) and joins
 * them into `out` by stream copy.
 *
 * @example await joinSegments('out/a.segments', ['seg_000000.mp4', 'seg_000001.mp4'], 'out/a.segments/joined.mp4');
 */
export async function joinSegments(dir: string, files: string[], out: string, signal?: AbortSignal): Promise<void> {
  const list = join(dir, 'file_list.txt');
  await writeFileAtomic(list, files.map((f) => `file ${quote(f)}\n`).join(''));
  await ffmpegTo(
    out,
    (tmp) => [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-y',
      '-f',
      'concat',
      '-safe',
      '0',
      '-i',
      list,
      '-map',
      '0:v:0',
      '-c',
      'copy',
      '-map_metadata',
      '-1',
      '-fflags',
      '+bitexact',
      '-f',
      'mp4',
      tmp,
    ],
    'joining segments',
    signal,
  );
}

/** Audio codecs that are lossless: one the mp4 output cannot take as it is becomes ALAC, never a lossy codec. */
const LOSSLESS = new Set(['flac', 'alac', 'wavpack', 'tta', 'truehd', 'mlp', 'ape']);
const isLossless = (codec: string) => codec.startsWith('pcm_') || LOSSLESS.has(codec);

/** How the source's audio goes into the mp4 output: as it is, or re-encoded (with the note that says so). */
export interface AudioPlan {
  codec: string;
  mode: 'copy' | 'alac' | 'aac';
  /** Why the audio is re-encoded (null when copied). */
  note: string | null;
}

const audioCodecArgs = (mode: AudioPlan['mode']) => (mode === 'copy' ? ['-c:a', 'copy'] : mode === 'alac' ? ['-c:a', 'alac'] : ['-c:a', 'aac', '-b:a', '192k']);

/**
 * Decides, before any frame is inferred, how the source's first audio stream goes into the mp4
 * output, by muxing its first second into a scratch mp4 in `workDir`: as it is when this
 * ffmpeg's mp4 muxer takes it (AAC, MP3, AC-3, Opus; FLAC from ffmpeg 6 on), else re-encoded:
 * lossless audio (FLAC with ffmpeg 5, PCM) to ALAC, lossy audio (Vorbis, ...) to AAC 192 kbit/s,
 * with a note naming the file. Throws, naming the file, when not even that works (the video is
 * then refused before inference, and `--audio=none` is the way out). Null when the source has no audio.
 *
 * @example const plan = await planAudio(timeline, 'out/a.segments'); // { codec: 'opus', mode: 'copy', note: null }
 */
export async function planAudio(t: FrameTimeline, workDir: string, signal?: AbortSignal): Promise<AudioPlan | null> {
  if (t.audioStart === null) return null;
  const path = t.info.path;
  const codec = t.info.audioCodec ?? 'unknown';
  const scratch = join(workDir, 'audio-check.mp4');
  const trial = async (mode: AudioPlan['mode']) => {
    const args = ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-t', '1', '-i', path, '-map', '0:a:0', ...audioCodecArgs(mode), '-f', 'mp4', scratch];
    try {
      const r = await runTool(ffmpegPath(), args, { signal, timeoutMs: 120_000, where: { file: path } });
      return succeeded(r) ? null : stderrTail(r.stderr, 1) || `ffmpeg exited with ${r.code ?? r.signal}`;
    } finally {
      await rm(scratch, { force: true });
    }
  };
  const refused = await trial('copy');
  if (refused === null) return { codec, mode: 'copy', note: null };
  const mode = isLossless(codec) ? 'alac' : 'aac';
  const again = await trial(mode);
  if (again !== null)
    throw new ClipstreamError(
      'ERR_ENCODE',
      `${path}: its ${codec} audio cannot go into the mp4 output (${refused}), nor as ${mode.toUpperCase()} (${again}); use --audio=none`,
      {
        where: { file: path },
      },
    );
  const as = mode === 'alac' ? 'ALAC (lossless)' : 'AAC 192 kbit/s';
  return { codec, mode, note: `${path}: its ${codec} audio cannot go into the mp4 output as it is with this ffmpeg (${refused}); it is re-encoded to ${as}` };
}

/**
 * Muxes the joined video with the source's first audio stream, as `plan` says (planAudio's
 * answer when not given). The audio keeps its offset from the first video frame (e.g. audio
 * starting 0.4 s after the video stays 0.4 s late): ffmpeg shifts each input by its container
 * start, so the source is shifted back by the gap between container start and video start.
 *
 * @example await remuxAudio('out/a.segments/joined.mp4', timeline, 'copy', 'out/a.mp4');
 */
export async function remuxAudio(
  joined: string,
  t: FrameTimeline,
  audio: 'copy' | 'none',
  out: string,
  signal?: AbortSignal,
  plan?: AudioPlan | null,
): Promise<void> {
  const a = audio === 'copy' ? (plan === undefined ? await planAudio(t, dirname(joined), signal) : plan) : null;
  const args = (tmp: string) => {
    const args = ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-i', joined];
    if (a) {
      const shift = t.formatStart - t.videoStart;
      if (Math.abs(shift) > 1e-9) args.push('-itsoffset', shift.toFixed(6));
      args.push('-i', t.info.path, '-map', '0:v:0', '-map', '1:a:0', '-c:v', 'copy', ...audioCodecArgs(a.mode));
    } else args.push('-map', '0:v:0', '-c', 'copy');
    args.push('-map_metadata', '-1', '-fflags', '+bitexact', '-movflags', '+faststart', '-f', 'mp4', tmp);
    return args;
  };
  await ffmpegTo(out, args, a ? `muxing the audio of ${basename(t.info.path)}` : 'writing the output', signal);
}
