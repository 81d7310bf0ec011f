/**
 * Frame conversions around the model: RGB24 bytes to the model's CHW float 0–1 input, and the
 * model's `fgr`/`pha` to the output frames RVM's converter offers (composite on a colour, alpha
 * matte, foreground), as RGB24 for the encoder or RGB/gray/RGBA for PNG files.
 */
import { channelTables, writePlanes } from '../infer/tensors.js';

export type OutputType = 'composite' | 'alpha' | 'foreground';
/** RVM's green, the seed's composite background. */
export const RVM_GREEN: readonly [number, number, number] = [0.47, 1, 0.6];

/** byte / 255 per channel: the same float32 values as dividing pixel by pixel. */
const UNIT = channelTables([0, 0, 0], [255, 255, 255]);

/** RGB24 HWC bytes → float32 CHW in 0–1 (what `src` takes). */
export function toModelInput(rgb: Uint8Array, width: number, height: number): Float32Array {
  const out = new Float32Array(3 * width * height);
  writePlanes(rgb, width, height, UNIT, out, 0, { planeSize: width * height });
  return out;
}

const byte = (v: number) => (v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255));

/**
 * One output frame. `channels` 3 gives RGB24 for the encoder (alpha as gray); for PNG, alpha is
 * 1 channel and the foreground 4 (RGBA with the matte as its alpha, as RVM writes PNGs).
 *
 * @example composeFrame('composite', rgb, fgr, pha, w, h, RVM_GREEN, 3)
 */
export function composeFrame(
  type: OutputType,
  rgb: Uint8Array,
  fgr: Float32Array | null,
  pha: Float32Array | null,
  width: number,
  height: number,
  background: readonly [number, number, number],
  channels: 1 | 3 | 4,
): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(plane * channels);
  const fg = (c: number, i: number) => (fgr ? fgr[c * plane + i]! : UNIT[0][rgb[i * 3 + c]!]!);
  for (let i = 0; i < plane; i++) {
    const a = pha ? Math.min(1, Math.max(0, pha[i]!)) : 1;
    if (type === 'alpha') {
      const v = byte(a);
      for (let c = 0; c < channels; c++) out[i * channels + c] = v;
    } else if (type === 'foreground') {
      for (let c = 0; c < 3; c++) out[i * channels + c] = byte(fg(c, i));
      if (channels === 4) out[i * 4 + 3] = byte(a);
    } else {
      for (let c = 0; c < 3; c++) out[i * channels + c] = byte(fg(c, i) * a + background[c]! * (1 - a));
    }
  }
  return out;
}

/** Channels of a PNG of each output type. */
export function pngChannels(type: OutputType): 1 | 3 | 4 {
  return type === 'alpha' ? 1 : type === 'foreground' ? 4 : 3;
}

/**
 * Parses `--background`: `green` (RVM's), `r,g,b` in 0–1 or 0–255, or `#rrggbb`.
 *
 * @example parseColour('#00ff00') // [0, 1, 0]
 */
export function parseColour(value: string): [number, number, number] | null {
  if (value === 'green') return [...RVM_GREEN];
  const hex = /^#?([0-9a-f]{6})$/i.exec(value);
  if (hex) return [0, 2, 4].map((i) => parseInt(hex[1]!.slice(i, i + 2), 16) / 255) as [number, number, number];
  const parts = value.split(',').map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) return null;
  const scale = parts.some((p) => p > 1) ? 255 : 1;
  if (parts.some((p) => p > scale)) return null;
  return parts.map((p) => p / scale) as [number, number, number];
}
