import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { extract, type ExtractReport } from '../jobs/extract.js';
import { addUnits, DEFAULT_QUEUE, QUEUE_JOBS, queueStatus, redisConnection, type QueueJobName, type UnitJobData } from '../scale/queue.js';
import { PermanentUnitError, startWorker } from '../scale/worker.js';
import { ModelCache } from '../scale/model-cache.js';
import { expandShardUrls, isRemoteShard } from '../shards/shard-source.js';
import { formatHelp, parseArgs, type CommandSpec, type OptionSpec } from './args.js';
import { extractSpec } from './commands.js';
import { extractOptionsFromArgs } from './main.js';

const redisOption: OptionSpec = { name: 'redis', type: 'string', description: 'Redis URL, redis://host:6379[/db] (rediss:// for TLS)', required: true };
const queueOption: OptionSpec = { name: 'queue', type: 'string', description: 'Queue name (one per dataset, or share one)', default: DEFAULT_QUEUE };

export const queueSpec: CommandSpec = {
  name: 'queue',
  summary: 'put the units of a job on a Redis (BullMQ) queue for `clipstream worker`s, or show its state.',
  usage:
    'clipstream queue add extract --tar_path=<shards> --out_path=<shared dir> --redis=redis://host:6379 [extract options]\n       clipstream queue status --redis=redis://host:6379 [--queue=clipstream] [--json]',
  options: [
    redisOption,
    queueOption,
    { name: 'attempts', type: 'integer', description: 'add: tries per unit before it counts as failed (worker deaths do not count)', default: 5 },
    { name: 'backoff_seconds', type: 'number', description: 'add: wait before the first retry, doubled each time', default: 5 },
    { name: 'json', type: 'boolean', description: 'status: print the state as JSON', default: false },
  ],
  examples: [
    'clipstream queue add extract --tar_path="/shared/shards/shard-{000000..000999}.tar" --out_path=/shared/feats --redis=redis://10.0.0.5:6379',
    'clipstream queue status --redis=redis://10.0.0.5:6379',
  ],
};

export const workerSpec: CommandSpec = {
  name: 'worker',
  summary: 'take units from a Redis (BullMQ) queue and run them, until stopped (SIGTERM: finish the units in hand).',
  usage: 'clipstream worker --redis=redis://host:6379 [--concurrency=1] [--queue=clipstream]',
  options: [
    redisOption,
    queueOption,
    { name: 'concurrency', type: 'integer', description: 'Units this worker runs at once', default: 1 },
    { name: 'lock_seconds', type: 'number', description: 'A worker silent this long is taken for dead and its unit handed to another', default: 30 },
    {
      name: 'exit_when_drained',
      type: 'boolean',
      description: 'Exit once nothing waits in the queue (a batch job of workers); default: wait for more',
      default: false,
    },
    { name: 'quiet', type: 'boolean', description: 'Log failures only', default: false },
  ],
  examples: ['clipstream worker --redis=redis://10.0.0.5:6379 --concurrency=2', 'clipstream worker --redis=redis://10.0.0.5:6379 --exit_when_drained'],
};

/** Options of `queue add <job>`: the job's own options, minus what makes no sense per unit. */
function addSpec(job: QueueJobName): CommandSpec {
  const own = extractSpec.options.filter((o) => !['quiet', 'rank', 'world'].includes(o.name));
  return {
    ...queueSpec,
    name: `queue add ${job}`,
    usage: queueSpec.usage.split('\n')[0]!,
    options: [...own, ...queueSpec.options.filter((o) => o.name !== 'json')],
  };
}

function bad(message: string): ClipstreamError {
  return new ClipstreamError('ERR_BAD_ARGUMENT', message);
}

/** Workers run elsewhere, in other folders: local paths travel absolute. */
function absolute(p: unknown): unknown {
  return typeof p === 'string' && p !== '' && p !== 'none' && !isAbsolute(p) && !isRemoteShard(p) ? resolve(p) : p;
}

