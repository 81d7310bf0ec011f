import { listClipSources } from '../clips/sources.js';
import { ClipstreamError } from '../errors.js';
import { clips, type ClipsOptions, type ClipsReport } from '../jobs/clips.js';
import type { JobDefinition } from '../run/job-definition.js';
import { ProgressDisplay } from '../util/progress.js';
import type { CommandSpec } from '../util/args.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import { pluginScorerOptions } from './score-command.js';
import { TABLES_EVERY_S } from '../clips/table.js';

export const clipsSpec: CommandSpec = {
  name: 'clips',
  summary: 'long source videos in, frame-accurate clips (and tar shards that extract reads) out, with per-video and per-clip tables.',
  usage: 'clipstream clips --sources=<list.csv|dir> --out_dir=<dir> (--spans=<spans.csv> | --clip_len_s=<s> | --clip_duration=<min> | --split=shots) [options]',
  options: [
    { name: 'sources', type: 'string', description: 'CSV/TSV/JSONL with video_id, path and/or url columns, or a folder of videos', required: true },
    { name: 'out_dir', type: 'string', description: 'Folder for clips/, shards/, videos.csv and clips.csv', required: true, library: 'outputDir' },
    {
      name: 'spans',
      type: 'string',
      description: 'Span table: Sekai names <vid>_<start_frame>_<end_frame>, or video_id with start_frame/end_frame or start_s/end_s',
    },
    { name: 'clip_len_s', type: 'number', description: 'Fixed stride: clip length in seconds' },
    { name: 'clip_stride_s', type: 'number', description: 'Fixed stride: seconds between clip starts (default: clip_len_s)' },
    {
      name: 'min_clip_length_s',
      type: 'number',
      description: 'Fixed stride: shorter tail clips are not made; shots: shorter shots (after --trim_s) make no clip',
      default: 0,
    },
    { name: 'limit_clips', type: 'integer', description: 'Fixed stride: at most this many clips per video (0: no limit)', default: 0 },
    { name: 'clip_duration', type: 'number', description: 'Consecutive parts of this many minutes (seed 002)' },
    { name: 'split', type: 'string', description: "'shots': cut where the shot changes (a detection pass per video; shots.csv)" },
    {
      name: 'shot_detector',
      type: 'string',
      description: "Shots: 'content' (PySceneDetect's ContentDetector), 'adaptive' or 'transnetv2'",
      default: 'content',
    },
    { name: 'shot_model', type: 'string', description: 'Shots, transnetv2: its ONNX file (clipstream models build --arch=transnetv2)' },
    { name: 'shot_threshold', type: 'number', description: "Shots: the detector's threshold (content: 27 on its 0-255 scale; adaptive: its ratio, 3)" },
    { name: 'min_shot_s', type: 'number', description: 'Shots: least seconds between two cuts (default: 15 frames, as PySceneDetect)' },
    { name: 'shot_fades', type: 'boolean', description: 'Shots: a fade to and from black is a boundary (--no_shot_fades: not)', default: true },
    { name: 'max_clip_length_s', type: 'number', description: 'Shots: longer shots are cut to this length (see --max_length_mode); default no limit' },
    {
      name: 'max_length_mode',
      type: 'string',
      description: "Shots longer than --max_clip_length_s: 'stride' (consecutive pieces) or 'truncate' (the first piece only)",
      default: 'stride',
    },
    { name: 'trim_s', type: 'number', description: 'Shots: seconds taken off each end of a shot before it becomes a clip', default: 0 },
    { name: 'past_end', type: 'string', description: "Spans past the end of a video: 'clip' (cut at the end) or 'drop'", default: 'clip' },
    { name: 'num_videos', type: 'integer', description: 'Only the first N sources' },
    { name: 'num_processes', type: 'integer', description: 'Videos worked on at once', default: 1, library: 'parallelVideos' },
    { name: 'encoder', type: 'string', description: 'libx264, libx265, h264_nvenc or hevc_nvenc (NVENC falls back to CPU with a warning)', default: 'libx264' },
    { name: 'encoder_threads', type: 'integer', description: 'Threads per encoder', default: 1 },
    { name: 'encode_batch_size', type: 'integer', description: 'ffmpeg processes per video at once (chunks; clips in per-clip mode)', default: 1 },
    {
      name: 'num_clips_per_chunk',
      type: 'integer',
      description: 'Clips encoded by one ffmpeg that decodes the video once (default: 32 at 640x360, fewer for larger sources: 3 at 1080p)',
    },
    { name: 'use_input_bit_rate', type: 'boolean', description: "Encode at the source's bit rate instead of constant quality", default: false },
    { name: 'crf', type: 'number', description: 'Constant quality (x264/x265 CRF, NVENC CQ); 0 is lossless with libx264', default: 23 },
    { name: 'preset', type: 'string', description: "Encoder preset (default: the encoder's own)" },
    { name: 'mode', type: 'string', description: "'one-pass' (decode once per chunk) or 'per-clip' (one ffmpeg per clip)", default: 'one-pass' },
    { name: 'ignore_audio', type: 'boolean', description: 'Mute clips: skip the FLAC split and AAC remix', default: false },
    { name: 'shard_size', type: 'integer', description: 'Also pack clips into shards/shard-NNNNNN.{tar,json} of this many clips (0: folder only)', default: 0 },
    {
      name: 'keep_list',
      type: 'string',
      description: "A keep list (dedup's keep.txt): the shards hold only the clips it names (the clips folder and tables keep them all)",
    },
    {
      name: 'tables_every_s',
      type: 'number',
      description:
        'Rewrite videos.csv/clips.csv while the list is not complete at most this often (0: after every video); the run that completes the list always does',
      default: TABLES_EVERY_S,
    },
    {
      name: 'scores',
      type: 'string',
      description:
        "Per-clip scores in clips.csv, computed by the ffmpeg that cuts the clip: a list of motion, black, frozen, sharpness, brightness, contrast, colorfulness, text_area; 'all'; or 'none'",
      default: 'motion,black,frozen,sharpness,brightness,contrast,colorfulness',
    },
    ...pluginScorerOptions,
    {
      name: 'filter',
      type: 'string',
      description:
        "Keep clips passing every term, e.g. 'motion>=0.02,black<=0.5,duration>=2' (scores and duration, num_frames, width, height, fps); the others get kept=false and a filter_reason",
    },
    {
      name: 'filtered',
      type: 'string',
      description: "Clips a filter keeps out: 'keep' (their files go to out_dir/filtered/) or 'skip' (not written)",
      default: 'keep',
    },
    {
      name: 'previews',
      type: 'boolean',
      description:
        "Also write previews/<clip stem>.webp: a small animated WebP of each clip from the frames the cut decodes for scores, and clips.csv's preview column",
      default: false,
    },
    { name: 'ffmpeg_path', type: 'string', description: 'ffmpeg binary to use (e.g. one with NVENC); default FFMPEG_PATH or the bundled one' },
    { name: 'yt_dlp_path', type: 'string', description: 'yt-dlp binary for YouTube ids (default YTDLP_PATH or yt-dlp on PATH)' },
    { name: 'download_retries', type: 'integer', description: 'Retries of a failed HTTP download (resuming the partial file)', default: 3 },
    { name: 'max_download_mb', type: 'number', description: 'Refuse downloads bigger than this many MiB' },
    { name: 'quiet', type: 'boolean', description: 'No per-video lines', default: false },
    ...partitionOptions,
  ],
  examples: [
    'clipstream clips --sources=fixtures/sources/sources.csv --out_dir=out/clips --clip_len_s=4 --shard_size=4',
    'clipstream clips --sources=videos.csv --spans=sekai-real-walking-hq.csv --out_dir=out --encoder=hevc_nvenc --ffmpeg_path=/usr/bin/ffmpeg',
    'clipstream clips --sources=videos/ --split=shots --min_clip_length_s=2 --max_clip_length_s=10 --trim_s=0.25 --out_dir=out',
    'clipstream clips --sources=urls.csv --clip_duration=1 --num_videos=10 --num_processes=4 --out_dir=downloads',
  ],
};

