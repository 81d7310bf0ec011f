/**
 * Writers of one segment's output: an mp4 encoded by a streaming ffmpeg (frames in through a
 * pipe, so memory is one frame), or PNG files. Both appear whole or not at all: the mp4
 * through withAtomicFile, each PNG through writeFileAtomic.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { encoderArgs, type EncodeSettings } from '../media/encoders.js';
import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { streamTool, type ToolStream } from '../media/process.js';
import { withAtomicFile, writeFileAtomic } from '../util/atomic.js';
import { rawRgbInputArgs } from '../media/raw-video.js';

export interface FrameSink {
  write(frame: Uint8Array): Promise<void>;
  /** Makes the output final; returns the files written. */
  finish(): Promise<string[]>;
  /** Drops everything written (on failure). */
  abort(): Promise<void>;
}

/**
 * What an encode of a source's RGB frames must add so the output means what the source does
 * (media/facts.ts): `filters` convert RGB to YUV by the source's matrix and range and restore
 * its SAR; `tags` are its colour tags. Both empty for an untagged square-pixel source.
 */
export interface OutputMeaning {
  filters: string[];
  tags: string[];
}

/**
 * Encodes RGB24 frames at the constant `rate` (the source's average frame rate) into `out`.
 * `-fflags +bitexact` and no metadata: the same frames give the same bytes, so a resumed run
 * equals an uninterrupted one. ffmpeg writes a temporary name that becomes `out` (fsynced,
 * renamed: withAtomicFile) only once it exited 0.
 *
 * @example const sink = await mp4Sink('out/seg_000001.mp4', 160, 120, '25/1', { encoder: 'libx264', threads: 2, crf: 18 });
 */
export async function mp4Sink(
  out: string,
  width: number,
  height: number,
  rate: string,
  settings: EncodeSettings,
  signal?: AbortSignal,
  meaning: OutputMeaning = { filters: [], tags: [] },
): Promise<FrameSink> {
  const filters = [
    // 4:2:0 needs even sizes: an odd row/column is added by repeating the edge (PNG output keeps the exact size).
    ...(width % 2 || height % 2 ? [`pad=ceil(iw/2)*2:ceil(ih/2)*2,fillborders=mode=smear:right=${width % 2}:bottom=${height % 2}`] : []),
    ...meaning.filters,
  ];
  const args = (tmp: string) => [
    '-hide_banner',
    '-nostdin',
    '-nostats',
    '-v',
    'error',
    '-y',
    ...rawRgbInputArgs(width, height, rate),
    ...(filters.length ? ['-vf', filters.join(',')] : []),
    ...encoderArgs(settings),
    ...meaning.tags,
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
  let tool: ToolStream | null = null;
  let close: (keep: boolean) => void = () => {};
  const closed = new Promise<boolean>((resolve) => {
    close = resolve;
  });
  let started: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    started = resolve;
  });
  // The file is made inside withAtomicFile: `finish` lets ffmpeg end and the temp file become `out`, `abort` kills it and removes the temp file.
  const file = withAtomicFile(out, async (tmp) => {
    const t = streamTool(ffmpegPath(), args(tmp), {
      what: 'cannot encode',
      code: 'ERR_IO',
      stdin: true,
      stdout: 'ignore',
      signal,
      stallTimeoutMs: 300_000,
      where: { file: out },
    });
    tool = t;
    started();
    if (!(await closed)) {
      await t.kill();
      throw new ClipstreamError('ERR_PIPELINE', `${out}: encoding aborted`, { where: { file: out } });
    }
    await t.finish();
  });
  file.catch(() => {});
  await Promise.race([ready, file]);
  const enc = tool as ToolStream | null;
  if (!enc) throw new ClipstreamError('ERR_IO', `cannot encode ${out}: the encoder did not start`, { where: { file: out } });
  return {
    write: (frame) => enc.write(frame),
    async finish() {
      close(true);
      await file;
      return [out];
    },
    async abort() {
      close(false);
      await file.catch(() => {});
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
