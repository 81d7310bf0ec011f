/** The one progress display every command uses lives in src/util/progress.ts; re-exported for older imports. */
export { clock, ProgressDisplay, progressLine, type JobProgress } from '../util/progress.js';
