/**
 * Writers of one segment's output: an mp4 encoded by a streaming ffmpeg (frames in through a
 * pipe, so memory is one frame), or PNG files. Both appear whole or not at all: the mp4 is
 * written under a temporary name and renamed, each PNG through writeFileAtomic.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { encoderArgs, type EncodeSettings } from '../clips/encoders.js';
import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { spawnTool, stderrTail, writeToChild, type StreamingTool } from '../media/process.js';
import { tempPathFor, writeFileAtomic } from '../util/atomic.js';
import { rawRgbInputArgs } from '../media/raw-video.js';

export interface FrameSink {
  write(frame: Uint8Array): Promise<void>;
  /** Makes the output final; returns the files written. */
  finish(): Promise<string[]>;
  /** Drops everything written (on failure). */
  abort(): Promise<void>;
}

/**
 * Encodes RGB24 frames at the constant `rate` (the source's average frame rate) into `out`.
 * `-fflags +bitexact` and no metadata: the same frames give the same bytes, so a resumed run
 * equals an uninterrupted one.
 *
 * @example const sink = await mp4Sink('out/seg_000001.mp4', 160, 120, '25/1', { encoder: 'libx264', threads: 2, crf: 18 });
 */
export async function mp4Sink(out: string, width: number, height: number, rate: string, settings: EncodeSettings, signal?: AbortSignal): Promise<FrameSink> {
  await mkdir(dirname(out), { recursive: true });
  const tmp = tempPathFor(out);
  const args = [
    '-hide_banner',
    '-nostdin',
    '-nostats',
    '-v',
    'error',
    '-y',
    ...rawRgbInputArgs(width, height, rate),
    // 4:2:0 needs even sizes: an odd row/column is added by repeating the edge (PNG output keeps the exact size).
    ...(width % 2 || height % 2
      ? ['-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2,fillborders=mode=smear:right=1:bottom=1'.replace(/right=1:bottom=1/, `right=${width % 2}:bottom=${height % 2}`)]
      : []),
    ...encoderArgs(settings),
    '-an',
    '-map_metadata',
    '-1',
    '-fflags',
    '+bitexact',
    '-flags:v',
    '+bitexact',
    '-f',
    'mp4',
    tmp,
  ];
  const tool: StreamingTool = await spawnTool(ffmpegPath(), args, { stdin: true, signal, stallTimeoutMs: 300_000, where: { file: out } });
  tool.stdout.resume();
  const stdin = tool.stdin!;
  let failed: ClipstreamError | null = null;
  const check = async () => {
    const r = await tool.done;
    if (r.code !== 0)
      failed ??= new ClipstreamError('ERR_IO', `cannot encode ${out} (ffmpeg exit ${r.code ?? r.signal}): ${stderrTail(r.stderr)}`, { where: { file: out } });
  };
  return {
    async write(frame) {
      if (failed) throw failed;
      await writeToChild(stdin, frame);
      if (stdin.destroyed || stdin.writableEnded) {
        await check();
        if (failed) throw failed;
      }
    },
    async finish() {
      stdin.end();
      await check();
      if (failed) {
        await rm(tmp, { force: true });
        throw failed;
      }
      await rename(tmp, out);
      return [out];
    },
    async abort() {
      tool.kill();
      await tool.done;
      await rm(tmp, { force: true });
    },
  };
}

/** PNG file of frame `index` (the source frame number) in `dir`. */
export function pngPath(dir: string, index: number): string {
  return join(dir, `${String(index).padStart(6, '0')}.png`);
}

/** Writes frames `first, first+1, ...` as PNGs with `channels` channels (1 gray, 3 RGB, 4 RGBA). */
export function pngSink(dir: string, first: number, width: number, height: number, channels: 1 | 3 | 4): FrameSink {
  const written: string[] = [];
  return {
    async write(frame) {
      const path = pngPath(dir, first + written.length);
      // Fixed zlib settings, no metadata: the same frame always gives the same bytes.
      const img = sharp(frame, { raw: { width, height, channels } });
      // A one-channel frame stays a gray PNG (sharp would otherwise write RGB).
      const png = await (channels === 1 ? img.toColourspace('b-w') : img).png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
      await writeFileAtomic(path, png);
      written.push(path);
    },
    async finish() {
      return [...written];
    },
    async abort() {
      await Promise.all(written.map((p) => rm(p, { force: true })));
    },
  };
}