/** The CLI flag of each library option, so that messages name what the user typed. */
const FLAGS: Partial<Record<keyof ClipsOptions, string>> = {
  sources: 'sources',
  outputDir: 'out_dir',
  spans: 'spans',
  clipLenS: 'clip_len_s',
  clipStrideS: 'clip_stride_s',
  minClipLengthS: 'min_clip_length_s',
  limitClips: 'limit_clips',
  partMinutes: 'clip_duration',
  pastEnd: 'past_end',
  split: 'split',
  shotDetector: 'shot_detector',
  shotThreshold: 'shot_threshold',
  shotModel: 'shot_model',
  minShotS: 'min_shot_s',
  shotFades: 'shot_fades',
  maxClipLengthS: 'max_clip_length_s',
  maxLengthMode: 'max_length_mode',
  trimS: 'trim_s',
  numVideos: 'num_videos',
  parallelVideos: 'num_processes',
  encoder: 'encoder',
  encoderThreads: 'encoder_threads',
  encodeBatchSize: 'encode_batch_size',
  numClipsPerChunk: 'num_clips_per_chunk',
  useInputBitRate: 'use_input_bit_rate',
  crf: 'crf',
  preset: 'preset',
  mode: 'mode',
  ignoreAudio: 'ignore_audio',
  shardSize: 'shard_size',
  keepList: 'keep_list',
  tablesEveryS: 'tables_every_s',
  scores: 'scores',
  scorers: 'scorer',
  scorerFrames: 'scorer_frames',
  filter: 'filter',
  filtered: 'filtered',
  previews: 'previews',
  ffmpegPath: 'ffmpeg_path',
  ytDlpPath: 'yt_dlp_path',
  downloadRetries: 'download_retries',
  maxDownloadBytes: 'max_download_mb',
};

