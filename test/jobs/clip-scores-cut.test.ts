/**
 * Scores computed by the ffmpeg that cuts the clips (a second, small output per clip on its own
 * pipe): the clips themselves stay byte for byte what they are without scores, and the scores
 * are those of the source's frames [s, e), checked against the recipe and the numpy reference
 * decoding the same frames of the source.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planSpans, type PlannedClip } from '../../src/clips/plan.js';
import { transcodeClips, type ClipJob, type TranscodeOptions } from '../../src/clips/transcode.js';
import { PIXEL_SCORES, SCORE_NAMES } from '../../src/features/clip-scores.js';
import { probeVideo, type VideoInfo } from '../../src/media/probe.js';
import { liveChildProcesses } from '../../src/media/process.js';
import { makeScoreSource, referenceScores } from '../helpers/score-media.js';

let dir: string;
let src: VideoInfo;
let clips: PlannedClip[];
const BASE: TranscodeOptions = { encoder: 'libx264', threads: 1, crf: 23, preset: 'ultrafast' };
const SETUP = { names: [...SCORE_NAMES], columns: [...SCORE_NAMES] };
const sha = async (f: string) =>
  createHash('sha256')
    .update(await readFile(f))
    .digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clip-scores-cut-'));
  await makeScoreSource(join(dir, 'src.mp4'));
  src = await probeVideo(join(dir, 'src.mp4'));
  // The four parts, and one clip across the black/frozen boundary.
  const spans: [number, number][] = [
    [0, 25],
    [25, 50],
    [50, 75],
    [75, 100],
    [20, 30],
  ];
  clips = planSpans(
    spans.map(([start, end]) => ({ videoId: 'src', start, end, unit: 'frame' as const })),
    src,
  ).clips;
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

async function cut(name: string, o: Partial<TranscodeOptions>): Promise<ClipJob[]> {
  const jobs = clips.map((clip) => ({ clip, out: join(dir, name, `${clip.stem}.mp4`) }));
  await transcodeClips(src, 'src', jobs, { ...BASE, ...o });
  return jobs;
}

describe('scores from the cutting ffmpeg', () => {
  let plain: ClipJob[];
  let scored: ClipJob[];
  let perClip: ClipJob[];
  let plainPerClip: ClipJob[];
  beforeAll(async () => {
    expect(src.numFrames).toBe(100);
    plain = await cut('plain', { mode: 'one-pass' });
    scored = await cut('scored', { mode: 'one-pass', scores: SETUP });
    perClip = await cut('per-clip', { mode: 'per-clip', scores: SETUP });
    plainPerClip = await cut('plain-per-clip', { mode: 'per-clip' });
  }, 120_000);

  it('the clips are byte for byte those cut without scores (one-pass and per-clip)', async () => {
    for (const [i, p] of plain.entries()) {
      expect(await sha(scored[i]!.out), p.clip.clipId).toBe(await sha(p.out));
      expect(await sha(perClip[i]!.out), p.clip.clipId).toBe(await sha(plainPerClip[i]!.out));
      expect(p.scores).toBeUndefined();
    }
    expect(liveChildProcesses()).toBe(0);
  });

  it('each clip has the scores its part of the recipe gives', () => {
    const [black, frozen, moving, panning, across] = scored.map((j) => j.scores!);
    expect(black).toMatchObject({ black: 1, frozen: 1, motion: 0, text_area: '' });
    expect(frozen!.frozen).toBeGreaterThanOrEqual(0.95);
    expect(frozen!.black).toBe(0);
    expect(panning!.motion).toBeGreaterThan(2 * (moving!.motion as number));
    expect(moving!.motion).toBeGreaterThan(2 * (frozen!.motion as number));
    // Frames 20-29: five black, five frozen testsrc2.
    expect(across!.black).toBe(0.5);
  });

  it('one-pass and per-clip give the same scores', () => {
    for (const [i, s] of scored.entries()) {
      for (const c of PIXEL_SCORES)
        expect(Math.abs((s.scores![c] as number) - (perClip[i]!.scores![c] as number)), `${s.clip.clipId} ${c}`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, s.scores![c] as number),
        );
    }
  });

  it('the scores match the numpy reference on the same source frames', async () => {
    const args = scored.map((j) => `${src.path}@${j.clip.startFrame}:${j.clip.endFrame}`);
    const ref = await referenceScores(160, 90, args);
    for (const [i, j] of scored.entries()) {
      const r = ref[args[i]!]!;
      expect(r.frames).toBe(j.clip.endFrame - j.clip.startFrame);
      for (const c of PIXEL_SCORES) {
        // Fractions are rounded to 6 decimals; the rest also differ by float32 against float64.
        const tol = c === 'black' || c === 'frozen' ? 1e-6 : 1e-5 * Math.max(1, r[c]!);
        expect(Math.abs((j.scores![c] as number) - r[c]!), `${j.clip.clipId} ${c}: ours ${j.scores![c]}, numpy ${r[c]}`).toBeLessThanOrEqual(tol);
      }
    }
  }, 60_000);
});
