import { describe, expect, it } from 'vitest';
import type { Detection } from '../../src/faces/boxes.js';
import { squareAndResize, trackCrop } from '../../src/faces/crops.js';
import { linkTracks, stableBlocks } from '../../src/faces/tracker.js';

const face = (cx: number, cy: number, half = 20, score = 0.9): Detection => ({ x1: cx - half, y1: cy - half, x2: cx + half, y2: cy + half, score });

/** n samples (every 2nd frame); `at(i)` gives the faces of sample i. */
function samples(n: number, at: (i: number) => Detection[]) {
  return Array.from({ length: n }, (_, i) => ({ frame: 2 * i, sample: i, detections: at(i) }));
}

describe('linkTracks', () => {
  it.each([
    ['a steady face', samples(30, () => [face(100, 100)]), [30]],
    ['a face missing for 2 samples (= maxGap) stays one track', samples(30, (i) => (i >= 10 && i < 12 ? [] : [face(100, 100)])), [28]],
    ['a face missing for 3 samples (> maxGap) splits', samples(30, (i) => (i >= 10 && i < 13 ? [] : [face(100, 100)])), [10, 17]],
    ['a face that jumps across the frame splits', samples(30, (i) => [i < 15 ? face(60, 100) : face(250, 100)]), [15, 15]],
    ['a face moving 4 px per sample stays one track', samples(30, (i) => [face(40 + 4 * i, 100)]), [30]],
    ['two faces side by side make two tracks', samples(20, () => [face(60, 100), face(200, 100, 20, 0.8)]), [20, 20]],
  ] as const)('%s', (_name, input, lengths) => {
    const tracks = linkTracks(
      input.map((s) => ({ ...s, detections: [...s.detections] })),
      { maxGap: 2, iouThreshold: 0.3 },
    );
    expect(tracks.map((t) => t.detections.length)).toEqual(lengths);
    for (const t of tracks) expect(t.detections.map((d) => d.frame)).toEqual([...t.detections.map((d) => d.frame)].sort((a, b) => a - b));
  });
});

describe('stableBlocks', () => {
  it('keeps a still face as one block and drops blocks of 16 or fewer detections', () => {
    const still = linkTracks(samples(17, () => [face(100, 100)]))[0]!;
    expect(stableBlocks(still, 320, 240).map((b) => b.detections.length)).toEqual([17]);
    const short = linkTracks(samples(16, () => [face(100, 100)]))[0]!;
    expect(stableBlocks(short, 320, 240)).toEqual([]);
  });

  it('cuts a drifting face where a coordinate has moved more than 0.06 of the frame', () => {
    // 1 px per sample on a 320-wide frame: 0.06 × 320 = 19.2 px, so a block holds 20 detections.
    const track = linkTracks(samples(60, (i) => [face(60 + i, 100)]))[0]!;
    const blocks = stableBlocks(track, 320, 240, { maxBoxVariation: 0.06, minDetections: 16 });
    expect(blocks.map((b) => b.detections.length)).toEqual([20, 20, 20]);
    expect(blocks[1]!.detections[0]!.frame).toBe(40);
    expect(stableBlocks(track, 320, 240, { maxBoxVariation: 1 }).map((b) => b.detections.length)).toEqual([60]);
  });
});

describe('trackCrop', () => {
  it('squares the union, enlarges it by 1.4 about its centre', () => {
    const c = trackCrop([face(100, 100), face(104, 100)], 320, 240, { enlarge: 1.4 });
    // union 80..124 × 80..120 → centre (102, 100), side 44 × 1.4 = 61.6 → 62
    expect(c).toEqual({ x: 71, y: 69, size: 62, inner: { x: 71, y: 69, width: 62, height: 62 }, pad: { left: 0, top: 0, right: 0, bottom: 0 } });
  });

  it('uses the mean box when asked', () => {
    const c = trackCrop([face(100, 100), face(104, 100)], 320, 240, { enlarge: 1, mode: 'mean' });
    expect(c).toMatchObject({ x: 82, y: 80, size: 40 });
  });

  it('clips at the frame edge and pads the rest', () => {
    const c = trackCrop([face(10, 230)], 320, 240, { enlarge: 1.5 });
    expect(c).toEqual({ x: -20, y: 200, size: 60, inner: { x: 0, y: 200, width: 40, height: 40 }, pad: { left: 20, top: 0, right: 0, bottom: 20 } });
  });
});

describe('squareAndResize', () => {
  it('pads with black and resizes with sharp, keeping RGB order', async () => {
    const c = trackCrop([face(10, 230)], 320, 240, { enlarge: 1.5 });
    const inner = new Uint8Array(40 * 40 * 3);
    for (let i = 0; i < 40 * 40; i++) inner.set([250, 120, 10], i * 3);
    const out = await squareAndResize(inner, c, 30);
    expect(out.length).toBe(30 * 30 * 3);
    const px = (x: number, y: number) => [...out.subarray((y * 30 + x) * 3, (y * 30 + x) * 3 + 3)];
    expect(px(2, 2)).toEqual([0, 0, 0]); // left padding
    expect(px(27, 27)).toEqual([0, 0, 0]); // bottom padding
    const inside = px(20, 8);
    expect(inside[0]).toBeGreaterThan(240);
    expect(inside[2]).toBeLessThan(20);
  });
});
