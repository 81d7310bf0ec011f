/**
 * The last two steps: join the segment videos with ffmpeg's concat demuxer (stream copy, no
 * re-encode), then put the source's audio back (`--audio=copy`) or not (`--audio=none`).
 * Both write through withAtomicFile, so the output appears whole or not at all.
 */
import { basename, join } from 'node:path';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { runToolOrThrow } from '../media/process.js';
import type { FrameTimeline } from '../media/probe.js';
import { withAtomicFile, writeFileAtomic } from '../util/atomic.js';

async function ffmpegTo(out: string, args: (tmp: string) => string[], what: string, signal?: AbortSignal): Promise<void> {
  await withAtomicFile(out, (tmp) => runToolOrThrow(ffmpegPath(), args(tmp), { what, code: 'ERR_IO', signal, stallTimeoutMs: 600_000, where: { file: out } }));
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

/** Audio codecs an mp4 takes as they are; others are re-encoded to AAC. */
const MP4_AUDIO = new Set(['aac', 'mp3', 'alac', 'ac3', 'eac3', 'opus', 'flac']);

/**
 * Muxes the joined video with the source's first audio stream. The audio keeps its offset
 * from the first video frame (e.g. audio starting 0.4 s after the video stays 0.4 s late):
 * ffmpeg shifts each input by its container start, so the source is shifted back by the gap
 * between container start and video start.
 *
 * @example await remuxAudio('out/a.segments/joined.mp4', timeline, 'copy', 'out/a.mp4');
 */
export async function remuxAudio(joined: string, t: FrameTimeline, audio: 'copy' | 'none', out: string, signal?: AbortSignal): Promise<void> {
  const withAudio = audio === 'copy' && t.audioStart !== null;
  const args = (tmp: string) => {
    const a = ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-i', joined];
    if (withAudio) {
      const shift = t.formatStart - t.videoStart;
      if (Math.abs(shift) > 1e-9) a.push('-itsoffset', shift.toFixed(6));
      a.push('-i', t.info.path, '-map', '0:v:0', '-map', '1:a:0', '-c:v', 'copy');
      a.push(...(MP4_AUDIO.has(t.info.audioCodec ?? '') ? ['-c:a', 'copy'] : ['-c:a', 'aac', '-b:a', '192k']));
    } else a.push('-map', '0:v:0', '-c', 'copy');
    a.push('-map_metadata', '-1', '-fflags', '+bitexact', '-movflags', '+faststart', '-f', 'mp4', tmp);
    return a;
  };
  await ffmpegTo(out, args, withAudio ? `muxing the audio of ${basename(t.info.path)}` : 'writing the output', signal);
}
