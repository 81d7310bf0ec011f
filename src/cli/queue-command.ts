/**
 * `clipstream queue add <job>`, `queue status` and `clipstream worker`, for every job in
 * src/cli/jobs.ts. (jobs.ts is loaded when a subcommand runs: it imports the job commands,
 * which import the command list that holds these specs.)
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, normalize, resolve } from 'node:path';
import { ClipstreamError } from '../errors.js';
import type { JobDefinition } from '../run/job-definition.js';
import type { JobName } from './jobs.js';
import { addUnits, DEFAULT_QUEUE, queueStatus, REDIS_PASSWORD_ENV, redactRedisUrl, redisConnection } from '../scale/queue.js';
import { isExecutableOption, MODEL_NAME_FLAG, QUEUE_SECRET_ENV, type TrustPolicy } from '../scale/unit-trust.js';
import { definitionRunner, startWorker } from '../scale/worker.js';
import { ModelCache } from '../infer/model-cache.js';
import { isRemoteShard } from '../shards/shard-source.js';
import { formatHelp, parseArgs, type CommandSpec, type OptionSpec } from '../util/args.js';

const redisOption: OptionSpec = {
  name: 'redis',
  type: 'string',
  description: `Redis URL, redis://[:password@]host:6379[/db] (rediss:// for TLS); a password not in the URL comes from ${REDIS_PASSWORD_ENV}`,
  required: true,
};
const queueOption: OptionSpec = { name: 'queue', type: 'string', description: 'Queue name (one per dataset, or share one)', default: DEFAULT_QUEUE };

export const queueSpec: CommandSpec = {
  name: 'queue',
  summary: 'put the units of a job on a Redis (BullMQ) queue for `clipstream worker`s, or show its state.',
  usage:
    "clipstream queue add <extract|clips|faces|segments> [that job's options] --redis=redis://host:6379\n       clipstream queue status --redis=redis://host:6379 [--queue=clipstream] [--json]",
  options: [
    redisOption,
    queueOption,
    { name: 'attempts', type: 'integer', description: 'add: tries per unit before it counts as failed (worker deaths do not count)', default: 5 },
    { name: 'backoff_seconds', type: 'number', description: 'add: wait before the first retry, doubled each time', default: 5 },
    { name: 'json', type: 'boolean', description: 'status: print the state as JSON', default: false },
  ],
  examples: [
    `${REDIS_PASSWORD_ENV}=... clipstream queue add extract --tar_path="/shared/shards/shard-{000000..000999}.tar" --out_path=/shared/feats --redis=rediss://10.0.0.5:6380`,
    `${REDIS_PASSWORD_ENV}=... clipstream queue status --redis=rediss://10.0.0.5:6380`,
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
    {
      name: 'prefetch',
      type: 'integer',
      description: 'Units held per run beyond the one in hand, so an extract or segments run is fed its next units before it drains (0: none)',
      default: 2,
    },
    { name: 'lock_seconds', type: 'number', description: 'A worker silent this long is taken for dead and its unit handed to another', default: 30 },
    {
      name: 'exit_when_drained',
      type: 'boolean',
      description: 'Exit once nothing waits in the queue (a batch job of workers); default: wait for more',
      default: false,
    },
    {
      name: 'allow_commands',
      type: 'boolean',
      description: 'Run any pipe: command or program (--ffmpeg_path, --yt_dlp_path) a queued unit names; default: refuse them',
      default: false,
    },
    {
      name: 'allow_command_prefix',
      type: 'string[]',
      description:
        'Run the queued pipe: commands and programs that start with this text (repeat, or a comma list; a pipe: command may not go on with ; & | $ ` < > quotes or backslashes)',
    },
    { name: 'quiet', type: 'boolean', description: 'Log failures only', default: false },
  ],
  examples: [
    `${REDIS_PASSWORD_ENV}=... clipstream worker --redis=rediss://10.0.0.5:6380 --concurrency=2`,
    `${REDIS_PASSWORD_ENV}=... clipstream worker --redis=rediss://10.0.0.5:6380 --exit_when_drained --allow_command_prefix="pipe:aws s3 cp s3://my-bucket/"`,
  ],
};

/** Options of `queue add <job>`: the job's own options, minus what makes no sense per unit. */
function addSpec(def: JobDefinition): CommandSpec {
  const own = def.spec.options.filter((o) => !['quiet', 'rank', 'world'].includes(o.name));
  return {
    ...queueSpec,
    name: `queue add ${def.name}`,
    usage: `clipstream queue add ${def.name} ${def.spec.usage.replace(/^clipstream \S+\s*/, '')} --redis=redis://host:6379`,
    options: [...own, ...queueSpec.options.filter((o) => o.name !== 'json')],
    examples: queueSpec.examples.filter((e) => e.includes(`queue add ${def.name} `)),
  };
}

