import { ClipstreamError } from '../errors.js';

export interface Partition {
  rank: number;
  world: number;
  /** Where rank and world came from, for the run log: `options`, `SLURM_ARRAY_TASK_ID`, ... */
  from: string;
}

/** The whole list: what a run without any partitioning does. */
export const WHOLE: Partition = { rank: 0, world: 1, from: 'default' };

export interface PartitionInput {
  rank?: number;
  world?: number;
}

/** How a caller spells the two options in messages (`--rank` on the CLI, `options.rank` in the API). */
export interface PartitionNames {
  rank: string;
  world: string;
}

const API_NAMES: PartitionNames = { rank: 'options.rank', world: 'options.world' };

function bad(message: string, option: string): ClipstreamError {
  return new ClipstreamError('ERR_BAD_ARGUMENT', message, { where: { option } });
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw bad(`environment variable ${name}='${raw}' is not a non-negative integer`, name);
  return n;
}

/**
 * The tasks of an `srun` job step. Only srun sets SLURM_STEP_ID: a batch script itself also has
 * SLURM_PROCID=0 and SLURM_NTASKS=N (with --ntasks=N), and must not be taken for rank 0 of N.
 */
function slurmStep(env: NodeJS.ProcessEnv): { procId: number; tasks: number } | null {
  if (env.SLURM_STEP_ID === undefined || env.SLURM_STEP_ID === '' || env.SLURM_STEP_ID === 'batch') return null;
  const procId = envInt(env, 'SLURM_PROCID');
  const tasks = envInt(env, 'SLURM_STEP_NUM_TASKS') ?? envInt(env, 'SLURM_NTASKS');
  return procId === undefined || tasks === undefined ? null : { procId, tasks };
}

/** Rank and world the scheduler set, or null. Slurm first, then Kubernetes, then torchrun. */
function fromEnvironment(env: NodeJS.ProcessEnv): { rank?: number; world?: number; from: string } | null {
  const srun = slurmStep(env);
  const arrayId = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (arrayId !== undefined) {
    // `--array=1-10` numbers tasks from 1; `--array=0-20:2` steps by 2.
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') || 1;
    let count = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (count === undefined) {
      const max = envInt(env, 'SLURM_ARRAY_TASK_MAX');
      if (max !== undefined) count = Math.floor((max - min) / step) + 1;
    }
    const rank = (arrayId - min) / step;
    if (!Number.isInteger(rank)) throw bad(`SLURM_ARRAY_TASK_ID=${arrayId} is not on the array's grid (min ${min}, step ${step})`, 'SLURM_ARRAY_TASK_ID');
    // An array of multi-task jobs (srun inside each element): every task gets its own share.
    if (srun && srun.tasks > 1)
      return { rank: rank * srun.tasks + srun.procId, world: count === undefined ? undefined : count * srun.tasks, from: 'SLURM_ARRAY_TASK_ID+SLURM_PROCID' };
    return { rank, world: count, from: 'SLURM_ARRAY_TASK_ID' };
  }
  if (srun) return { rank: srun.procId, world: srun.tasks, from: 'SLURM_PROCID' };
  const index = envInt(env, 'JOB_COMPLETION_INDEX');
  if (index !== undefined) return { rank: index, world: undefined, from: 'JOB_COMPLETION_INDEX' };
  const rank = envInt(env, 'RANK');
  if (rank !== undefined) return { rank, world: envInt(env, 'WORLD_SIZE'), from: 'RANK' };
  return null;
}

/**
 * Decides this process's rank and world: explicit values win; what is missing comes from
 * Slurm (`SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT`, or in an `srun` step `SLURM_PROCID`/`SLURM_STEP_NUM_TASKS`),
 * a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`; the world is the `world` option, since
 * Kubernetes does not export `completions`), or torchrun (`RANK`/`WORLD_SIZE`).
 * Neither given nor set: rank 0 of 1 (the whole list).
 *
 * @example
 * resolvePartition({ world: 4 }, { JOB_COMPLETION_INDEX: '2' }) // { rank: 2, world: 4, from: 'JOB_COMPLETION_INDEX' }
 * resolvePartition({ rank: 1, world: 3 }, {}, { rank: '--rank', world: '--world' })
 */
export function resolvePartition(given: PartitionInput = {}, env: NodeJS.ProcessEnv = process.env, names: PartitionNames = API_NAMES): Partition {
  for (const [key, name] of [
    ['rank', names.rank],
    ['world', names.world],
  ] as const) {
    const v = given[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < (key === 'world' ? 1 : 0))) {
      throw bad(`${name} expects ${key === 'world' ? 'an integer of at least 1' : 'a non-negative integer'} but received ${String(v)}`, name);
    }
  }
  const found = given.rank !== undefined && given.world !== undefined ? null : fromEnvironment(env);
  const rank = given.rank ?? found?.rank;
  const world = given.world ?? found?.world;
  const mixed = given.rank !== undefined || given.world !== undefined;
  const from = !found ? 'options' : mixed ? `options+${found.from}` : found.from;
  if (rank === undefined && world === undefined) return WHOLE;
  if (world === undefined) {
    throw bad(
      `${names.world} is needed: rank ${rank} comes from ${given.rank !== undefined ? names.rank : from}, but nothing says how many ranks there are`,
      names.world,
    );
  }
  if (rank === undefined) {
    throw bad(`${names.rank} is needed with ${names.world}=${world} (or run under Slurm, a Kubernetes Indexed Job or torchrun, which set it)`, names.rank);
  }
  if (rank >= world) {
    const src = given.rank !== undefined ? names.rank : from;
    throw bad(`${names.rank} must be below ${names.world}: rank ${rank} (from ${src}) is not among ranks 0..${world - 1}`, names.rank);
  }
  return { rank, world, from };
}

/**
 * This rank's share of the unit list: every unit whose position `i` has `i % world === rank`.
 * Round robin rather than blocks, so neighbouring units (often of similar size) spread over
 * the ranks. Deterministic given the same list, and the W shares cover the list exactly once.
 *
 * @example shareOf(['a', 'b', 'c', 'd', 'e'], { rank: 1, world: 2 }) // ['b', 'd']
 */
export function shareOf<T>(units: readonly T[], partition: { rank: number; world: number } = WHOLE): T[] {
  const { rank, world } = partition;
  if (!Number.isInteger(world) || world < 1 || !Number.isInteger(rank) || rank < 0 || rank >= world) {
    throw bad(`Expected 0 <= rank < world for a partition but received rank ${String(rank)} of world ${String(world)}`, 'options.partition');
  }
  if (world === 1) return [...units];
  return units.filter((_, i) => i % world === rank);
}

/** `rank 1 of 3 (from SLURM_ARRAY_TASK_ID)`, for logs and summaries. */
export function describePartition(p: Partition): string {
  return `rank ${p.rank} of ${p.world}${p.from === 'options' || p.from === 'default' ? '' : ` (from ${p.from})`}`;
}
