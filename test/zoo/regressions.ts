/**
 * Crossings pinned after the explorer (`npm run zoo`) found them failing: every one joins the
 * CI sample of test/zoo-generated.test.ts, whatever the seed picks, so a fixed defect stays
 * fixed. Add the lines the explorer's report prints; never remove one (see docs/zoo.md).
 */
import type { JobName } from './jobs.js';

export interface Regression {
  /** A crossing id (test/zoo/crossings.ts `crossingId`). */
  id: string;
  /** Where it was found: the explorer's seed, or an issue. */
  found: string;
  /** The jobs it failed in when found. */
  jobs: JobName[];
}

export const REGRESSIONS: Regression[] = [];
