import { ClipstreamError } from '../errors.js';
import { extract, type ExtractOptions } from '../jobs/extract.js';
import { bundleClips } from '../shards/bundle.js';
import { formatHelp, parseArgs, type CommandSpec } from './args.js';
import { bundleSpec, commands, extractSpec } from './commands.js';
import { modelsBuildSpec, runModelsBuild } from './models-command.js';
import { modelsFetchSpec, modelsListSpec, runModelsFetch, runModelsList } from './models-fetch-command.js';
import { clipsSpec, runClips } from './clips-command.js';
import { facesSpec, runFaces } from './faces-command.js';
import { resolveModelArg } from './model-args.js';
import { SEGMENT_STEPS, runSegments, segmentsSpec } from './segments-command.js';
import { ProgressDisplay } from './progress.js';
import { queueSpec, runQueue, runWorker, workerSpec } from './queue-command.js';
import { partitionFromArgs } from '../scale/cli-options.js';
import { describePartition } from '../scale/partition.js';

function topHelp(): string {
  return [
    'clipstream: turn raw video into training datasets with Node streams.',
    '',
    'Usage: clipstream <command> [--option=value ...]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    "Run 'clipstream <command> --help' for the options of a command.",
    '',
  ].join('\n');
}

const noneToNull = (v: unknown) => (v === 'none' || v === '' ? null : (v as string | undefined));

/** The extract command's arguments as extract() options; the queue worker runs units with it too. */
export function extractOptionsFromArgs(args: Record<string, unknown>): ExtractOptions {
  return {
    tarPath: args.tar_path as string[],
    outPath: args.out_path as string,
    format: args.format as 'msgpack' | 'json',
    modelDir: args.model_dir as string | undefined,
    visualModel: resolveModelArg(noneToNull(args.visual_model), 'visual', '--visual_model'),
    audioModel: resolveModelArg(noneToNull(args.audio_model), 'audio', '--audio_model'),
    device: args.device as string,
    batchSize: args.batch_size as number,
    numWorkers: args.num_workers as number,
    intraOpThreads: args.threads as number | undefined,
    crop: args.crop as 'top-left' | 'center',
    windowSeconds: args.window_seconds as number,
    minDurationSeconds: args.min_duration as number | undefined,
    stallTimeoutMs: Math.round((args.decode_timeout as number) * 1000),
    overwrite: args.overwrite as boolean,
  };
}

async function runExtract(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const partition = partitionFromArgs(args);
  const display = args.quiet ? null : new ProgressDisplay(process.stderr);
  const report = await extract({
    ...extractOptionsFromArgs(args),
    partition,
    onProgress: display ? (p) => display.update(p) : undefined,
    signal,
  });
  display?.finish();
  const written = report.shards.filter((s) => s.status === 'written').length;
  const existing = report.shards.filter((s) => s.status === 'skipped (output exists)').length;
  const missing = report.shards.filter((s) => s.status === 'missing').length;
  const locked = report.shards.filter((s) => s.status === 'skipped (locked)').length;
  const unread = report.shards.filter((s) => s.status === 'failed (source)').length;
  process.stderr.write(
    `clipstream extract${partition.world > 1 ? ` (${describePartition(partition)})` : ''}: ${written} shard(s) written, ${existing} skipped (output exists), ${locked ? `${locked} skipped (locked by another run), ` : ''}${unread ? `${unread} could not be read (run again to resume), ` : ''}${missing} missing; ` +
      `${report.clipsWritten} clips written, ${report.clipsSkipped} skipped, ${report.clipsFailed} failed in ${report.seconds.toFixed(1)} s ` +
      `(${report.clipsPerSecond.toFixed(2)} clips/s). Log: ${report.logPath}\n`,
  );
  for (const s of report.shards) {
    for (const f of [...s.failed, ...s.skipped]) process.stderr.write(`  ${s.shard}: ${f.reason}\n`);
    if (s.tarError) process.stderr.write(`  ${s.shard}: ${s.tarError}\n`);
    if (s.lockedBy) process.stderr.write(`  ${s.shard}: ${s.lockedBy}\n`);
  }
  // A shard left unread (its journal kept) is worth a retry: exit 1 lets a scheduler rerun the task.
  return unread > 0 ? 1 : 0;
}

