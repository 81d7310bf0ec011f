/**
 * The `extract` command: its flags, its options from them, the run with the progress display
 * and the summary, and `extractJob`, what the queue and the worker need to run it unit by unit.
 */
import { extract, type ExtractOptions } from '../jobs/extract.js';
import type { JobDefinition } from '../run/job-definition.js';
import { ProgressDisplay } from '../util/progress.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import { describePartition } from '../util/partition.js';
import { expandShardUrls } from '../shards/shard-source.js';
import { validateNumber } from '../util/validate.js';
import type { CommandSpec } from '../util/args.js';
import { resolveModelArg } from './model-args.js';

export const extractSpec: CommandSpec = {
  name: 'extract',
  summary: 'tar shards of clips in, one feature shard per tar shard out (SlowFast-style visual + VGGish-style audio features).',
  usage: 'clipstream extract --tar_path="<dir>/shard-{000000..000099}.tar" --out_path=<dir> [options]',
  options: [
    { name: 'tar_path', type: 'string[]', description: 'Tar shard path or brace pattern; repeat for several patterns', required: true },
    { name: 'out_path', type: 'string', description: 'Folder for feature shards and the run log', required: true, library: 'outputDir' },
    { name: 'format', type: 'string', description: 'msgpack (msgpack_numpy-compatible) or json', default: 'msgpack' },
    { name: 'model_dir', type: 'string', description: 'Folder holding the models (default: the shipped models/)' },
    { name: 'visual_model', type: 'string', description: "Visual ONNX model (file in model_dir or a path); 'none' to skip", default: 'slowfast_small.onnx' },
    { name: 'audio_model', type: 'string', description: "Audio ONNX model (file in model_dir or a path); 'none' to skip", default: 'vggish_small.onnx' },
    { name: 'device', type: 'string', description: 'auto, cpu, cuda or cuda:N (CUDA falls back to CPU with a warning)', default: 'auto' },
    { name: 'batch_size', type: 'integer', description: 'Largest model batch; the actual size is set by backpressure', default: 8 },
    { name: 'num_workers', type: 'integer', description: 'ffmpeg decoders running at once', default: 2, library: 'parallelDecoders' },
    { name: 'threads', type: 'integer', description: 'ONNX Runtime threads per model (default: all cores)', library: 'intraOpThreads' },
    { name: 'crop', type: 'string', description: "Spatial crop: 'top-left' (ACAV100M spatial index 0) or 'center'", default: 'top-left' },
    {
      name: 'resize',
      type: 'string',
      description: "exact (RGB first, torch bilinear: the reference recipe) or fast (ffmpeg's scaler on YUV, cheaper, not equal)",
      default: 'exact',
    },
    {
      name: 'color_matrix',
      type: 'string',
      description:
        "YUV->RGB matrix: bt601 (whatever the file declares, as the PyAV/ACAV100M/torchvision reference) or source (the file's own matrix, e.g. BT.709)",
      default: 'bt601',
      library: 'colorMatrix',
    },
    { name: 'window_seconds', type: 'number', description: 'Seconds decoded from the start of each clip', default: 10 },
    {
      name: 'min_duration',
      type: 'number',
      description: 'Clips shorter than this are skipped (default: a quarter of the window)',
      library: 'minDurationSeconds',
    },
    { name: 'decode_timeout', type: 'number', description: 'Seconds without output before a hung ffmpeg is killed', default: 30, library: 'stallTimeoutMs' },
    { name: 'overwrite', type: 'boolean', description: 'Recompute shards whose output exists', default: false },
    { name: 'keep_list', type: 'string', description: "A keep list (dedup's keep.txt): clips it does not name are skipped and counted, not failed" },
    { name: 'quiet', type: 'boolean', description: 'No progress display', default: false },
    { name: 'verbose', type: 'boolean', description: 'Also say when --device=auto finds no CUDA and uses the CPU', default: false },
    ...partitionOptions,
  ],
  examples: [
    'clipstream extract --tar_path="fixtures/shards/shard-{000000..000001}.tar" --out_path=out',
    'clipstream extract --tar_path data/shard-{000000..000099}.tar --out_path feats --format json --device cuda:0',
  ],
};

