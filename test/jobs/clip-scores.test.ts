/**
 * Scores of real ffmpeg-made clips whose truth comes from their recipe (test/helpers/score-media.ts),
 * and against the independent numpy reference (scripts/clip_scores_reference.py: PyAV decode at
 * the same size, the formulas written again in numpy).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreClipFile } from '../../src/clips/score-file.js';
import { PIXEL_SCORES, SCORE_NAMES } from '../../src/features/clip-scores.js';
import { makeScoreClip, referenceScores, SCORE_RECIPES, type ScoreRecipe } from '../helpers/score-media.js';

let dir: string;
const files = {} as Record<ScoreRecipe, string>;
const ours = {} as Record<ScoreRecipe, Record<string, number | string>>;
const setup = { names: [...SCORE_NAMES], columns: [...SCORE_NAMES] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-scores-'));
  for (const name of Object.keys(SCORE_RECIPES) as ScoreRecipe[]) {
    files[name] = await makeScoreClip(dir, name);
    const r = await scoreClipFile(files[name], setup);
    expect(r.frames).toBe(50);
    expect([r.width, r.height]).toEqual([160, 90]);
    ours[name] = r.scores;
    if (process.env.SHOW_SCORES) console.log(name, JSON.stringify(r.scores));
  }
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('scores follow the recipe', () => {
  it('black clip: black 1, frozen 1, motion 0, brightness ~0, no colour', () => {
    expect(ours.black).toMatchObject({ black: 1, frozen: 1, motion: 0, sharpness: 0, text_area: '' });
    expect(ours.black.brightness).toBeLessThan(0.01);
    expect(ours.black.colorfulness).toBeLessThan(1);
  });

  it('frozen clip: frozen ~1 and motion ~0, but not black and full of detail', () => {
    expect(ours.frozen.frozen).toBeGreaterThanOrEqual(0.95);
    expect(ours.frozen.motion).toBeLessThan(0.002);
    expect(ours.frozen.black).toBe(0);
    expect(ours.frozen.sharpness).toBeGreaterThan(100);
  });

  it('motion orders panning > moving > frozen; only the frozen one is frozen', () => {
    expect(ours.panning.motion).toBeGreaterThan(2 * (ours.moving.motion as number));
    expect(ours.moving.motion).toBeGreaterThan(2 * (ours.frozen.motion as number));
    expect(ours.moving.frozen).toBe(0);
    expect(ours.panning.frozen).toBe(0);
  });

  it('sharpness: the box-blurred clip is far below the sharp one', () => {
    expect(ours.moving.sharpness).toBeGreaterThan(3 * (ours.blurred.sharpness as number));
  });

  it('colorfulness: the desaturated clip is near 0, the colour bars far above; brightness alike', () => {
    expect(ours.grey.colorfulness).toBeLessThan(3);
    expect(ours.moving.colorfulness).toBeGreaterThan(50);
    expect(Math.abs((ours.grey.brightness as number) - (ours.moving.brightness as number))).toBeLessThan(0.05);
  });
});

// Same decoder family (swscale area filter) on both sides; the tolerance covers float32 vs float64 and rounding to 6 decimals.
const TOLERANCE: Record<string, (ref: number) => number> = {
  motion: () => 1e-5,
  black: () => 1e-6,
  frozen: () => 1e-6,
  brightness: () => 1e-5,
  contrast: () => 1e-5,
  sharpness: (ref) => 1e-5 * Math.max(1, ref),
  colorfulness: (ref) => 1e-5 * Math.max(1, ref),
};

it('every pixel score matches the numpy reference within its tolerance', async () => {
  const names = Object.keys(files) as ScoreRecipe[];
  const ref = await referenceScores(
    160,
    90,
    names.map((n) => files[n]),
  );
  for (const n of names) {
    const r = ref[files[n]]!;
    expect(r.frames, n).toBe(50);
    for (const c of PIXEL_SCORES) {
      expect(Math.abs((ours[n][c] as number) - r[c]!), `${n} ${c}: ours ${ours[n][c]}, numpy ${r[c]}`).toBeLessThanOrEqual(TOLERANCE[c]!(r[c]!));
    }
  }
}, 120_000);
