import { ClipstreamError } from '../errors.js';
import { segments, segmentsUnits, type SegmentsReport } from '../jobs/segments.js';
import type { JobDefinition } from '../run/job-definition.js';
import { ProgressDisplay } from '../util/progress.js';
import { parseBitRate, type SegmentsOptions } from '../segments/options.js';
import type { CommandSpec } from '../util/args.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import { describePartition, shareOf } from '../util/partition.js';
import { resolveModelArg } from './model-args.js';

export const SEGMENT_STEPS = ['split', 'infer', 'join', 'remux'] as const;

export const segmentsSpec: CommandSpec = {
  name: 'segments',
  summary: 'long videos through a per-frame model (RVM matting) segment by segment, state carried across segments, joined, audio back.',
  usage:
    'clipstream segments [split|infer|join|remux] (--input=<video> --output=<out.mp4> | --input_dir=<dir> --output_dir=<dir>) [--segment_seconds=15] [--model=rvm_mobilenetv3_fp32.onnx] [options]',
  options: [
    ...partitionOptions,
    { name: 'input', type: 'string', description: 'Source video (any container ffmpeg reads)' },
    { name: 'output', type: 'string', description: 'Output video (.mp4), or a folder for --output_format=png; the work folder is <output>.segments/' },
    { name: 'input_dir', type: 'string', description: 'Folder searched recursively for videos (instead of --input)' },
    { name: 'output_dir', type: 'string', description: 'Folder for the outputs of --input_dir (same relative names, .mp4)' },
    {
      name: 'model',
      type: 'string',
      description:
        "A registry name (rvm-mobilenetv3, rvm-resnet50; see 'clipstream models list') or an ONNX file: RVM (rvm_mobilenetv3_fp32.onnx, rvm_resnet50_fp32.onnx) or a stateless image model; default: the shipped synthetic matting model, which only finds the fixture disc",
    },
    { name: 'model_kind', type: 'string', description: "auto (from the model's input/output names), rvm or image", default: 'auto' },
    {
      name: 'segment_seconds',
      type: 'number',
      description: 'Segment length in seconds (boundaries at the first frame at or after each multiple)',
      default: 15,
    },
    {
      name: 'state',
      type: 'string',
      description:
        "Recurrent state at segment starts: carry (from the previous segment: no pops), warmup:N (re-run N frames before the segment; segments run in parallel) or reset (zeros, the seed's behaviour)",
      default: 'carry',
    },
    { name: 'output_type', type: 'string', description: 'composite (on --background), alpha (matte) or foreground', default: 'composite' },
    {
      name: 'output_format',
      type: 'string',
      description: 'mp4, or png (a PNG per frame in the --output folder: RGB composite, gray alpha, RGBA foreground)',
      default: 'mp4',
    },
    { name: 'background', type: 'string', description: "Composite colour: green (RVM's [0.47, 1, 0.6]), r,g,b (0-1 or 0-255) or #rrggbb", default: 'green' },
    { name: 'encoder', type: 'string', description: 'libx264, libx265, h264_nvenc or hevc_nvenc', default: 'libx264' },
    { name: 'crf', type: 'integer', description: 'Constant quality (0 = lossless with libx264); ignored with --bit_rate', default: 18 },
    { name: 'bit_rate', type: 'string', description: "Target video bit rate, e.g. 40M (the seed's setting) or 8000k" },
    { name: 'preset', type: 'string', description: 'Encoder preset', default: 'veryfast' },
    { name: 'encoder_threads', type: 'integer', description: 'Threads per encoder (default: min(4, cores))' },
    { name: 'audio', type: 'string', description: "copy (the source's first audio stream, same offset) or none", default: 'copy' },
    { name: 'downsample_ratio', type: 'string', description: "RVM's downsample ratio (0-1], or auto: min(1, 512 / longest side)", default: 'auto' },
    { name: 'device', type: 'string', description: 'auto, cpu, cuda or cuda:N (CUDA falls back to CPU with a warning)', default: 'auto' },
    { name: 'threads', type: 'integer', description: 'ONNX Runtime threads (default: all cores)' },
    {
      name: 'batch_size',
      type: 'integer',
      description: 'Largest model batch (frames of several segments with warmup/reset, of one segment for image models); set by backpressure',
      default: 4,
    },
    { name: 'parallel_segments', type: 'integer', description: 'Segments decoded and run at once with --state=warmup:N or reset', default: 2 },
    {
      name: 'keep_segments',
      type: 'boolean',
      description: 'Also write the source segments and file_list.txt to <work>/source/ as the seed does',
      default: false,
    },
    { name: 'step', type: 'string', description: 'all, or one step alone: split, infer, join, remux (also written as a subcommand)', default: 'all' },
    { name: 'quiet', type: 'boolean', description: 'No progress display', default: false },
  ],
  examples: [
    'clipstream segments --input=fixtures/segments/matte_move.mp4 --output=out/matted.mp4 --segment_seconds=2',
    'clipstream segments --input=talk.mp4 --output=talk_matted.mp4 --segment_seconds=15 --model=rvm_mobilenetv3_fp32.onnx --device=cuda --bit_rate=40M',
    'clipstream segments infer --input=talk.mp4 --output=talk_matted.mp4 --state=warmup:30',
  ],
};

