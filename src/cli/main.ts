import { readFileSync } from 'node:fs';
import { ClipstreamError } from '../errors.js';
import { describeTools } from '../media/ffmpeg-path.js';
import { bundleClips } from '../shards/bundle.js';
import { cliMessage, formatHelp, parseArgs, type CommandSpec } from '../util/args.js';
import { bundleSpec, commands } from './commands.js';
import { extractSpec, runExtract } from './extract-command.js';
import { modelsBuildSpec, runModelsBuild } from './models-command.js';
import { modelsFetchSpec, modelsListSpec, runModelsFetch, runModelsList } from './models-fetch-command.js';
import { clipsSpec, runClips } from './clips-command.js';
import { runScore, scoreSpec } from './score-command.js';
import { facesSpec, runFaces } from './faces-command.js';
import { SEGMENT_STEPS, runSegments, segmentsSpec } from './segments-command.js';
import { queueSpec, runQueue, runWorker, workerSpec } from './queue-command.js';
import { dedupSpec, runDedup } from './dedup-command.js';
import { runSemdedup, semdedupSpec } from './semdedup-command.js';
import { reportSpec, runReport } from './report-command.js';

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function topHelp(): string {
  return [
    'clipstream: turn raw video into training datasets with Node streams.',
    '',
    'Usage: clipstream <command> [--option=value ...]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    "Run 'clipstream <command> --help' for the options of a command; 'clipstream --version' for the version and the ffmpeg that runs.",
    '',
  ].join('\n');
}

async function runBundle(args: Record<string, unknown>): Promise<number> {
  const summary = await bundleClips({
    inputDir: args.input_dir as string,
    outputDir: args.out_dir as string,
    shardSize: args.shard_size as number,
    startIndex: args.start_index as number,
    overwrite: args.overwrite as boolean,
    keepList: args.keep_list as string | undefined,
  });
  const clips = summary.shards.reduce((n, s) => n + s.clips, 0);
  process.stderr.write(`clipstream bundle: ${clips} clips in ${summary.shards.length} shard(s), ${summary.skipped.length} file(s) skipped\n`);
  for (const s of summary.shards) process.stdout.write(`${s.tar}\n`);
  return 0;
}

/** Runs the CLI; returns the exit code (0: completed, even with skipped clips; 2: bad arguments; 1: failure). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`clipstream ${packageVersion()}\n${describeTools().join('\n')}\n`);
    return 0;
  }
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
  // `report OUT_DIR` is `report --output_dir=OUT_DIR`.
  if (spec === reportSpec && rest[0] && !rest[0].startsWith('-')) rest.unshift(`--output_dir=${rest.shift()}`);
  if (spec === segmentsSpec && (SEGMENT_STEPS as readonly string[]).includes(rest[0] ?? '')) rest.unshift(`--step=${rest.shift()}`);
  // `dedup OUT_DIR` is `dedup --input=OUT_DIR`.
  if (spec === dedupSpec && rest[0] !== undefined && !rest[0].startsWith('-')) rest.unshift(`--input=${rest.shift()}`);
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
    if (spec === scoreSpec) return await runScore(args, controller.signal);
    if (spec === facesSpec) return await runFaces(args, controller.signal);
    if (spec === workerSpec) return await runWorker(args, controller.signal);
    if (spec === segmentsSpec) return await runSegments(args, controller.signal);
    if (spec === dedupSpec) return await runDedup(args, controller.signal);
    if (spec === semdedupSpec) return await runSemdedup(args, controller.signal);
    if (spec === reportSpec) return await runReport(args, controller.signal);
    return 2;
  } catch (err) {
    const e = err as ClipstreamError;
    if (controller.signal.aborted) return 130;
    process.stderr.write(`clipstream ${name}: error: ${cliMessage(e, sub)}\n`);
    if (e.code === 'ERR_INVALID_OPTION') {
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
