/**
 * The zoo's synthetic content, as lavfi graphs: what each frame and each audio sample is,
 * so the truth of every file follows from these parameters alone.
 *
 * Video: frame 0 is a flat `first` colour; every later frame is the flat BACKGROUND with a
 * 32×32 BOX at (3n mod (w-32), 2n mod (h-32)); the frames listed in `flashes` are all white.
 * Audio: silence with a 0.5-amplitude 1 kHz beep of BEEP_S at each flash time, on every channel.
 */

export type Rgb = [number, number, number];

export const BACKGROUND: Rgb = [32, 80, 128];
export const BOX: Rgb = [224, 192, 32];
export const BOX_SIZE = 32;
export const BEEP_HZ = 1000;
export const BEEP_S = 0.1;
export const BEEP_AMPLITUDE = 0.5;

export interface VideoPattern {
  width: number;
  height: number;
  /** Frame rate as num/den (the source's nominal rate). */
  rate: [number, number];
  frames: number;
  first: Rgb;
  flashes: number[];
}

const hex = (c: Rgb) => `0x${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
const rateText = (r: [number, number]) => (r[1] === 1 ? String(r[0]) : `${r[0]}/${r[1]}`);

/** A lavfi graph with one output (4:4:4 from the start: a 4:2:0 colour source rounds odd sizes down): the video pattern (bound it with `-frames:v`). */
export function videoGraph(p: VideoPattern): string {
  const seconds = ((p.frames + 2) * p.rate[1]) / p.rate[0];
  const size = `${p.width}x${p.height}`;
  const whiteAt = p.flashes.map((n) => `eq(n,${n})`).join('+') || '0';
  return [
    `color=c=${hex(BACKGROUND)}:s=${size}:r=${rateText(p.rate)}:d=${seconds.toFixed(3)},format=yuv444p[bg]`,
    `color=c=${hex(BOX)}:s=${BOX_SIZE}x${BOX_SIZE}:r=${rateText(p.rate)}:d=${seconds.toFixed(3)},format=yuv444p[box]`,
    `[bg][box]overlay=x='mod(3*n,W-w)':y='mod(2*n,H-h)':shortest=1,` +
      `drawbox=x=0:y=0:w=iw:h=ih:color=${hex(p.first)}:t=fill:enable='eq(n,0)',` +
      `drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='${whiteAt}'`,
  ].join(';');
}

/** Mean RGB of source frame n as drawn (the box is always fully inside the frame). */
export function frameColor(p: Pick<VideoPattern, 'width' | 'height' | 'first' | 'flashes'>, n: number): Rgb {
  if (p.flashes.includes(n)) return [255, 255, 255];
  if (n === 0) return [...p.first];
  const share = (BOX_SIZE * BOX_SIZE) / (p.width * p.height);
  return BACKGROUND.map((b, i) => Math.round(b + (BOX[i]! - b) * share)) as Rgb;
}

export interface AudioPattern {
  rate: number;
  /** An ffmpeg channel layout: mono, stereo, 5.1, ... */
  layout: string;
  seconds: number;
  /** Beep onsets in the audio stream's own time (s from its first sample). */
  beeps: number[];
}

export const LAYOUT_CHANNELS: Record<string, number> = { mono: 1, stereo: 2, '5.1': 6, '7.1': 8 };

/** A lavfi source for the audio pattern. */
export function audioSource(a: AudioPattern): string {
  const gate = a.beeps.map((t) => `between(t,${t.toFixed(6)},${(t + BEEP_S).toFixed(6)})`).join('+') || '0';
  return `aevalsrc='${BEEP_AMPLITUDE}*sin(2*PI*${BEEP_HZ}*t)*(${gate})':s=${a.rate}:c=${a.layout}:d=${a.seconds}`;
}
