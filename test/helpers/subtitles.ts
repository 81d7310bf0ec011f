import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { HAS_PHOTOS, PHOTOS_DIR } from './shared.js';

/**
 * Frames with burned-in subtitles, made with ffmpeg's drawtext (DejaVu Sans) over footage-like
 * backgrounds, and the subtitle's true rectangle: the same drawtext drawn alone on black, the
 * bounding box of its lit pixels (glyphs and their outline), so the truth comes from the recipe.
 */
export const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/** `mandelbrot` and `testsrc2` are lavfi sources; a photo is a file of ../shared/fixtures/photos (skip where !HAS_PHOTOS). */
export type Background = 'mandelbrot' | 'testsrc2' | { photo: string };

export interface Subtitle {
  text: string;
  fontsize: number;
  x: number;
  y: number;
}

export const HAS_PHOTO_BACKGROUNDS = HAS_PHOTOS;

function render(background: Background | 'black', width: number, height: number, vf: string[], pixFmt: 'rgb24' | 'gray'): Uint8Array {
  const input =
    background === 'black'
      ? ['-f', 'lavfi', '-i', `color=c=black:size=${width}x${height}`]
      : typeof background === 'string'
        ? ['-f', 'lavfi', '-i', `${background}=size=${width}x${height}`]
        : ['-i', join(PHOTOS_DIR, background.photo)];
  const filters = [...(typeof background === 'object' ? [`scale=${width}:${height}:flags=area`] : []), ...vf, `format=${pixFmt}`];
  const r = spawnSync(ffmpegPath(), ['-v', 'error', ...input, '-vf', filters.join(','), '-frames:v', '1', '-f', 'rawvideo', 'pipe:1'], {
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${String(r.stderr)}`);
  const out = new Uint8Array(r.stdout);
  const expected = width * height * (pixFmt === 'gray' ? 1 : 3);
  if (out.length !== expected) throw new Error(`ffmpeg gave ${out.length} bytes, expected ${expected}`);
  return out;
}

function drawtext(s: Subtitle): string {
  // White text with a black outline, as subtitles are burned in.
  const border = Math.max(1, Math.round(s.fontsize / 14));
  return `drawtext=fontfile=${FONT}:text='${s.text}':fontsize=${s.fontsize}:x=${s.x}:y=${s.y}:fontcolor=white:borderw=${border}:bordercolor=black`;
}

/** One RGB frame of `background` at `width` x `height`, with the subtitles burned in. */
export function subtitledFrame(background: Background, width: number, height: number, subtitles: Subtitle[] = []): Uint8Array {
  return render(background, width, height, subtitles.map(drawtext), 'rgb24');
}

/** The subtitle's true rectangle (inclusive pixel bounds) as drawtext draws it. */
export function subtitleRect(width: number, height: number, subtitle: Subtitle): { x0: number; y0: number; x1: number; y1: number } {
  const mask = render('black', width, height, [drawtext(subtitle)], 'gray');
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]! < 16) continue;
    const x = i % width;
    const y = (i - x) / width;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (x1 < 0) throw new Error(`drawtext drew nothing for ${JSON.stringify(subtitle)}`);
  return { x0, y0, x1, y1 };
}