/**
 * `options.clipLenS` becomes `--clip_len_s`, and "of at least 5e-324" (the smallest
 * positive number) "greater than 0".
 *
 * @example withClipsFlags('Expected number of at least 5e-324 for options.clipLenS but received 0 of type number')
 * // 'Expected number greater than 0 for --clip_len_s but received 0'
 */
export function withClipsFlags(message: string): string {
  return message
    .replace(/options\.(\w+)/g, (m, name: string) => (FLAGS[name as keyof ClipsOptions] ? `--${FLAGS[name as keyof ClipsOptions]}` : m))
    .replace(/ of at least 5e-324/g, ' greater than 0')
    .replace(/ between 5e-324 and /g, ' greater than 0 and at most ')
    .replace(/ of type (number|string|boolean)\b/g, '');
}

/** The library options from parsed CLI arguments. */
export function clipsOptionsFromArgs(args: Record<string, unknown>): ClipsOptions {
  return {
    partition: partitionFromArgs(args),
    sources: args.sources as string,
    outputDir: args.out_dir as string,
    spans: args.spans as string | undefined,
    clipLenS: args.clip_len_s as number | undefined,
    clipStrideS: args.clip_stride_s as number | undefined,
    minClipLengthS: args.min_clip_length_s as number | undefined,
    limitClips: args.limit_clips as number | undefined,
    partMinutes: args.clip_duration as number | undefined,
    pastEnd: args.past_end as 'clip' | 'drop' | undefined,
    split: args.split as 'shots' | undefined,
    shotDetector: args.shot_detector as ClipsOptions['shotDetector'],
    shotThreshold: args.shot_threshold as number | undefined,
    shotModel: args.shot_model as string | undefined,
    minShotS: args.min_shot_s as number | undefined,
    shotFades: args.shot_fades as boolean | undefined,
    maxClipLengthS: args.max_clip_length_s as number | undefined,
    maxLengthMode: args.max_length_mode as 'truncate' | 'stride' | undefined,
    trimS: args.trim_s as number | undefined,
    numVideos: args.num_videos as number | undefined,
    parallelVideos: args.num_processes as number | undefined,
    encoder: args.encoder as string | undefined,
    encoderThreads: args.encoder_threads as number | undefined,
    encodeBatchSize: args.encode_batch_size as number | undefined,
    numClipsPerChunk: args.num_clips_per_chunk as number | undefined,
    useInputBitRate: args.use_input_bit_rate as boolean | undefined,
    crf: args.crf as number | undefined,
    preset: args.preset as string | undefined,
    mode: args.mode as 'one-pass' | 'per-clip' | undefined,
    ignoreAudio: args.ignore_audio as boolean | undefined,
    shardSize: args.shard_size as number | undefined,
    keepList: args.keep_list as string | undefined,
    tablesEveryS: args.tables_every_s as number | undefined,
    scores: args.scores as string | undefined,
    scorers: args.scorer as string[] | undefined,
    scorerFrames: args.scorer_frames as number | undefined,
    filter: args.filter as string | undefined,
    filtered: args.filtered as 'keep' | 'skip' | undefined,
    previews: args.previews as boolean | undefined,
    ffmpegPath: args.ffmpeg_path as string | undefined,
    ytDlpPath: args.yt_dlp_path as string | undefined,
    downloadRetries: args.download_retries as number | undefined,
    maxDownloadBytes: args.max_download_mb === undefined ? undefined : Math.round((args.max_download_mb as number) * 1024 * 1024),
  };
}

