/**
 * The generated media zoo (docs/zoo.md): a fixed-seed sample of crossings (container × codec ×
 * timing × geometry × colour × audio × name) plus every pinned regression. Each file's truth
 * comes from its recipe and must be confirmed by PyAV and ffprobe; then every job runs over the
 * whole sample and each file's outputs are compared with its truth. Files and facts are cached
 * between runs (test/zoo/generated.ts), so a rerun costs the jobs only.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Facts, PYTHON, truthProblems } from './checks.js';
import { crossingArb, crossingId, normalise, parseCrossingId, pickCrossings } from './crossings.js';
import { type GenEntry, generatedEntries, generatedRecipes } from './generated.js';
import { JOBS, type JobName, type JobResult, runJob, sampleFacts } from './jobs.js';
import { REGRESSIONS } from './regressions.js';
import fc from 'fast-check';

/** The CI sample: fixed, so every run judges the same files (the first seed from 20261207 whose 40 crossings hold every value of every dimension). */
const CI_SEED = 20261208;
const CI_COUNT = 40;

/**
 * What still fails on main (Debian's ffmpeg 5.1) after issue 18's fixes, by `job crossing-id`,
 * each with the defect it belongs to and why it is left. Each is skipped with its mismatches
 * named; one that passes fails the test, so the list only shrinks. Never add to it without
 * the defect that causes the failure.
 */
const KNOWN_OPEN: Record<string, number | number[] | string> = {
  // 6 (residual): in a VFR MPEG-TS whose timestamps restart, the frame before the restart has no stored duration.
  // clips gives it the median frame interval (0.04 s); the recipe made it 0.1 s, so every label after the restart
  // is 0.06 s early. The clips' audio and video still agree with each other.
  'clips ts_h264_vfr_plain_full_aac-stereo-same_twin': 6,
  'clips ts_h264_vfr_sar16x15_full_opus-7ch1-same_plain': 6,
  'clips ts_h264_vfr_tiny_pq_ac3-stereo-same_plain': 6,
};

const hasPyAV = spawnSync(PYTHON, ['-c', 'import av, numpy, torch'], { stdio: 'ignore' }).status === 0;
if (!hasPyAV)
  console.warn('zoo-generated.test: skipped, /usr/bin/python3 cannot import av, numpy and torch (apt-get install python3-av python3-numpy python3-torch)');

const crossings = (() => {
  const list = pickCrossings(CI_SEED, CI_COUNT);
  const ids = new Set(list.map(crossingId));
  for (const r of REGRESSIONS) if (!ids.has(r.id)) list.push(parseCrossingId(r.id));
  return list;
})();
/** The file names of the sample, known before any file is made. */
const names = generatedRecipes(crossings).map((r) => r.name);

describe('the crossing picker', () => {
  it('is deterministic by seed, and its ids name the crossings as made', () => {
    expect(pickCrossings(CI_SEED, CI_COUNT).map(crossingId)).toEqual(pickCrossings(CI_SEED, CI_COUNT).map(crossingId));
    expect(pickCrossings(CI_SEED + 1, 10).map(crossingId)).not.toEqual(pickCrossings(CI_SEED, 10).map(crossingId));
    fc.assert(
      fc.property(crossingArb, (c) => {
        expect(normalise(c)).toEqual(c);
        expect(parseCrossingId(crossingId(c))).toEqual(c);
      }),
      { seed: CI_SEED, numRuns: 500 },
    );
    expect(new Set(names).size).toBe(names.length);
    expect(() => parseCrossingId('mp4_h264_cfr_plain_untagged_aac-stereo-same_nonsense')).toThrow(/nonsense is not one of/);
  });

  it('covers every value of every dimension in the CI sample', () => {
    const made = crossings.map(normalise);
    for (const key of ['container', 'codec', 'timing', 'geometry', 'colour', 'audio', 'name'] as const) {
      const seen = new Set(made.map((c) => c[key]));
      expect([key, seen.size], [...seen].join(',')).toEqual([key, { container: 9, codec: 6, timing: 6, geometry: 9, colour: 4, audio: 6, name: 5 }[key]]);
    }
  });

  it('pins only crossings as they are made (a regression id that normalises away would test nothing)', () => {
    for (const r of REGRESSIONS) expect(crossingId(normalise(parseCrossingId(r.id))), r.id).toBe(r.id);
  });
});

describe.skipIf(!hasPyAV)('generated zoo: truth, then every job', () => {
  let entries: GenEntry[];
  let facts: Map<string, Facts>;
  let dir: string;
  const results = new Map<JobName, JobResult>();

  beforeAll(async () => {
    entries = await generatedEntries(crossings);
    facts = await sampleFacts(entries);
    dir = await mkdtemp(join(tmpdir(), 'zoo-generated-'));
  }, 900_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const entry = (name: string) => entries.find((e) => e.name === name)!;

  it.for(names)('truth of %s is confirmed by PyAV and ffprobe', (name) => {
    const e = entry(name);
    expect(e.generatorError ?? null, `the generator failed on ${name}`).toBeNull();
    expect(truthProblems(e.truth, facts.get(name)!)).toEqual([]);
  });

  for (const job of JOBS) {
    describe(job, () => {
      beforeAll(async () => {
        results.set(job, await runJob(job, entries, dir));
        process.stdout.write(`zoo-generated: ${job} over ${entries.length} files in ${results.get(job)!.seconds.toFixed(1)} s\n`);
      }, 600_000);

      it.for(names)(`${job} on %s matches the truth`, (name, ctx) => {
        const key = `${job} ${entry(name).truth.crossing}`;
        const known = KNOWN_OPEN[key];
        const problems = results.get(job)!.problems.get(name) ?? [];
        if (known !== undefined) {
          const defects = typeof known === 'string' ? known : [known].flat().join(', ');
          expect(problems, `${job} on ${name} passes now: remove '${key}' from KNOWN_OPEN (defect ${defects})`).not.toEqual([]);
          ctx.skip(`known open (issue 18 defect ${defects}): ${problems.join('; ')}`);
        }
        expect(problems).toEqual([]);
      });
    });
  }
});
