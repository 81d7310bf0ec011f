import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The test files that take longest on a fresh 2-core CI machine, longest first (from the
 * per-file times of a fresh-clone `.ci/run`). A fresh clone has no Vitest cache, so without this
 * the files run in project and name order, and a long zoo file that starts last keeps one worker
 * busy while the other has nothing left. A stale entry only changes the order, never what runs.
 */
const LONGEST = [
  'test/zoo/zoo-generated.test.ts',
  'test/jobs/docs.test.ts',
  'test/zoo/zoo-clips.test.ts',
  'test/jobs/clips-media.test.ts',
  'test/jobs/bench-smoke.test.ts',
  'test/jobs/full-disk.test.ts',
  'test/jobs/queue-jobs.test.ts',
  'test/jobs/faces-share.test.ts',
  'test/jobs/dedup.test.ts',
  'test/jobs/report-browser.test.ts',
  'test/jobs/cli.test.ts',
  'test/jobs/extract.test.ts',
  'test/jobs/jobs-transient.test.ts',
  'test/zoo/zoo-extract.test.ts',
  'test/zoo/decode-reference.test.ts',
];

/** Vitest's own order (its cache of earlier runs, when there is one), with the files above moved to the front. */
export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST.findIndex((name) => f.moduleId.endsWith(name));
      return i < 0 ? LONGEST.length : i;
    };
    // Array.prototype.sort is stable: the other files keep Vitest's order.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}
