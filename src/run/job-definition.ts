/**
 * What the CLI, the queue and the worker need to know about a job, in one shape for all four
 * (extract, clips, faces, segments): its command, how its options come from CLI arguments, its
 * units, and how to run some of them. `clipstream queue add <job>` lists the units and puts one
 * queue job per unit; `clipstream worker` runs each with `run({ ...options, only: [unit] })`, the
 * same code as the plain command.
 */
import type { CommandSpec } from '../util/args.js';
import type { FeedOptions, JobReport } from '../stage/job-run.js';

export interface JobDefinition<O extends object = object, N extends string = string> {
  /** The job's name: its command, and its name in the queue. `JobName` (src/cli/jobs.ts) is the union of these. */
  name: N;
  spec: CommandSpec;
  /** The library options from parsed CLI arguments (errors name the CLI flag). */
  optionsFromArgs(args: Record<string, unknown>): O;
  /** CLI arguments that are local paths, made absolute when a unit is queued (workers run elsewhere). */
  pathArgs: readonly string[];
  /** Every unit id of the job for these options, in order, before partitioning. */
  listUnits(options: O): Promise<string[]>;
  /**
   * Its units are final when the run reports them (no work after the pipeline that a unit's
   * result depends on), so a worker may feed one long-lived run unit after unit (`feed`).
   */
  feedable?: boolean;
  /** Runs the job (all units, `only` those, or those of `feed`); resolves with the runner's report. */
  run(options: O & FeedOptions & { only?: readonly string[]; signal?: AbortSignal }): Promise<{ run: JobReport }>;
}