/** Job option paths as the CLI spells them, so an error names the flag the user typed. */
const FLAGS: Record<string, string> = {
  'options.segmentSeconds': '--segment_seconds',
  'options.state': '--state',
  'options.outputType': '--output_type',
  'options.format': '--output_format',
  'options.background': '--background',
  'options.encoder': '--encoder',
  'options.crf': '--crf',
  'options.bitRate': '--bit_rate',
  'options.audio': '--audio',
  'options.downsampleRatio': '--downsample_ratio',
  'options.device': '--device',
  'options.intraOpThreads': '--threads',
  'options.batchSize': '--batch_size',
  'options.parallelSegments': '--parallel_segments',
  'options.step': '--step',
  'options.modelKind': '--model_kind',
  'options.encoderThreads': '--encoder_threads',
};

function bad(message: string): ClipstreamError {
  return new ClipstreamError('ERR_INVALID_OPTION', `segments: ${message}`);
}

/** Library options from parsed CLI arguments; errors name the flag. */
function optionsFromArgs(args: Record<string, unknown>): SegmentsOptions {
  const single = args.input !== undefined || args.output !== undefined;
  const folder = args.input_dir !== undefined || args.output_dir !== undefined;
  if (single === folder) throw bad('give either --input and --output, or --input_dir and --output_dir');
  if (single && (!args.input || !args.output)) throw bad(`missing required option --${args.input ? 'output' : 'input'}`);
  if (folder && (!args.input_dir || !args.output_dir)) throw bad(`missing required option --${args.input_dir ? 'output_dir' : 'input_dir'}`);
  const ratioArg = args.downsample_ratio as string;
  const ratio = ratioArg === 'auto' ? 'auto' : Number(ratioArg);
  if (ratio !== 'auto' && !(ratio > 0 && ratio <= 1)) throw bad(`option --downsample_ratio expects auto or a number in (0, 1] but received '${ratioArg}'`);
  let bitRate: number | undefined;
  try {
    bitRate = args.bit_rate === undefined ? undefined : parseBitRate(args.bit_rate as string, '--bit_rate');
  } catch (err) {
    throw bad((err as Error).message);
  }
  return {
    ...(single
      ? { inputs: [args.input as string], outputs: [args.output as string] }
      : { inputDir: args.input_dir as string, outputDir: args.output_dir as string }),
    partition: partitionFromArgs(args),
    model: resolveModelArg(args.model as string | undefined, 'matting', '--model'),
    modelKind: args.model_kind as 'auto',
    segmentSeconds: args.segment_seconds as number,
    state: args.state as string,
    outputType: args.output_type as 'composite',
    format: args.output_format as 'mp4' | 'png',
    background: args.background as string,
    encoder: args.encoder as 'libx264',
    crf: args.crf as number,
    bitRate,
    preset: args.preset as string,
    encoderThreads: args.encoder_threads as number | undefined,
    audio: args.audio as 'copy',
    downsampleRatio: ratio,
    device: args.device as string,
    intraOpThreads: args.threads as number | undefined,
    batchSize: args.batch_size as number,
    parallelSegments: args.parallel_segments as number,
    keepSegments: args.keep_segments as boolean,
    step: args.step as 'all',
  };
}

