import { parseScorerSpec } from '../infer/scorers.js';
import { listFolderVideos } from '../media/video-folder.js';
import { faces, type FacesOptions } from '../jobs/faces.js';
import type { JobDefinition } from '../run/job-definition.js';
import { ProgressDisplay } from '../util/progress.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import { defaultWarningHandler } from '../types.js';
import type { CommandSpec } from '../util/args.js';
import { resolveDetectorArg, SYNTHETIC_NO_FACE_HINT } from './model-args.js';

export const facesSpec: CommandSpec = {
  name: 'faces',
  summary: 'a folder of videos in, face clips (mp4), an optional LMDB frame store and metadata.csv/msgpack out.',
  usage: 'clipstream faces --input_dir=<videos> --output_dir=<dir> [--make_lmdb] [options]',
  options: [
    { name: 'input_dir', type: 'string', description: 'Folder searched recursively for videos (.mp4 .mkv .webm .mov .avi .m4v .mpg .ts)', required: true },
    { name: 'output_dir', type: 'string', description: 'Folder for clips/, audio/, faces.lmdb/, metadata.csv, metadata.msgpack', required: true },
    {
      name: 'detector',
      type: 'string',
      description:
        "Face detector: a registry name (ultraface-rfb-640, scrfd-10g, yunet, ...; see 'clipstream models list') or an ONNX file (SCRFD, YuNet or UltraFace); 'synthetic' for the tests' synthetic one (models/face_detector_synthetic.onnx), which only finds the fixture face. Default: a registry detector fetched into the model cache, else the shipped UltraFace RFB-640 (models/ultraface_rfb_640.onnx, MIT)",
    },
    { name: 'detector_format', type: 'string', description: 'auto, scrfd, yunet or ultraface', default: 'auto' },
    {
      name: 'detector_input_size',
      type: 'integer',
      description: 'Longest model-input side for detectors with a dynamic input (default: model metadata, else 640)',
    },
    { name: 'score_threshold', type: 'number', description: 'Minimum detector confidence', default: 0.5 },
    { name: 'nms_threshold', type: 'number', description: 'IoU above which the weaker of two boxes is dropped', default: 0.4 },
    { name: 'min_face_size', type: 'number', description: 'Ignore faces whose shorter side is below this many source pixels', default: 0 },
    { name: 'sample_every', type: 'integer', description: 'Run the detector on every k-th frame', default: 2 },
    { name: 'iou_threshold', type: 'number', description: 'IoU that links a detection to a track', default: 0.3 },
    { name: 'max_gap', type: 'integer', description: 'Sampled frames a face may be missing before its track ends', default: 2 },
    {
      name: 'max_box_variation',
      type: 'number',
      description: 'Largest change of a box coordinate within a kept block, as a fraction of the frame (seed 002: 0.06)',
      default: 0.06,
    },
    { name: 'min_detections', type: 'integer', description: 'Keep blocks with more than this many detections (seed 002: 16)', default: 16 },
    { name: 'enlarge', type: 'number', description: 'Crop enlargement around the face box (seed 002: 1.4)', default: 1.4 },
    { name: 'crop_mode', type: 'string', description: "Crop box per block: 'union' or 'mean' of its boxes", default: 'union' },
    { name: 'size', type: 'integer', description: 'Side of the square face clips and LMDB frames', default: 512 },
    { name: 'make_lmdb', type: 'boolean', description: 'Also write the frames to faces.lmdb (py-lmdb readable)', default: false },
    { name: 'image_format', type: 'string', description: 'LMDB frame encoding: jpeg or png', default: 'jpeg' },
    { name: 'jpeg_quality', type: 'integer', description: 'JPEG quality of LMDB frames', default: 95 },
    { name: 'audio', type: 'string', description: "'embed' (audio in the mp4), 'separate' (WAV in audio/) or 'none'", default: 'embed' },
    { name: 'crf', type: 'integer', description: 'libx264 CRF of the face clips', default: 18 },
    { name: 'preset', type: 'string', description: 'libx264 preset', default: 'veryfast' },
    { name: 'scorer', type: 'string[]', description: 'Extra ONNX scorer name=path[:imagenet|clip|unit|raw], column {name}_score; repeatable' },
    { name: 'score_frames', type: 'integer', description: 'Frames per clip used for statistics and scorers', default: 8 },
    {
      name: 'previews',
      type: 'boolean',
      description: 'Also write previews/<clip_key>.webp: a small animated WebP of each face clip, from the frames it encodes',
      default: false,
    },
    { name: 'device', type: 'string', description: 'auto, cpu, cuda or cuda:N (CUDA falls back to CPU with a warning)', default: 'auto' },
    { name: 'batch_size', type: 'integer', description: 'Largest detector batch; the actual size is set by backpressure', default: 8 },
    { name: 'num_workers', type: 'integer', description: 'Videos decoded for detection at once', default: 2, library: 'parallelVideos' },
    { name: 'threads', type: 'integer', description: 'ONNX Runtime threads per model (default: all cores)' },
    { name: 'overwrite', type: 'boolean', description: 'Redo videos finished in an earlier run', default: false },
    { name: 'quiet', type: 'boolean', description: 'No progress lines', default: false },
    ...partitionOptions,
  ],
  examples: [
    'clipstream faces --input_dir=fixtures/faces --output_dir=out/faces --make_lmdb',
    'clipstream faces --input_dir=downloads --output_dir=faces --detector=models/scrfd_10g_bnkps.onnx --make_lmdb --device=cuda:0 --scorer=hyperiqa=models/hyperiqa.onnx',
  ],
};

