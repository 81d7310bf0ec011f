import { score } from '../jobs/score.js';
import { partitionFromArgs, partitionOptions } from '../scale/cli-options.js';
import type { CommandSpec } from '../util/args.js';

/** The plug-in scorer options, as `clips` and `score` both take them. */
export const pluginScorerOptions: CommandSpec['options'] = [
  {
    name: 'scorer',
    type: 'string[]',
    description:
      'Plug-in ONNX scorer name=path.onnx[:imagenet|clip|unit|raw] (repeatable, or a comma list): column {name}_score, the mean over --scorer_frames frames of each clip',
    library: 'scorers',
  },
  { name: 'scorer_frames', type: 'integer', description: 'Frames of each clip a plug-in scorer runs on, evenly spaced', default: 3, library: 'scorerFrames' },
];

export const scoreSpec: CommandSpec = {
  name: 'score',
  summary: 'clips that exist (a folder, or tar shards) in, scores.csv out: the per-clip scores of clips, and with --filter kept and filter_reason.',
  usage: 'clipstream score --input=<folder | shard-{000000..000009}.tar> --out_dir=<dir> [--scores=...] [--filter=...]',
  options: [
    { name: 'input', type: 'string', description: 'A folder of clips, or tar shard(s): a path or a brace pattern, as extract takes them', required: true },
    { name: 'out_dir', type: 'string', description: 'Folder for scores.csv', required: true, library: 'outputDir' },
    {
      name: 'scores',
      type: 'string',
      description: "A list of motion, black, frozen, sharpness, brightness, contrast, colorfulness, text_area; or 'all'",
      default: 'motion,black,frozen,sharpness,brightness,contrast,colorfulness',
    },
    ...pluginScorerOptions,
    { name: 'filter', type: 'string', description: "Terms on the scores, e.g. 'motion>=0.02,black<=0.5': adds kept and filter_reason" },
    { name: 'ffmpeg_path', type: 'string', description: 'ffmpeg binary to use; default FFMPEG_PATH or the bundled one' },
    ...partitionOptions,
  ],
  examples: [
    'clipstream score --input=out/clips/clips --out_dir=out/scored',
    'clipstream score --input="shards/shard-{000000..000009}.tar" --out_dir=scored --filter="motion>=0.02"',
  ],
};

/** Runs `clipstream score`; 0 when the run completed (clips that could not be scored are rows with an error). */
export async function runScore(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const r = await score({
    partition: partitionFromArgs(args),
    input: args.input as string,
    outputDir: args.out_dir as string,
    scores: args.scores as string,
    scorers: args.scorer as string[] | undefined,
    scorerFrames: args.scorer_frames as number | undefined,
    filter: args.filter as string | undefined,
    ffmpegPath: args.ffmpeg_path as string | undefined,
    signal,
    onWarning: (e) => process.stderr.write(`clipstream score: warning: ${e.message}\n`),
  });
  const out = r.rows.filter((x) => x.kept === false).length;
  const reasons = Object.entries(r.filtered).map(([k, n]) => `${k}: ${n}`);
  process.stderr.write(
    `clipstream score: ${r.rows.length} clip(s) in ${r.run.units.length} input(s), ${r.failed} could not be scored` +
      `${r.rows.some((x) => x.kept !== undefined) ? `; filter kept ${r.rows.length - out}, kept out ${out}${reasons.length ? ` (${reasons.join(', ')})` : ''}` : ''}. Table: ${r.scoresCsv}\n`,
  );
  return 0;
}
