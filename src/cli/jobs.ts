/**
 * The jobs the queue can carry, by name: `clipstream queue add <job>` and `clipstream worker`
 * know a job only through its `JobDefinition` (src/run/job-definition.ts), so a job joins the
 * queue by being listed here.
 *
 * Adding a job is one import line and its name in `DEFINITIONS`, e.g.
 *   import { clipsJob } from './clips-command.js';
 */
import type { JobDefinition } from '../run/job-definition.js';
import { clipsJob } from './clips-command.js';
import { extractJob } from './extract-command.js';
import { facesJob } from './faces-command.js';
import { segmentsJob } from './segments-command.js';
import { semdedupJob } from './semdedup-command.js';

const DEFINITIONS = [extractJob, clipsJob, facesJob, segmentsJob, semdedupJob] as const;

/** The name of a job: one of the definitions' names, so a new job needs no edit anywhere else. */
export type JobName = (typeof DEFINITIONS)[number]['name'];

/** Every job the queue can run, by name. */
// biome-ignore lint/suspicious/noExplicitAny: each definition has its own options type; the queue only passes them through
export const JOB_DEFINITIONS = Object.fromEntries(DEFINITIONS.map((d) => [d.name, d])) as Record<JobName, JobDefinition<any>>;
