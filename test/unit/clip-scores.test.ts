import { describe, expect, it } from 'vitest';
import {
  FrameSplitter,
  laplacianVariance,
  parseScoreList,
  PIXEL_SCORES,
  PixelScorer,
  scoreSize,
  spacedFrames,
  TextAreaScorer,
  type ClipFrame,
} from '../../src/features/clip-scores.js';

const W = 8;
const H = 6;
function frame(index: number, px: (x: number, y: number) => [number, number, number]): ClipFrame {
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.set(px(x, y), (y * W + x) * 3);
  return { index, rgb, width: W, height: H };
}
const flat = (i: number, v: number) => frame(i, () => [v, v, v]);

describe('PixelScorer on frames whose scores follow from how they were made', () => {
  it('black frames: black 1, frozen 1, motion 0, brightness 0, sharpness 0, colorfulness 0', () => {
    const s = new PixelScorer();
    for (let i = 0; i < 4; i++) s.push(flat(i, 0));
    expect(s.finish()).toEqual({ motion: 0, black: 1, frozen: 1, sharpness: 0, brightness: 0, contrast: 0, colorfulness: 0 });
  });

  it('grey 0 then 255 alternating: motion 1 and no frozen frame; half the frames black; contrast 0', () => {
    const s = new PixelScorer(['motion', 'frozen', 'black', 'brightness', 'contrast']);
    for (let i = 0; i < 4; i++) s.push(flat(i, i % 2 ? 255 : 0));
    expect(s.finish()).toEqual({ motion: 1, black: 0.5, frozen: 0, brightness: 0.5, contrast: 0 });
  });

  it('a frame changing by 0.0012 (R + 1: 0.299 of a grey level) is not frozen; by 0.00045 (B + 1) it is', () => {
    const a = new PixelScorer(['frozen', 'motion']);
    [100, 101, 102].forEach((v, i) => a.push(flat(i, v)));
    expect(a.finish().frozen).toBe(0);
    const r = new PixelScorer(['frozen']);
    [100, 101].forEach((v, i) => r.push(frame(i, () => [v, 100, 100])));
    expect(r.finish().frozen).toBe(0);
    const b = new PixelScorer(['frozen']);
    [100, 101].forEach((v, i) => b.push(frame(i, () => [100, 100, v])));
    expect(b.finish().frozen).toBe(1);
  });

  it('a dark frame with bright detail is not black (std too high)', () => {
    const s = new PixelScorer(['black']);
    s.push(frame(0, (x, y) => ((x + y) % 4 === 0 ? [120, 120, 120] : [0, 0, 0])));
    expect(s.finish().black).toBe(0);
  });

  it('a column checkerboard of 0/255: contrast 0.5, brightness 0.5, Laplacian variance known', () => {
    const s = new PixelScorer(['contrast', 'brightness', 'sharpness']);
    s.push(frame(0, (x) => (x % 2 ? [255, 255, 255] : [0, 0, 0])));
    const r = s.finish();
    expect(r.contrast).toBeCloseTo(0.5, 6);
    expect(r.brightness).toBeCloseTo(0.5, 6);
    // Interior pixel: up and down are equal to it, left and right the other value: L = ±2·255, so the variance is (510)^2.
    expect(r.sharpness).toBeCloseTo(510 * 510, 0);
  });

  it('colorfulness of pure red: σ 0, μ = hypot(255, 127.5), so 0.3·285.1', () => {
    const s = new PixelScorer(['colorfulness']);
    s.push(frame(0, () => [255, 0, 0]));
    expect(s.finish().colorfulness).toBeCloseTo(0.3 * Math.hypot(255, 127.5), 5);
  });

  it('one frame: motion and frozen 0; no frames: an error', () => {
    const s = new PixelScorer(['motion', 'frozen']);
    s.push(flat(0, 50));
    expect(s.finish()).toEqual({ motion: 0, frozen: 0 });
    expect(() => new PixelScorer().finish()).toThrow(/no frames/);
  });

  it('a frame of the wrong byte length is refused', () => {
    expect(() => new PixelScorer().push({ index: 0, rgb: new Uint8Array(5), width: 2, height: 2 })).toThrow(/5 bytes where 2x2 RGB24 needs 12/);
  });

  it('laplacianVariance of a linear ramp is 0', () => {
    const y = Array.from({ length: 25 }, (_, i) => (i % 5) * 10 + Math.floor(i / 5) * 3);
    expect(laplacianVariance(y, 5, 5)).toBe(0);
  });
});

describe('helpers', () => {
  it('scoreSize keeps the aspect, even, at most 160 wide', () => {
    expect(scoreSize(1920, 1080)).toEqual({ width: 160, height: 90 });
    expect(scoreSize(333, 187)).toEqual({ width: 160, height: 90 });
    expect(scoreSize(64, 48)).toEqual({ width: 64, height: 48 });
    expect(scoreSize(720, 1280)).toEqual({ width: 160, height: 284 });
  });

  it('spacedFrames takes the middles of equal parts', () => {
    expect(spacedFrames(90, 3)).toEqual([15, 45, 75]);
    expect(spacedFrames(2, 3)).toEqual([0, 1]);
    expect(spacedFrames(0, 3)).toEqual([]);
  });

  it('parseScoreList: all, none, lists; an unknown name is named', () => {
    expect(parseScoreList(undefined)).toEqual([...PIXEL_SCORES]);
    expect(parseScoreList('all')).toContain('text_area');
    expect(parseScoreList('none')).toEqual([]);
    expect(parseScoreList(false)).toEqual([]);
    expect(parseScoreList('black, motion')).toEqual(['motion', 'black']);
    expect(() => parseScoreList('motion,blur', '--scores')).toThrow(/--scores: unknown score 'blur'/);
  });

  it('FrameSplitter cuts any chunking into whole frames and refuses a partial tail', async () => {
    const seen: number[] = [];
    const sp = new FrameSplitter(2, 1, (f) => {
      seen.push(f.index * 1000 + f.rgb[0]!);
    });
    const bytes = Uint8Array.from({ length: 18 }, (_, i) => i);
    await sp.write(bytes.subarray(0, 5));
    await sp.write(bytes.subarray(5, 6));
    await sp.write(bytes.subarray(6, 18));
    sp.end();
    expect(seen).toEqual([0, 1006, 2012]);
    await sp.write(new Uint8Array(1));
    expect(() => sp.end()).toThrow(/1 bytes of a partial 2x1 frame after frame 3/);
  });

  it('TextAreaScorer runs the detector on the spaced frames only and averages the area', async () => {
    const asked: number[] = [];
    const detector = {
      detect: async (rgb: Uint8Array) => {
        asked.push(rgb[0]!);
        return rgb[0]! > 0 ? [{ x: 0, y: 0, width: 4, height: 3 }] : [];
      },
    };
    const area = (boxes: readonly unknown[], w: number, h: number) =>
      (boxes as { width: number; height: number }[]).reduce((a, b) => a + (b.width * b.height) / (w * h), 0);
    const s = new TextAreaScorer(detector, area, 9, 3);
    for (let i = 0; i < 9; i++) s.push(flat(i, i === 4 ? 9 : 0));
    expect(await s.finish()).toEqual({ text_area: Math.round((0.25 / 3) * 1e6) / 1e6 });
    expect(asked).toEqual([0, 9, 0]);
  });
});
