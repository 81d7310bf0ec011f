import { ClipstreamError } from '../errors.js';
import { extract, type ExtractOptions } from '../jobs/extract.js';
import { bundleClips } from '../shards/bundle.js';
import { cliMessage, formatHelp, parseArgs, type CommandSpec } from './args.js';
import { validateNumber } from '../util/validate.js';
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
  // Seconds here, milliseconds in the library: checked as the flag the user wrote.
  validateNumber(args.decode_timeout, '--decode_timeout', 0.001, 86_400);
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
    resize: args.resize as 'exact' | 'fast',
    windowSeconds: args.window_seconds as number,
    minDurationSeconds: args.min_duration as number | undefined,
    stallTimeoutMs: Math.round((args.decode_timeout as number) * 1000),
    overwrite: args.overwrite as boolean,
    verbose: args.verbose as boolean,
  };
}

/**
 * Exit codes of `extract`: 0 every shard written (skipped or failed clips are in the log);
 * 3 the run finished but some shard is missing, produced no output or is incomplete (a damaged
 * tar: see its `.incomplete.json`); 1 a shard could not be read (its journal kept: run again to
 * resume) or the run itself failed; 2 bad arguments.
 */
async function runExtract(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const options = extractOptionsFromArgs(args);
  const partition = partitionFromArgs(args);
  const display = args.quiet ? null : new ProgressDisplay(process.stderr);
  const report = await extract({
    ...options,
    partition,
    onProgress: display ? (p) => display.update(p) : undefined,
    signal,
  });
  display?.finish();
  const count = (...statuses: string[]) => report.shards.filter((s) => statuses.includes(s.status)).length;
  const written = count('written', 'written (incomplete)');
  const existing = count('skipped (output exists)', 'skipped (output exists, incomplete)');
  const missing = count('missing');
  const noOutput = count('no output');
  const incomplete = count('written (incomplete)', 'skipped (output exists, incomplete)');
  const locked = count('skipped (locked)');
  const unread = count('failed (source)');
  process.stderr.write(
    `clipstream extract${partition.world > 1 ? ` (${describePartition(partition)})` : ''}: ${written} shard(s) written, ${existing} skipped (output exists), ` +
      `${locked ? `${locked} skipped (locked by another run), ` : ''}${unread ? `${unread} could not be read (run again to resume), ` : ''}${missing} missing` +
      (noOutput ? `, ${noOutput} with no output (nothing could be read)` : '') +
      (incomplete ? `, ${incomplete} incomplete (damaged tar, see the log)` : '') +
      '; ' +
      `${report.clipsWritten} clips written, ${report.clipsSkipped} skipped, ${report.clipsFailed} failed in ${report.seconds.toFixed(1)} s ` +
      `(${report.clipsPerSecond.toFixed(2)} clips/s). Log: ${report.logPath}\n`,
  );
  for (const s of report.shards) {
    for (const f of [...s.failed, ...s.skipped]) process.stderr.write(`  ${s.shard}: ${f.reason}\n`);
    if (s.tarError) process.stderr.write(`  ${s.shard}: ${s.tarError}\n`);
    if (s.lockedBy) process.stderr.write(`  ${s.shard}: ${s.lockedBy}\n`);
    if (s.incomplete) process.stderr.write(`  ${s.shard}: incomplete: ${s.incomplete.reason}\n`);
    if (s.status === 'no output') process.stderr.write(`  ${s.shard}: no output written: nothing could be read from ${s.url}\n`);
  }
  // A shard left unread (its journal kept) is worth a retry: exit 1 lets a scheduler rerun the task.
  if (unread > 0) return 1;
  return missing + noOutput + incomplete > 0 ? 3 : 0;
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
    process.stderr.write(`clipstream ${name}: error: ${cliMessage(e, sub)}\n`);
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
