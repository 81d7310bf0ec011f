/** The `--rank/--world` options every job command takes, and how they become a Partition. */
import type { OptionSpec } from '../util/args.js';
import { resolvePartition, type Partition } from '../util/partition.js';

export const partitionOptions: OptionSpec[] = [
  {
    name: 'rank',
    type: 'integer',
    description: "This run's rank among --world runs (default: from SLURM_ARRAY_TASK_ID, SLURM_PROCID, JOB_COMPLETION_INDEX or RANK)",
  },
  {
    name: 'world',
    type: 'integer',
    description: 'How many runs share the unit list (default: from SLURM_ARRAY_TASK_COUNT, SLURM_NTASKS or WORLD_SIZE; needed with JOB_COMPLETION_INDEX)',
  },
];

/** Rank and world from the parsed CLI arguments and the environment; errors name `--rank`/`--world`. */
export function partitionFromArgs(args: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Partition {
  return resolvePartition({ rank: args.rank as number | undefined, world: args.world as number | undefined }, env, { rank: '--rank', world: '--world' });
}
