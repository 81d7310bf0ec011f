import { describe, expect, it } from 'vitest';
import { planShots } from '../../src/clips/plan.js';

// Truth: the shots and timings written here, and the rules of docs/clips.md ("Cutting on shots").
const shots = (...bounds: number[]) => bounds.slice(0, -1).map((s, i) => ({ start_frame: s, end_frame: bounds[i + 1]! }));
const ids = (r: { clips: { startFrame: number; endFrame: number }[] }) => r.clips.map((c) => [c.startFrame, c.endFrame]);

describe('planShots', () => {
  it('one clip per shot by default, end exclusive', () => {
    expect(ids(planShots('v', { fps: 10, numFrames: 100 }, shots(0, 30, 100)))).toEqual([
      [0, 30],
      [30, 100],
    ]);
  });

  it('trims each end, then drops shots shorter than the minimum', () => {
    // 0.5 s (5 frames) off each end: 0-30 -> 5-25 (2 s), 30-45 -> 35-40 (0.5 s < 1 s: no clip), 45-100 -> 50-95.
    expect(ids(planShots('v', { fps: 10, numFrames: 100 }, shots(0, 30, 45, 100), { trimS: 0.5, minClipLengthS: 1 }))).toEqual([
      [5, 25],
      [50, 95],
    ]);
  });

  it('cuts long shots by stride (a short last piece dropped) or truncates them', () => {
    const t = { fps: 10, numFrames: 100 };
    expect(ids(planShots('v', t, shots(0, 100), { maxClipLengthS: 3, minClipLengthS: 1.5 }))).toEqual([
      [0, 30],
      [30, 60],
      [60, 90],
    ]); // 90-100 is 1 s < 1.5 s
    expect(ids(planShots('v', t, shots(0, 100), { maxClipLengthS: 3, maxLengthMode: 'truncate' }))).toEqual([[0, 30]]);
  });

  it('measures seconds on the frames’ own times (variable frame rate)', () => {
    // Frames 0-9 last 0.1 s, frames 10-19 0.2 s: 3 s in all.
    const times = [...Array.from({ length: 11 }, (_, i) => i / 10), ...Array.from({ length: 10 }, (_, i) => 1 + (i + 1) / 5)];
    const t = { fps: 6.67, numFrames: 20, times };
    // 1 s pieces: 0-10 (1 s), 10-15 (1 s), 15-20 (1 s).
    expect(ids(planShots('v', t, shots(0, 20), { maxClipLengthS: 1 }))).toEqual([
      [0, 10],
      [10, 15],
      [15, 20],
    ]);
  });

  it('never crosses a timestamp break: the clip is split there and the split listed', () => {
    const t = {
      fps: 10,
      numFrames: 40,
      runs: [
        { start: 0, end: 20, rawStartS: 0, epoch: 0 },
        { start: 20, end: 40, rawStartS: 0, epoch: 1, after: { kind: 'reset' as const, fromS: 1.9, toS: 0 } },
      ],
    };
    const r = planShots('v', t, shots(0, 40));
    expect(ids(r)).toEqual([
      [0, 20],
      [20, 40],
    ]);
    expect(r.issues.map((i) => i.action)).toEqual(['split']);
  });
});
