/** The one progress display every command uses lives in src/run/progress.ts; re-exported for older imports. */
export { clock, ProgressDisplay, progressLine, type JobProgress } from '../run/progress.js';
