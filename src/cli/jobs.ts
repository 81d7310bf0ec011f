/**
 * The jobs the queue can carry, by name: `clipstream queue add <job>` and `clipstream worker`
 * know a job only through its `JobDefinition` (src/run/job-definition.ts), so a job joins the
 * queue by being listed here.
 *
 * Adding a job is one import line and its name in `DEFINITIONS`, e.g.
 *   import { clipsJob } from './clips-command.js';
 */
import type { JobDefinition } from '../run/job-definition.js';
import type { JobName } from '../run/runner.js';
import { clipsJob } from './clips-command.js';
import { extractJob } from './extract-command.js';
import { facesJob } from './faces-command.js';
import { segmentsJob } from './segments-command.js';

// biome-ignore lint/suspicious/noExplicitAny: each definition has its own options type; the queue only passes them through
const DEFINITIONS: JobDefinition<any>[] = [extractJob, clipsJob, facesJob, segmentsJob];

/** Every job the queue can run, by name; a job not (yet) defined is absent. */
// biome-ignore lint/suspicious/noExplicitAny: see DEFINITIONS
export const JOB_DEFINITIONS: Partial<Record<JobName, JobDefinition<any>>> = Object.fromEntries(DEFINITIONS.map((d) => [d.name, d]));