/** Runs the library job; a bad option's message names the CLI flag. */
async function runWithFlags(options: SegmentsOptions): Promise<SegmentsReport> {
  try {
    return await segments(options);
  } catch (err) {
    const e = err as ClipstreamError;
    if (e.code === 'ERR_INVALID_OPTION') {
      let message = e.message;
      for (const [path, flag] of Object.entries(FLAGS)) message = message.split(path).join(flag);
      throw bad(message);
    }
    throw err;
  }
}

/** `segments` for the queue and the worker: a unit is one input video (its path as given or listed). */
export const segmentsJob: JobDefinition<SegmentsOptions, 'segments'> = {
  name: 'segments',
  spec: segmentsSpec,
  optionsFromArgs,
  pathArgs: ['input', 'output', 'input_dir', 'output_dir'],
  listUnits: async (options) => (await segmentsUnits(options)).inputs,
  // A video is final when its run reports it (joined and remuxed): a worker feeds one run video after video.
  feedable: true,
  run: (options) => runWithFlags(options),
};

/** Runs `clipstream segments`; exit 0 when every video is complete, 1 when one failed or has failed segments (a rerun retries them). */
export async function runSegments(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const options = optionsFromArgs(args);
  const partition = options.partition!;
  const warn = (w: Error) => process.stderr.write(`clipstream segments: warning: ${w.message}\n`);
  const all = await segmentsUnits({ ...options, onWarning: warn });
  const ranked = partition.world > 1 ? ` (${describePartition(partition)})` : '';
  // Each rank takes its share of the videos (a video is the unit: its segments carry state in order).
  if (shareOf(all.inputs, partition).length === 0) {
    process.stderr.write(`clipstream segments${ranked}: no video in this share (${all.inputs.length} in all)\n`);
    return 0;
  }
  const display = args.quiet === true ? null : new ProgressDisplay();
  let report: SegmentsReport;
  try {
    report = await runWithFlags({ ...options, onProgress: display ? (p) => display.update(p) : undefined, signal });
  } finally {
    display?.finish();
  }
  const incomplete = report.videos.filter((v) => v.status !== 'done');
  process.stderr.write(
    `clipstream segments${ranked}: ${report.videos.length - incomplete.length}/${report.videos.length} video(s) complete; ` +
      `${report.videos.reduce((n, v) => n + v.segmentsRun, 0)} segment(s) run, ${report.videos.reduce((n, v) => n + v.segmentsReused, 0)} reused; ` +
      `${report.modelKind} model on ${report.provider}, mean batch ${report.meanBatch.toFixed(2)}, ${report.seconds.toFixed(1)} s` +
      `${report.run.logPath ? `; log ${report.run.logPath}` : ''}\n`,
  );
  for (const v of incomplete) {
    process.stderr.write(`  ${v.input}: ${v.status}: ${v.error}\n`);
    for (const f of v.failed) process.stderr.write(`    segment ${f.index}: ${f.error}\n`);
  }
  for (const v of report.videos) if (v.status === 'done') process.stdout.write(`${v.output}\n`);
  return incomplete.length ? 1 : 0;
}
