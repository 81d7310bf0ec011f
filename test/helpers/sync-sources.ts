/**
 * Sources for the clips sync and frame tests: a dark test picture with a white flash every
 * 20 frames and a 1 kHz beep at each flash, with the streams starting apart, variable frame
 * rates, B-frames or odd sizes on demand. What a file really holds is read back by an
 * independent reader (scripts/media_truth.py, PyAV with its own libav*).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';

const run = promisify(execFile);
const TRUTH = fileURLToPath(new URL('../../scripts/media_truth.py', import.meta.url));

export interface FlashBeepSpec {
  seconds: number;
  fps?: number;
  size?: string;
  /** The audio stream starts this long after the video (`-itsoffset`). */
  audioDelayS?: number;
  /** The video stream starts this long after the audio. */
  videoDelayS?: number;
  /** 25, then 50, then 12.5 frames/s (frames picked from a 50 fps source by `select`). */
  vfr?: boolean;
  audio?: boolean;
  codec?: 'libx264' | 'mpeg4';
  pixFmt?: string;
  bframes?: number;
  /** Extra output options, e.g. `['-f', 'mpegts']`. */
  extra?: string[];
}

/** Flashes at frames 7, 27, 47, ... (VFR: at 0.4 s + 0.8 s k), each with a 40 ms beep. */
export async function makeFlashBeep(out: string, spec: FlashBeepSpec): Promise<void> {
  const fps = spec.vfr ? 50 : (spec.fps ?? 25);
  const size = spec.size ?? '160x120';
  const a = spec.audioDelayS ?? 0;
  const v = spec.videoDelayS ?? 0;
  const flashAt = spec.vfr ? 'eq(mod(n\\,40)\\,20)' : 'eq(mod(n\\,20)\\,7)';
  const keep = spec.vfr ? ",select='lt(n\\,50)*not(mod(n\\,2))+gte(n\\,50)*lt(n\\,100)+gte(n\\,100)*not(mod(n\\,4))'" : '';
  const video = `testsrc=size=${size}:rate=${fps}:duration=${spec.seconds},lutyuv=y=val/4,drawbox=c=white:t=fill:enable='${flashAt}'${keep}`;
  // The beep's phase in the audio's own clock: flash time on the shared timeline, minus the audio's start.
  const first = spec.vfr ? 0.4 : 7 / fps;
  const period = spec.vfr ? 0.8 : 20 / fps;
  const phase = (first + v - a + 100 * period).toFixed(6);
  const beep = `aevalsrc='0.8*sin(2*PI*1000*t)*lt(mod(t-${phase}+${(200 * period).toFixed(6)}\\,${period.toFixed(6)})\\,0.04)':s=48000:d=${spec.seconds + v - a}`;
  const args = ['-v', 'error', '-y'];
  if (v) args.push('-itsoffset', String(v));
  args.push('-f', 'lavfi', '-i', video);
  if (spec.audio !== false) {
    if (a) args.push('-itsoffset', String(a));
    args.push('-f', 'lavfi', '-i', beep, '-map', '0:v', '-map', '1:a', '-c:a', 'aac', '-b:a', '128k', '-ac', '1');
  }
  args.push('-vsync', '0', '-c:v', spec.codec ?? 'libx264');
  if ((spec.codec ?? 'libx264') === 'libx264') args.push('-preset', 'ultrafast', '-g', '37');
  else args.push('-q:v', '2', '-g', '37');
  if (spec.bframes) args.push('-bf', String(spec.bframes));
  args.push('-pix_fmt', spec.pixFmt ?? 'yuv420p', ...(spec.extra ?? []), out);
  await run(ffmpegPath(), args);
}

export interface MediaTruth {
  file: string;
  frames: number;
  t0: number;
  /** Seconds from the first frame. */
  times: number[];
  luma: number[];
  yhash: string[];
  flashes: number[];
  width: number;
  height: number;
  audio: { rate: number; start: number; duration: number; onsets: number[] } | null;
}

/** PyAV's view of each file (scripts/media_truth.py). */
export async function mediaTruth(...files: string[]): Promise<MediaTruth[]> {
  const { stdout } = await run('/usr/bin/python3', [TRUTH, ...files], { maxBuffer: 256 * 1024 * 1024 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as MediaTruth);
}

/**
 * For each flash of a clip, how far the nearest beep onset is from it (seconds, + = late).
 * A clip in sync gives values near what the source gives (0 for these sources).
 */
export function beepOffsets(t: MediaTruth): number[] {
  const onsets = t.audio?.onsets ?? [];
  return t.flashes.map((f) => {
    const at = t.times[f]!;
    let best = Infinity;
    for (const o of onsets) if (Math.abs(o - at) < Math.abs(best)) best = o - at;
    return best;
  });
}
