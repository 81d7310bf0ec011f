import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extract } from '../../src/jobs/extract.js';
import { resolvePartition, shareOf } from '../../src/util/partition.js';
import { runCli } from '../helpers/run-cli.js';
import { featureShards, makeSmallShards, runLogs } from '../helpers/scale-shards.js';

const CLI = { rank: '--rank', world: '--world' };

describe('resolvePartition', () => {
  it.each([
    ['explicit options', { rank: 2, world: 3 }, {}, { rank: 2, world: 3, from: 'options' }],
    ['nothing: the whole list', {}, {}, { rank: 0, world: 1, from: 'default' }],
    ['a Slurm array', {}, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '5' }, { rank: 4, world: 5, from: 'SLURM_ARRAY_TASK_ID' }],
    [
      'a Slurm array numbered from 1',
      {},
      { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '4' },
      { rank: 2, world: 4, from: 'SLURM_ARRAY_TASK_ID' },
    ],
    [
      'a stepped Slurm array without COUNT',
      {},
      { SLURM_ARRAY_TASK_ID: '20', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '20', SLURM_ARRAY_TASK_STEP: '10' },
      { rank: 2, world: 3, from: 'SLURM_ARRAY_TASK_ID' },
    ],
    [
      'a Slurm array of 2-task srun steps',
      {},
      { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3', SLURM_STEP_ID: '0', SLURM_STEP_NUM_TASKS: '2', SLURM_NTASKS: '2', SLURM_PROCID: '1' },
      { rank: 3, world: 6, from: 'SLURM_ARRAY_TASK_ID+SLURM_PROCID' },
    ],
    ['srun tasks', {}, { SLURM_STEP_ID: '0', SLURM_PROCID: '7', SLURM_STEP_NUM_TASKS: '8', SLURM_NTASKS: '16' }, { rank: 7, world: 8, from: 'SLURM_PROCID' }],
    [
      'a batch script with --ntasks=4, no srun: the whole list',
      {},
      { SLURM_PROCID: '0', SLURM_NTASKS: '4', SLURM_JOB_ID: '42' },
      { rank: 0, world: 1, from: 'default' },
    ],
    [
      'an array element run without srun, despite --ntasks',
      {},
      { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '4', SLURM_PROCID: '0', SLURM_NTASKS: '4' },
      { rank: 2, world: 4, from: 'SLURM_ARRAY_TASK_ID' },
    ],
    ['a Kubernetes Indexed Job with --world', { world: 4 }, { JOB_COMPLETION_INDEX: '3' }, { rank: 3, world: 4, from: 'options+JOB_COMPLETION_INDEX' }],
    ['torchrun', {}, { RANK: '1', WORLD_SIZE: '2' }, { rank: 1, world: 2, from: 'RANK' }],
    ['options win over the environment', { rank: 0, world: 2 }, { RANK: '1', WORLD_SIZE: '4' }, { rank: 0, world: 2, from: 'options' }],
    [
      'Slurm wins over torchrun',
      {},
      { SLURM_STEP_ID: '3', SLURM_PROCID: '1', SLURM_NTASKS: '2', RANK: '0', WORLD_SIZE: '9' },
      { rank: 1, world: 2, from: 'SLURM_PROCID' },
    ],
  ])('%s', (_name, given, env, expected) => {
    expect(resolvePartition(given, env as NodeJS.ProcessEnv, CLI)).toEqual(expected);
  });

  it.each([
    ['rank past world', { rank: 3, world: 3 }, {}, '--rank must be below --world: rank 3 (from --rank) is not among ranks 0..2'],
    ['world 0', { world: 0 }, {}, '--world expects an integer of at least 1 but received 0'],
    ['negative rank', { rank: -1, world: 2 }, {}, '--rank expects a non-negative integer but received -1'],
    ['rank without world', { rank: 1 }, {}, '--world is needed: rank 1 comes from --rank, but nothing says how many ranks there are'],
    ['world without rank', { world: 2 }, {}, '--rank is needed with --world=2 (or run under Slurm, a Kubernetes Indexed Job or torchrun, which set it)'],
    [
      'JOB_COMPLETION_INDEX without --world',
      {},
      { JOB_COMPLETION_INDEX: '1' },
      '--world is needed: rank 1 comes from JOB_COMPLETION_INDEX, but nothing says how many ranks there are',
    ],
    [
      'a bad environment value',
      {},
      { SLURM_STEP_ID: '0', SLURM_PROCID: 'x', SLURM_NTASKS: '2' },
      "environment variable SLURM_PROCID='x' is not a non-negative integer",
    ],
    [
      'an index past the world',
      { world: 2 },
      { JOB_COMPLETION_INDEX: '2' },
      '--rank must be below --world: rank 2 (from options+JOB_COMPLETION_INDEX) is not among ranks 0..1',
    ],
  ])('rejects %s', (_name, given, env, message) => {
    expect(() => resolvePartition(given, env as NodeJS.ProcessEnv, CLI)).toThrow(message);
  });
});

