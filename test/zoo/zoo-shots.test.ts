/**
 * The shot zoo (test/zoo/shots-zoo.ts, docs/zoo.md "The shot zoo"): edited videos whose hard cuts,
 * dissolves, fades, flashes, pans and moving subtitles are known from the recipe.
 *
 * 1. The zoo is what its recipe says: frame counts, rates and codecs by PyAV and ffprobe; the
 *    flashes bright and the fades dark (reference luma); every hard cut a real change of content
 *    and nothing else inside a shot scoring near the threshold (reference scores).
 * 2. scripts/shots_reference.py (numpy + cv2, written from PySceneDetect's documented semantics)
 *    equals the real PySceneDetect's ContentDetector, when CLIPSTREAM_PYSCENEDETECT points at a
 *    checkout of it (not installed in CI: skipped there with a message).
 * 3. clipstream's content detector (detectShots) against the truth, the reference and PySceneDetect.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { readFacts, type Facts } from './checks.js';
import { matchFrames, PYSCENEDETECT_SCRIPT, PYTHON, reference, type RefFile, runPython, whatIsAt } from './shots-truth.js';
import { pickShotsFiles, SHOTS_COUNT, SHOTS_SEED, type ShotsEntry, shotsZoo } from './shots-zoo.js';

const THRESHOLD = 27;
const hasPy = spawnSync(PYTHON, ['-c', 'import av, cv2, numpy'], { stdio: 'ignore' }).status === 0;
if (!hasPy) console.warn('zoo-shots.test: skipped, /usr/bin/python3 cannot import av, cv2 and numpy (apt-get install python3-av python3-opencv)');
const PSD = process.env.CLIPSTREAM_PYSCENEDETECT;
const hasPsd = !!PSD && existsSync(join(PSD, 'scenedetect'));
if (!hasPsd)
  console.warn(
    'zoo-shots.test: the comparisons with PySceneDetect are skipped: set CLIPSTREAM_PYSCENEDETECT to a checkout of github.com/Breakthrough/PySceneDetect (0.7.x; the folder holding scenedetect/)',
  );

describe('the shot zoo picker', () => {
  it('is deterministic by seed and crosses every format, rate and event', () => {
    const a = pickShotsFiles(SHOTS_SEED, SHOTS_COUNT);
    expect(a).toEqual(pickShotsFiles(SHOTS_SEED, SHOTS_COUNT));
    expect(pickShotsFiles(SHOTS_SEED + 1, SHOTS_COUNT)).not.toEqual(a);
    expect(new Set(a.map((f) => `${f.container}/${f.codec}`)).size).toBe(4);
    expect(new Set(a.map((f) => f.rate.join('/'))).size).toBe(4);
    expect(a.some((f) => f.width % 2 === 1)).toBe(true);
    const count = (p: (f: (typeof a)[number]) => boolean) => a.filter(p).length;
    expect(count((f) => f.shots.some((s) => s.flash))).toBeGreaterThanOrEqual(2);
    expect(count((f) => f.shots.some((s) => s.scene === 'pan'))).toBeGreaterThanOrEqual(2);
    expect(count((f) => f.shots.some((s) => s.scene === 'subtitle'))).toBeGreaterThanOrEqual(2);
    expect(count((f) => f.joins.some((j) => j.kind === 'dissolve'))).toBeGreaterThanOrEqual(2);
    expect(count((f) => f.joins.some((j) => j.kind === 'fade'))).toBeGreaterThanOrEqual(2);
    // Neighbouring shots never show the same scene: a hard cut always changes the picture.
    for (const f of a) for (let k = 1; k < f.shots.length; k++) expect(f.shots[k]!.scene, f.name).not.toBe(f.shots[k - 1]!.scene);
  });
});

describe.skipIf(!hasPy)('the shot zoo', () => {
  let zoo: ShotsEntry[];
  let facts: Facts[];
  /** PySceneDetect's semantics (its downscale, no flash rejection). */
  let ref: RefFile[];
  let psd: Array<{ path: string; frames: number; cuts: number[] }> | null = null;

  beforeAll(async () => {
    const t0 = Date.now();
    zoo = await shotsZoo();
    const paths = zoo.map((e) => e.path);
    [facts, ref] = await Promise.all([readFacts(paths, 1), reference(paths, ['--scores', '--luma', '--threshold', String(THRESHOLD)], 1)]);
    if (hasPsd) psd = (await runPython<{ files: Array<{ path: string; frames: number; cuts: number[] }> }>(PYSCENEDETECT_SCRIPT, paths)).files;
    process.stdout.write(`zoo-shots: ${zoo.length} files, truth and references in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }, 300_000);

  it('has the frame count, rate and codec of its recipe (PyAV and ffprobe)', () => {
    zoo.forEach((e, i) => {
      const f = facts[i]!;
      const t = e.truth;
      expect([e.name, f.pyav?.video?.frames, f.ffprobe?.video?.frames]).toEqual([e.name, t.frames, t.frames]);
      expect([e.name, f.pyav?.video?.codec, f.ffprobe?.video?.codec, f.ffprobe?.video?.width, f.ffprobe?.video?.height]).toEqual([
        e.name,
        t.videoCodec,
        t.videoCodec,
        t.width,
        t.height,
      ]);
      // Frame i at i / fps (mkv/webm store milliseconds).
      const times = f.pyav!.video!.times;
      const worst = Math.max(...times.map((x, k) => Math.abs((x ?? Number.NaN) - (times[0] ?? 0) - k / t.fps)));
      expect(worst, `${e.name}: frame times off the ${t.fps} fps grid`).toBeLessThan(0.0011);
    });
  });

  it('has bright flashes, dark fades, and a change of content at every hard cut only', () => {
    const problems: string[] = [];
    zoo.forEach((e, i) => {
      const t = e.truth;
      const { scores, luma } = ref[i]! as Required<RefFile>;
      for (const f of t.flashes) {
        const before = luma[t.flashes.includes(f - 1) ? f - 2 : f - 1]!;
        if (!(luma[f]! > 200 && luma[f]! > before + 20)) problems.push(`${e.name}: flash frame ${f} has luma ${luma[f]} (before: ${before})`);
      }
      for (const [a, b] of t.fades) {
        const darkest = Math.min(...luma.slice(a, b + 1));
        if (darkest > 2) problems.push(`${e.name}: the fade ${a}-${b} is never black (darkest luma ${darkest})`);
      }
      for (const c of t.cuts) if (scores[c]! < THRESHOLD + 15) problems.push(`${e.name}: the hard cut at ${c} scores only ${scores[c]}`);
      // Inside a shot, away from its events, nothing looks like a cut (pans and subtitles included).
      scores.forEach((s, f) => {
        if (f === 0 || t.cuts.includes(f)) return;
        const what = whatIsAt(t, f);
        if (what.kind === 'dissolve' || what.kind === 'fade' || what.kind === 'flash') return;
        if (s >= THRESHOLD - 5) problems.push(`${e.name}: frame ${f} (${what.note}) scores ${s}`);
      });
    });
    expect(problems).toEqual([]);
  });

  it('reference: every hard cut found within ±1 frame (PySceneDetect semantics)', () => {
    const missed = zoo.flatMap((e, i) => matchFrames(e.truth.cuts, ref[i]!.cuts).missed.map((f) => `${e.name}: ${f}`));
    expect(missed).toEqual([]);
  });

  it.skipIf(!hasPsd)('reference equals the real PySceneDetect ContentDetector (all cuts, ±1 frame)', () => {
    const rows: string[] = [];
    let exact = 0;
    let total = 0;
    zoo.forEach((e, i) => {
      const p = psd![i]!;
      expect(p.frames, `${e.name}: PySceneDetect read ${p.frames} frames`).toBe(e.truth.frames);
      const m = matchFrames(p.cuts, ref[i]!.cuts);
      total += p.cuts.length;
      exact += m.matched.filter(([a, b]) => a === b).length;
      for (const f of m.missed) rows.push(`${e.name}: PySceneDetect cut ${f} (${whatIsAt(e.truth, f).note}) not in the reference`);
      for (const f of m.extra) rows.push(`${e.name}: reference cut ${f} (${whatIsAt(e.truth, f).note}) not in PySceneDetect`);
    });
    process.stdout.write(`zoo-shots: reference vs PySceneDetect: ${exact}/${total} cuts on the same frame\n`);
    expect(rows).toEqual([]);
  });
});