async function runBundle(args: Record<string, unknown>): Promise<number> {
  const summary = await bundleClips({
    inputDir: args.input_dir as string,
    outDir: args.out_dir as string,
    shardSize: args.shard_size as number,
    startIndex: args.start_index as number,
    overwrite: args.overwrite as boolean,
  });
  const clips = summary.shards.reduce((n, s) => n + s.clips, 0);
  process.stderr.write(`clipstream bundle: ${clips} clips in ${summary.shards.length} shard(s), ${summary.skipped.length} file(s) skipped\n`);
  for (const s of summary.shards) process.stdout.write(`${s.tar}\n`);
  return 0;
}

/** Runs the CLI; returns the exit code (0: completed, even with skipped clips; 2: bad arguments; 1: failure). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topHelp());
    return name ? 0 : 2;
  }
  const spec: CommandSpec | undefined = commands.find((c) => c.name === name);
  if (!spec) {
    process.stderr.write(`clipstream: unknown command '${name}'\n\n${topHelp()}`);
    return 2;
  }
  // `models` has subcommands: build, list, fetch NAME.
  let sub: CommandSpec = spec;
  let modelName: string | undefined;
  if (spec === modelsBuildSpec) {
    const word = rest[0];
    if (word === 'build' || word === 'list' || word === 'fetch') rest.shift();
    if (word === 'list') sub = modelsListSpec;
    if (word === 'fetch') {
      sub = modelsFetchSpec;
      if (rest[0] && !rest[0].startsWith('-')) modelName = rest.shift();
    }
    if (word !== 'build' && word !== 'list' && word !== 'fetch' && !(rest.includes('--help') || rest.includes('-h'))) {
      process.stderr.write(`clipstream models: expected a subcommand: build, list or fetch NAME\n\n${formatHelp(spec)}`);
      return 2;
    }
  }
  // `segments split|infer|join|remux ...` is `segments --step=<step> ...`.
  if (spec === segmentsSpec && (SEGMENT_STEPS as readonly string[]).includes(rest[0] ?? '')) rest.unshift(`--step=${rest.shift()}`);
  if ((rest.includes('--help') || rest.includes('-h')) && !(spec === queueSpec && rest[0] === 'add')) {
    process.stdout.write(formatHelp(sub));
    return 0;
  }
  const controller = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nclipstream: interrupted; stopping (finished clips are kept, the next run resumes)\n');
    controller.abort(new ClipstreamError('ERR_PIPELINE', 'interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // `queue` has subcommands (`add <job>`, `status`) with options of their own.
    if (spec === queueSpec) return await runQueue(rest);
    const args = parseArgs(rest, sub);
    if (sub === modelsListSpec) return await runModelsList(args);
    if (sub === modelsFetchSpec) return await runModelsFetch(modelName, args, controller.signal);
    if (spec === extractSpec) return await runExtract(args, controller.signal);
    if (spec === bundleSpec) return await runBundle(args);
    if (spec === modelsBuildSpec) return await runModelsBuild(args);
    if (spec === clipsSpec) return await runClips(args, controller.signal);
    if (spec === facesSpec) return await runFaces(args, controller.signal);
    if (spec === workerSpec) return await runWorker(args, controller.signal);
    if (spec === segmentsSpec) return await runSegments(args, controller.signal);
    return 2;
  } catch (err) {
    const e = err as ClipstreamError;
    if (controller.signal.aborted) return 130;
    process.stderr.write(`clipstream ${name}: error: ${e.message}\n`);
    if (e.code === 'ERR_BAD_ARGUMENT' || e.code === 'ERR_INVALID_OPTION') {
      process.stderr.write(`Run 'clipstream ${name} --help' for usage.\n`);
      return 2;
    }
    if (process.env.CLIPSTREAM_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