const noneToNull = (v: unknown) => (v === 'none' || v === '' ? null : (v as string | undefined));

/** The extract command's arguments as extract() options; the queue worker runs units with it too. */
export function extractOptionsFromArgs(args: Record<string, unknown>): ExtractOptions {
  // Seconds here, milliseconds in the library: checked as the flag the user wrote.
  validateNumber(args.decode_timeout, '--decode_timeout', 0.001, 86_400);
  return {
    tarPath: args.tar_path as string[],
    outputDir: args.out_path as string,
    format: args.format as 'msgpack' | 'json',
    modelDir: args.model_dir as string | undefined,
    visualModel: resolveModelArg(noneToNull(args.visual_model), 'visual', '--visual_model'),
    audioModel: resolveModelArg(noneToNull(args.audio_model), 'audio', '--audio_model'),
    device: args.device as string,
    batchSize: args.batch_size as number,
    parallelDecoders: args.num_workers as number,
    intraOpThreads: args.threads as number | undefined,
    crop: args.crop as 'top-left' | 'center',
    resize: args.resize as 'exact' | 'fast',
    colorMatrix: args.color_matrix as 'bt601' | 'source',
    windowSeconds: args.window_seconds as number,
    minDurationSeconds: args.min_duration as number | undefined,
    stallTimeoutMs: Math.round((args.decode_timeout as number) * 1000),
    overwrite: args.overwrite as boolean,
    keepList: args.keep_list as string | undefined,
    verbose: args.verbose as boolean,
  };
}

/**
 * Exit codes of `extract`: 0 every shard written (skipped or failed clips are in the log);
 * 3 the run finished but some shard is missing, produced no output or is incomplete (a damaged
 * tar: see its `.incomplete.json`); 1 a shard could not be read (its journal kept: run again to
 * resume) or the run itself failed; 2 bad arguments.
 */
export async function runExtract(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const options = extractOptionsFromArgs(args);
  const partition = partitionFromArgs(args);
  const display = args.quiet ? null : new ProgressDisplay(process.stderr);
  const report = await extract({ ...options, partition, onProgress: display ? (p) => display.update(p) : undefined, signal });
  display?.finish();
  const count = (...statuses: string[]) => report.shards.filter((s) => statuses.includes(s.status)).length;
  const written = count('written', 'written (incomplete)');
  const existing = count('skipped (output exists)', 'skipped (output exists, incomplete)');
  const missing = count('missing');
  const noOutput = count('no output');
  const incomplete = count('written (incomplete)', 'skipped (output exists, incomplete)');
  const locked = count('skipped (locked)');
  const unread = count('failed (source)');
  const retry = count('failed (transient)');
  process.stderr.write(
    `clipstream extract${partition.world > 1 ? ` (${describePartition(partition)})` : ''}: ${written} shard(s) written, ${existing} skipped (output exists), ` +
      `${locked ? `${locked} skipped (locked by another run), ` : ''}${unread ? `${unread} could not be read (run again to resume), ` : ''}${retry ? `${retry} not finished (transient failures: run again to retry them), ` : ''}${missing} missing` +
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
  if (unread + retry > 0) return 1;
  return missing + noOutput + incomplete > 0 ? 3 : 0;
}

/** `extract` for the queue and the worker: one unit per expanded shard url. */
export const extractJob: JobDefinition<ExtractOptions, 'extract'> = {
  name: 'extract',
  spec: extractSpec,
  optionsFromArgs: extractOptionsFromArgs,
  // The queue leaves http(s):// and pipe: shards, and model names without a '/', as they are.
  pathArgs: ['tar_path', 'out_path', 'model_dir', 'visual_model', 'audio_model'],
  listUnits: async (options) => expandShardUrls(options.tarPath),
  // A shard is final when its writer reports it: a worker feeds one run shard after shard.
  feedable: true,
  run: (options) => extract(options),
};
