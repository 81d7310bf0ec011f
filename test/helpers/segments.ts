/** Independent checks for the segments tests: ffprobe counts, whole-file decodes, PNG and audio reads. */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { runTool } from '../../src/media/process.js';

export interface ProbedStream {
  codec_type: string;
  width?: number;
  height?: number;
  start_time?: string;
  duration?: string;
  nb_read_frames?: string;
}

/** ffprobe with -count_frames (frames decoded, not read from the header). */
export async function probeCounted(path: string): Promise<{ video: ProbedStream; audio: ProbedStream | null; format: { duration?: string } }> {
  const r = await runTool(
    ffprobePath(),
    ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,width,height,start_time,duration,nb_read_frames:format=duration', '-of', 'json', path],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`ffprobe ${path}: ${r.code ?? r.signal} ${r.stderr}`);
  const j = JSON.parse(r.stdout.toString('utf8')) as { streams: ProbedStream[]; format: { duration?: string } };
  return { video: j.streams.find((s) => s.codec_type === 'video')!, audio: j.streams.find((s) => s.codec_type === 'audio') ?? null, format: j.format };
}

/** Every frame of a video decoded from the start by ffmpeg (no seek), RGB24. */
export async function decodeAll(path: string, width: number, height: number): Promise<Uint8Array[]> {
  const r = await runTool(ffmpegPath(), ['-v', 'error', '-i', path, '-map', '0:v:0', '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    timeoutMs: 120_000,
  });
  if (r.code !== 0) throw new Error(`decode ${path}: ${r.stderr}`);
  const n = width * height * 3;
  return Array.from({ length: r.stdout.length / n }, (_, i) => new Uint8Array(r.stdout.subarray(i * n, (i + 1) * n)));
}

/** Raw pixels of a PNG. */
export async function readPng(file: string | Buffer): Promise<{ data: Uint8Array; channels: number; width: number; height: number }> {
  const buf = typeof file === 'string' ? await readFile(file) : file;
  // sharp hands gray images back as RGB unless told to keep one channel.
  const gray = (await sharp(buf).metadata()).channels === 1;
  const img = sharp(buf);
  const { data, info } = await (gray ? img.toColourspace('b-w') : img).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), channels: info.channels, width: info.width, height: info.height };
}

/** The first audio stream as mono float samples at `rate` Hz, from the file's own start (offsets kept). */
export async function decodeAudio(path: string, rate = 8000): Promise<Float32Array> {
  const r = await runTool(
    ffmpegPath(),
    ['-v', 'error', '-i', path, '-map', '0:a:0', '-af', 'aresample=async=1:first_pts=0', '-ac', '1', '-ar', String(rate), '-f', 'f32le', 'pipe:1'],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`audio ${path}: ${r.stderr}`);
  return new Float32Array(r.stdout.buffer.slice(r.stdout.byteOffset, r.stdout.byteOffset + r.stdout.length));
}

/** Start times (s) of bursts louder than `level` after at least `gap` s of quiet. */
export function onsets(samples: Float32Array, rate: number, level = 0.2, gap = 0.2): number[] {
  const out: number[] = [];
  let lastLoud = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i]!) < level) continue;
    const t = i / rate;
    if (t - lastLoud > gap) out.push(t);
    lastLoud = t;
  }
  return out;
}