/**
 * Resolves like `run`, but if the process runs out of work while `run` is still pending (a
 * promise nobody will settle: the bug behind a run that "finished" with exit 0 and nothing
 * recorded), says so and sets exit code 1 instead of letting Node exit 0.
 */
export function guardUnsettled<T>(run: Promise<T>, what: string): Promise<T> {
  const onBeforeExit = () => {
    process.stderr.write(
      `clipstream ${what}: internal error: the run stopped before it finished (nothing was left to wait for); its output may be incomplete\n`,
    );
    process.exitCode = 1;
  };
  process.once('beforeExit', onBeforeExit);
  const off = () => process.off('beforeExit', onBeforeExit);
  run.then(off, off);
  return run;
}

/** The library options of `faces` from parsed CLI arguments (with the detector argument resolved). */
export function facesOptionsFromArgs(
  args: Record<string, unknown>,
  det: ReturnType<typeof resolveDetectorArg> = resolveDetectorArg(args.detector as string | undefined, () => {}),
): FacesOptions {
  return {
    partition: partitionFromArgs(args),
    inputDir: args.input_dir as string,
    outputDir: args.output_dir as string,
    detector: det.path,
    detectorFormat: (args.detector_format === 'auto' && det.format ? det.format : args.detector_format) as 'auto',
    detectorInputSize: args.detector_input_size as number | undefined,
    scoreThreshold: args.score_threshold as number,
    nmsThreshold: args.nms_threshold as number,
    minFaceSize: args.min_face_size as number,
    sampleEvery: args.sample_every as number,
    iouThreshold: args.iou_threshold as number,
    maxGap: args.max_gap as number,
    maxBoxVariation: args.max_box_variation as number,
    minDetections: args.min_detections as number,
    enlarge: args.enlarge as number,
    cropMode: args.crop_mode as 'union',
    size: args.size as number,
    makeLmdb: args.make_lmdb as boolean,
    imageFormat: args.image_format as 'jpeg',
    jpegQuality: args.jpeg_quality as number,
    audio: args.audio as 'embed',
    crf: args.crf as number,
    preset: args.preset as string,
    scorers: ((args.scorer as string[] | undefined) ?? []).map((s) => parseScorerSpec(s, 'scorer')),
    scoreFrames: args.score_frames as number,
    previews: args.previews as boolean,
    device: args.device as string,
    batchSize: args.batch_size as number,
    parallelVideos: args.num_workers as number,
    intraOpThreads: args.threads as number | undefined,
    overwrite: args.overwrite as boolean,
  };
}

/** `faces` for the queue and the worker: units are the videos' paths relative to --input_dir. */
export const facesJob: JobDefinition<FacesOptions, 'faces'> = {
  name: 'faces',
  spec: facesSpec,
  optionsFromArgs: (args) => facesOptionsFromArgs(args),
  // --detector may be a registry name, so it is not made absolute: give workers an absolute path or a name.
  pathArgs: ['input_dir', 'output_dir'],
  listUnits: async (o) => (await listFolderVideos(o.inputDir, {}, o.onWarning ?? defaultWarningHandler)).map((s) => s.rel),
  run: (o) => faces(o),
};

/** Runs `clipstream faces` with parsed arguments; returns the exit code (0 even when some videos failed). */
export async function runFaces(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const quiet = args.quiet as boolean;
  const det = resolveDetectorArg(args.detector as string | undefined, (line) => process.stderr.write(`clipstream faces: ${line}\n`));
  const display = quiet ? null : new ProgressDisplay();
  let report: Awaited<ReturnType<typeof faces>>;
  try {
    report = await guardUnsettled(faces({ ...facesOptionsFromArgs(args, det), onProgress: display ? (p) => display.update(p) : undefined, signal }), 'faces');
  } finally {
    display?.finish();
  }
  const done = report.videos.filter((v) => v.status === 'done').length;
  const before = report.videos.filter((v) => v.status === 'skipped (done before)').length;
  const locked = report.videos.filter((v) => v.status === 'skipped (locked)').length;
  const failed = report.videos.filter((v) => v.status === 'failed');
  process.stderr.write(
    `clipstream faces: ${done} video(s) processed, ${before} done before, ${failed.length} failed; ${report.rows.length} face clip(s) in total in ${report.seconds.toFixed(1)} s` +
      `${locked > 0 ? `; ${locked} skipped (another run holds them)` : ''}${report.lmdbPath ? `; LMDB: ${report.lmdbPath}${report.lmdb?.state === 'current' ? ' (already up to date)' : ''}` : ''}\n`,
  );
  const waiting = report.lmdb?.state === 'waiting' ? report.lmdb.waitingFor.length : 0;
  if (waiting > 0)
    process.stderr.write(
      `clipstream faces: faces.lmdb not written: waiting for ${waiting} more video(s) to be recorded (by other ranks, workers or a later run; the run that records the last one writes it)\n`,
    );
  for (const f of failed) process.stderr.write(`  ${f.file}: ${f.error}\n`);
  if (det.synthetic && done > 0 && report.rows.length === 0) process.stderr.write(`clipstream faces: ${SYNTHETIC_NO_FACE_HINT}\n`);
  return 0;
}