describe('shareOf', () => {
  it.each([1, 2, 3, 7, 12])('W=%i shares cover 0..9 exactly once, round robin', (world) => {
    const units = Array.from({ length: 10 }, (_, i) => i);
    const shares = Array.from({ length: world }, (_, rank) => shareOf(units, { rank, world }));
    expect(shares.flat().sort((a, b) => a - b)).toEqual(units);
    for (let rank = 0; rank < world; rank++) expect(shares[rank]!.every((u) => u % world === rank)).toBe(true);
  });

  it('rejects a rank outside the world', () => {
    expect(() => shareOf(['a'], { rank: 2, world: 2 })).toThrow('Expected 0 <= rank < world for a partition but received rank 2 of world 2');
  });
});

describe('extract with --rank/--world', () => {
  let dir: string;
  let shards: string[];
  let pattern: string;
  let ref: Map<string, Buffer>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-partition-'));
    shards = await makeSmallShards(dir, 5, 1);
    pattern = join(dir, 'shards', `shard-{000000..00000${shards.length - 1}}.tar`);
    await extract({ tarPath: pattern, outputDir: join(dir, 'ref'), device: 'cpu', windowSeconds: 4, onWarning: () => {} });
    ref = await featureShards(join(dir, 'ref'));
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('W=3 ranks (from options, Slurm and torchrun) together equal one run, no shard done twice, the logs naming rank and world', async () => {
    const out = join(dir, 'ranks');
    const common = ['extract', `--tar_path=${pattern}`, `--out_path=${out}`, '--quiet', '--device=cpu', '--window_seconds=4'];
    const runs = [
      runCli([...common, '--rank=0', '--world=3']),
      runCli(common, { env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' } }),
      runCli(common, { env: { RANK: '2', WORLD_SIZE: '3' } }),
    ];
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs[1]!.stderr).toContain('clipstream extract (rank 1 of 3 (from SLURM_ARRAY_TASK_ID)): ');
    expect(ref.size).toBe(shards.length);
    const got = await featureShards(out);
    expect([...got.keys()]).toEqual([...ref.keys()]);
    for (const [name, bytes] of ref) expect(got.get(name)!.equals(bytes), name).toBe(true);
    const logs = await runLogs(out);
    expect(logs.map((l) => [l.partition.rank, l.partition.world, l.partition.from]).sort()).toEqual([
      [0, 3, 'options'],
      [1, 3, 'SLURM_ARRAY_TASK_ID'],
      [2, 3, 'RANK'],
    ]);
    const written = logs.flatMap((l) => l.shard_results.filter((s: { status: string }) => s.status === 'written').map((s: { shard: string }) => s.shard));
    expect(written.sort()).toEqual(shards.map((_, i) => `shard-${String(i).padStart(6, '0')}`));
    // Round robin: rank r took shards r, r+3, ...
    const rank1 = logs.find((l) => l.partition.rank === 1)!;
    expect(rank1.shards).toEqual([shards[1], shards[4]]);
  }, 120_000);

  it('a bad --world stops before anything is opened, naming the flag (exit 2)', () => {
    const r = runCli(['extract', `--tar_path=${pattern}`, `--out_path=${join(dir, 'bad')}`, '--world=0']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('clipstream extract: error: --world expects an integer of at least 1 but received 0');
  });
});