/** Library errors about options, in the CLI's words (`--clip_len_s`). */
async function inCliWords<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ClipstreamError && err.code === 'ERR_INVALID_OPTION') {
      throw new ClipstreamError(err.code, withClipsFlags(err.message), { cause: err, where: err.where });
    }
    throw err;
  }
}

/** The clips job for the queue and the worker: one unit per source video (its video_id), after --num_videos. */
export const clipsJob: JobDefinition<ClipsOptions, 'clips'> = {
  name: 'clips',
  spec: clipsSpec,
  optionsFromArgs: clipsOptionsFromArgs,
  pathArgs: ['sources', 'out_dir', 'spans', 'ffmpeg_path', 'yt_dlp_path'],
  listUnits: async (o) => (await inCliWords(listClipSources(o.sources, o.numVideos, o.onWarning))).map((s) => s.videoId),
  run: (o) => inCliWords(clips(o)),
};

/** Runs `clipstream clips` with parsed arguments; returns the exit code (0 even when some videos failed: they are in videos.csv). */
export async function runClips(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const display = args.quiet === true ? null : new ProgressDisplay();
  let report: ClipsReport;
  try {
    report = await inCliWords(clips({ ...clipsOptionsFromArgs(args), onProgress: display ? (p) => display.update(p) : undefined, signal }));
  } finally {
    display?.finish();
  }
  const failed = report.videos.filter((v) => v.failed).length;
  const count = (action: string) => report.issues.filter((i) => i.action === action).length;
  const unlisted = report.issues.filter((i) => i.reason.includes('is not among the sources')).length;
  process.stderr.write(
    `clipstream clips: ${report.videos.length - failed} video(s) done, ${failed} failed; ${report.clips.length} clips (${report.clipsMade} made now, ` +
      `${report.clips.length - report.clipsMade} already there) with ${report.encoder.encoder}; ${count('clipped')} span(s) clipped, ${count('dropped')} dropped` +
      `${unlisted > 0 ? ` (${unlisted} for video_ids not among --sources)` : ''}` +
      `${count('split') > 0 ? `, ${count('split')} split at a timestamp restart or gap` : ''}, ${count('failed')} clip(s) failed (span_issues.csv); ` +
      `${report.shards.length} shard(s) in ${report.seconds.toFixed(1)} s. Tables: ${report.videosCsv}, ${report.clipsCsv}${report.shotsCsv ? `, ${report.shotsCsv}` : ''}\n`,
  );
  const out = report.clips.filter((c) => c.kept === false).length;
  if (report.clips.some((c) => c.kept !== undefined))
    process.stderr.write(
      `clipstream clips: filter kept ${report.clips.length - out} clip(s), kept out ${out}` +
        `${
          out > 0
            ? ` (${Object.entries(report.filtered)
                .map(([reason, n]) => `${reason}: ${n}`)
                .join(', ')})`
            : ''
        }\n`,
    );
  for (const s of report.shards) process.stdout.write(`${s.tar}\n`);
  return 0;
}