/** `clipstream queue add <job> ...` and `clipstream queue status ...`; argv is what follows `queue`. */
export async function runQueue(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const job = rest.shift();
    if (!job || job.startsWith('--')) throw bad(`queue add: name the job whose units to queue (one of: ${QUEUE_JOBS.join(', ')})`);
    if (!(QUEUE_JOBS as readonly string[]).includes(job)) {
      throw bad(`queue add: the queue runs ${QUEUE_JOBS.join(', ')}, not '${job}' (clips and faces scale with --rank/--world; see README "Many machines")`);
    }
    const spec = addSpec(job as QueueJobName);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(formatHelp(spec));
      return 0;
    }
    const args = parseArgs(rest, spec);
    const redis = args.redis as string;
    redisConnection(redis);
    const units = expandShardUrls(args.tar_path as string[]).map((u) => absolute(u) as string);
    if (units.length === 0) throw bad('queue add extract: --tar_path names no shard');
    const jobArgs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(args)) {
      if (['redis', 'queue', 'attempts', 'backoff_seconds', 'tar_path'].includes(k)) continue;
      // Model names without a '/' are files in model_dir; anything else is a path.
      const isPath = k === 'out_path' || k === 'model_dir' || ((k === 'visual_model' || k === 'audio_model') && String(v).includes('/'));
      jobArgs[k] = isPath ? absolute(v) : v;
    }
    const r = await addUnits(redis, job as QueueJobName, units, jobArgs, {
      queue: args.queue as string,
      attempts: validateAtLeast(args.attempts as number, 1, '--attempts'),
      backoffMs: Math.round(validateAtLeast(args.backoff_seconds as number, 0, '--backoff_seconds') * 1000),
    });
    process.stderr.write(`clipstream queue: added ${r.added} ${job} unit(s) to queue '${args.queue}' at ${redis}; ${r.existing} were queued already\n`);
    return 0;
  }
  if (sub === 'status') {
    const args = parseArgs(rest, { ...queueSpec, options: [redisOption, queueOption, queueSpec.options.find((o) => o.name === 'json')!] });
    redisConnection(args.redis as string);
    const s = await queueStatus(args.redis as string, args.queue as string);
    if (args.json) {
      process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      `queue '${args.queue}' at ${args.redis}: waiting ${s.waiting}, active ${s.active}, retrying ${s.delayed}, done ${s.done}, failed ${s.failed}\n`,
    );
    for (const f of s.failures) process.stdout.write(`  failed ${f.unit} (${f.attempts} tries): ${f.reason}\n`);
    for (const f of s.retrying) process.stdout.write(`  retrying ${f.unit} (${f.attempts} tries so far): ${f.reason}\n`);
    return 0;
  }
  throw bad(`queue: expected the subcommand 'add' or 'status'${sub ? ` but received '${sub}'` : ''}`);
}

function validateAtLeast(v: number, min: number, flag: string): number {
  if (!(v >= min)) throw bad(`queue add: ${flag} must be at least ${min} but received ${v}`);
  return v;
}

// Errors no retry can fix: the worker fails the unit at once instead of trying it again.
const PERMANENT = new Set(['ERR_INVALID_OPTION', 'ERR_BAD_ARGUMENT', 'ERR_MODEL']);

/** Runs one `extract` unit (a shard) with the same code as `clipstream extract`. */
async function runExtractUnit(data: UnitJobData, signal: AbortSignal, say: (line: string) => void, models: ModelCache): Promise<Record<string, unknown>> {
  const warnings: string[] = [];
  let report: ExtractReport;
  try {
    report = await extract({
      ...extractOptionsFromArgs({ ...data.args, tar_path: [data.unit] }),
      // A second delivery of a unit still in hand elsewhere waits for it instead of skipping it.
      onLocked: 'wait',
      models,
      signal,
      onWarning: (w) => {
        warnings.push(w.message);
        say(`warning: ${w.message}`);
      },
    });
  } catch (err) {
    const e = err as ClipstreamError;
    if (!signal.aborted && PERMANENT.has(e.code)) throw new PermanentUnitError(e.message);
    throw err;
  }
  const s = report.shards[0];
  if (!s || s.status === 'missing') {
    throw new PermanentUnitError(warnings.find((w) => w.includes(data.unit)) ?? `shard ${data.unit} is missing`);
  }
  // The shard's bytes stopped coming (URL down, pipe: failed): its journal is kept, and a retry resumes it.
  if (s.status === 'failed (source)') throw new Error(s.tarError ?? `shard ${data.unit} could not be read`);
  const summary = `${s.status}, ${s.written} records, ${s.skipped.length} skipped, ${s.failed.length} failed${s.tarError ? `; ${s.tarError}` : ''}`;
  return { status: s.status, output: s.output, written: s.written, skipped: s.skipped.length, failed: s.failed.length, tarError: s.tarError ?? null, summary };
}

/** `clipstream worker`: runs queue units until SIGTERM/SIGINT (graceful) or a second signal (hand back). */
export async function runWorker(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  redisConnection(args.redis as string);
  const concurrency = args.concurrency as number;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw bad(`worker: --concurrency must be an integer between 1 and 256 but received ${concurrency}`);
  const lockSeconds = args.lock_seconds as number;
  if (!(lockSeconds >= 1)) throw bad(`worker: --lock_seconds must be at least 1 but received ${lockSeconds}`);
  const tag = `clipstream worker ${hostname()}:${process.pid}`;
  const say = (line: string) => {
    if (!args.quiet || /^(failed|error)/.test(line)) process.stderr.write(`${tag}: ${line}\n`);
  };
  const models = new ModelCache();
  const handle = await startWorker(
    {
      redis: args.redis as string,
      queue: args.queue as string,
      concurrency,
      lockSeconds,
      signal,
      onEvent: say,
      exitWhenDrained: args.exit_when_drained as boolean,
    },
    (data, s) => {
      if (data.job === 'extract') return runExtractUnit(data, s, say, models);
      throw new PermanentUnitError(`this worker does not know the job '${String(data.job)}'`);
    },
  );
  say(`waiting for units on queue '${args.queue}' at ${args.redis} (concurrency ${concurrency})`);
  const hard = () => {
    say('second signal: handing the units in hand back to the queue');
    handle.stop();
  };
  signal.addEventListener(
    'abort',
    () => {
      say('stopping: finishing the units in hand (signal again to hand them back instead)');
      process.once('SIGTERM', hard);
      process.once('SIGINT', hard);
    },
    { once: true },
  );
  const r = await handle.done;
  await models.closeAll();
  process.off('SIGTERM', hard);
  process.off('SIGINT', hard);
  say(`stopped: ${r.completed} unit(s) done, ${r.failed} failed`);
  return 0;
}