function bad(message: string): ClipstreamError {
  return new ClipstreamError('ERR_BAD_ARGUMENT', message);
}

const QUEUE_ONLY = ['redis', 'queue', 'attempts', 'backoff_seconds'];

/**
 * Workers run elsewhere, in other folders: local paths travel absolute. Left as they are:
 * URLs and `pipe:` commands, 'none', and, for flags that also take a model name
 * (`--visual_model`, `--detector`, ...), a bare name that is no file here. `a::b` lists are
 * resolved part by part.
 */
export function absolutePath(flag: string, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => absolutePath(flag, x));
  if (typeof v !== 'string' || v === '' || v === 'none') return v;
  if (/::(?![^[]*\])/.test(v))
    return v
      .split(/::(?![^[]*\])/)
      .map((x) => absolutePath(flag, x))
      .join('::');
  if (isRemoteShard(v)) return v;
  // Normalised as a worker normalises it (src/scale/unit-trust.ts), so unit ids listed here match the worker's.
  if (isAbsolute(v)) return normalize(v);
  if (MODEL_NAME_FLAG.test(flag) && !v.includes('/') && !existsSync(v)) return v;
  return resolve(v);
}

/** The job's arguments as they travel with each unit: queue options dropped, local paths absolute. */
export function unitArgs(def: JobDefinition, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    if (QUEUE_ONLY.includes(k)) continue;
    out[k] = def.pathArgs.includes(k) ? absolutePath(k, v) : v;
  }
  return out;
}

/** `clipstream queue add <job> ...` and `clipstream queue status ...`; argv is what follows `queue`. */
export async function runQueue(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { JOB_DEFINITIONS } = await import('./jobs.js');
    const names = Object.keys(JOB_DEFINITIONS).join(', ');
    const job = rest.shift();
    if (!job || job.startsWith('--')) throw bad(`queue add: name the job whose units to queue (one of: ${names})`);
    const def = JOB_DEFINITIONS[job as JobName];
    if (!def) throw bad(`queue add: the queue runs ${names}, not '${job}'`);
    const spec = addSpec(def);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(formatHelp(spec));
      return 0;
    }
    const args = parseArgs(rest, spec);
    const redis = args.redis as string;
    redisConnection(redis);
    const attempts = validateAtLeast(args.attempts as number, 1, '--attempts');
    const backoffMs = Math.round(validateAtLeast(args.backoff_seconds as number, 0, '--backoff_seconds') * 1000);
    const jobArgs = unitArgs(def, args);
    // The job's own checks, here: bad options fail now (exit 2), not on every worker.
    const units = await def.listUnits(def.optionsFromArgs(jobArgs));
    if (units.length === 0) throw bad(`queue add ${job}: the arguments name no unit of work`);
    const secret = process.env[QUEUE_SECRET_ENV] || undefined;
    const r = await addUnits(redis, def.name, units, jobArgs, { queue: args.queue as string, attempts, backoffMs, secret });
    process.stderr.write(
      `clipstream queue: added ${r.added} ${job} unit(s) to queue '${args.queue}' at ${redactRedisUrl(redis)}${secret ? `, signed with ${QUEUE_SECRET_ENV}` : ''}; ${r.existing} were queued already\n`,
    );
    const commands = queuedCommands(def, jobArgs);
    if (commands.length > 0)
      process.stderr.write(
        `clipstream queue: note: these units run ${commands.join(', ')}; workers refuse that unless started with --allow_commands or a matching --allow_command_prefix\n`,
      );
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
      `queue '${args.queue}' at ${redactRedisUrl(args.redis as string)}: waiting ${s.waiting}, active ${s.active}, retrying ${s.delayed}, done ${s.done}, failed ${s.failed}\n`,
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

