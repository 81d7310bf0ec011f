/** The `dedup` command: its flags, and the run with a one-line summary. */
import { dedup } from '../jobs/dedup.js';
import type { CommandSpec } from '../util/args.js';

export const dedupSpec: CommandSpec = {
  name: 'dedup',
  summary: 'near-duplicate clips of an output (re-encoded, rescaled, cropped copies) grouped by perceptual fingerprint; one kept per group.',
  usage: 'clipstream dedup <clips OUT_DIR> | --input=<folder of clips or "shard-{000000..000009}.tar"> --out_dir=<dir> [--max_distance=12] [--keep=longest]',
  options: [
    {
      name: 'input',
      type: 'string[]',
      description:
        'A clips output folder (its clips.csv), a folder of clips, or tar shard paths / brace patterns (repeat for several); or give it as the first argument',
      required: true,
    },
    {
      name: 'out_dir',
      type: 'string',
      description: 'Folder for duplicates.csv, keep.txt and fingerprints.csv (default: the input, when it is a clips output)',
      library: 'outputDir',
    },
    { name: 'max_distance', type: 'number', description: 'Largest fingerprint distance (mean differing bits of 64 per frame) of near-duplicates', default: 12 },
    {
      name: 'keep',
      type: 'string',
      description: 'Which clip a group keeps: longest, first, or score:<column> (the highest value of a clips.csv column)',
      default: 'longest',
    },
    { name: 'frames', type: 'integer', description: 'Frames per fingerprint computed here (stored fingerprints keep their own)', default: 8 },
    { name: 'num_workers', type: 'integer', description: 'Clips decoded at once for their fingerprints', default: 2, library: 'parallel' },
  ],
  examples: [
    'clipstream dedup out/clips --keep=score:sharpness',
    'clipstream dedup --input="shards/shard-{000000..000009}.tar" --out_dir=dedup --max_distance=8',
  ],
};

/** Runs `dedup` from parsed flags; prints the summary. Exit 0 when it completed (also with unreadable clips, which are kept). */
export async function runDedup(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const report = await dedup({
    input: args.input as string[],
    outputDir: args.out_dir as string | undefined,
    maxDistance: args.max_distance as number,
    keep: args.keep as string,
    frames: args.frames as number,
    parallel: args.num_workers as number,
    signal,
  });
  process.stderr.write(
    `clipstream dedup: ${report.clips} clips (${report.fingerprinted} fingerprinted now, ${report.unreadable} unreadable), ` +
      `${report.groups} group(s) of near-duplicates, ${report.dropped} dropped, ${report.kept} kept (${report.seconds.toFixed(1)} s)\n`,
  );
  process.stdout.write(`${report.duplicatesCsv}\n${report.keepList}\n`);
  return 0;
}