/** What the worker's flags and environment let queued units do. */
export function trustFromArgs(args: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TrustPolicy {
  const prefixes = ((args.allow_command_prefix as string[] | undefined) ?? []).flatMap((p) => p.split(','));
  if (prefixes.some((p) => p.replace(/^pipe:/, '').trim() === ''))
    throw bad('worker: --allow_command_prefix must not be empty (that would allow every command: say --allow_commands if you mean it)');
  return { allowCommands: args.allow_commands === true, commandPrefixes: prefixes, secret: env[QUEUE_SECRET_ENV] || undefined };
}

/** The worker's trust in one clause of its start line. */
export function describeTrust(t: TrustPolicy): string {
  const commands = t.allowCommands
    ? 'runs any command a unit names (--allow_commands)'
    : t.commandPrefixes?.length
      ? `runs only queued commands starting with ${t.commandPrefixes.map((p) => JSON.stringify(p)).join(', ')}`
      : 'runs no command from the queue';
  return `${commands}${t.secret ? `, and only units signed with ${QUEUE_SECRET_ENV}` : ''}`;
}

/** The `pipe:` commands and programs a job's queued arguments name, for the note at `queue add`. */
function queuedCommands(def: JobDefinition, args: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const o of def.spec.options) {
    const v = args[o.name];
    if (typeof v === 'string' && v !== '' && isExecutableOption(o)) out.push(`--${o.name}`);
    else if ((typeof v === 'string' ? [v] : Array.isArray(v) ? v : []).some((x) => typeof x === 'string' && x.includes('pipe:')))
      out.push(`pipe: commands (--${o.name})`);
  }
  return out;
}

/** `clipstream worker`: runs queue units until SIGTERM/SIGINT (graceful) or a second signal (hand back). */
export async function runWorker(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  redisConnection(args.redis as string);
  const concurrency = args.concurrency as number;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw bad(`worker: --concurrency must be an integer between 1 and 256 but received ${concurrency}`);
  const prefetch = args.prefetch as number;
  if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 16)
    throw bad(`worker: --prefetch must be an integer between 0 and 16 but received ${prefetch}`);
  const lockSeconds = args.lock_seconds as number;
  if (!(lockSeconds >= 1)) throw bad(`worker: --lock_seconds must be at least 1 but received ${lockSeconds}`);
  const trust = trustFromArgs(args);
  const tag = `clipstream worker ${hostname()}:${process.pid}`;
  const say = (line: string) => {
    if (!args.quiet || /^(failed|error)/.test(line)) process.stderr.write(`${tag}: ${line}\n`);
  };
  const { JOB_DEFINITIONS } = await import('./jobs.js');
  // Models stay open across units (opening one costs about as much as a small unit).
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
    definitionRunner(JOB_DEFINITIONS, { models, concurrency, prefetch, trust, onWarning: (w) => say(`warning: ${w.message}`) }),
  );
  say(`waiting for units on queue '${args.queue}' at ${redactRedisUrl(args.redis as string)} (concurrency ${concurrency}); ${describeTrust(trust)}`);
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
