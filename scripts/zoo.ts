/**
 * Explores the generated media zoo: picks crossings with a seed, makes the files (cached),
 * confirms each file's truth with PyAV and ffprobe, runs every job over them and writes a
 * report of every failing crossing, with a block to paste into test/zoo/regressions.ts.
 *
 *   npm run zoo -- --seed=random --count=500
 *   npm run zoo -- --seed=1234 --count=60 --jobs=clips,faces
 *   npm run zoo -- --ids=mp4_h264_cfr_plain_untagged_aac-stereo-same_plain,...
 *
 * Options: --seed (a number, or `random`: printed), --count, --jobs (default: all),
 * --ids (exact crossings instead of a seeded pick), --out (report folder, default the temp folder).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Crossing, crossingId, parseCrossingId, pickCrossings } from '../test/zoo/crossings.js';
import { truthProblems } from '../test/zoo/checks.js';
import { generatedEntries } from '../test/zoo/generated.js';
import { JOBS, type JobName, runJob, sampleFacts } from '../test/zoo/jobs.js';

process.env.FFMPEG_PATH ??= '/usr/bin/ffmpeg';
process.env.FFPROBE_PATH ??= '/usr/bin/ffprobe';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`zoo: unknown argument ${a} (see the top of scripts/zoo.ts)`);
    return [m[1]!, m[2] ?? 'true'] as const;
  }),
);
const seedArg = args.get('seed') ?? '20261208';
const seed = seedArg === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedArg);
const count = Number(args.get('count') ?? 40);
const jobs = (args.get('jobs')?.split(',').filter(Boolean) ?? [...JOBS]) as JobName[];
for (const j of jobs) if (!JOBS.includes(j)) throw new Error(`zoo: no job ${j} (one of ${JOBS.join(', ')})`);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1) throw new Error('zoo: --seed and --count must be integers');

interface Failure {
  file: string;
  crossing: string;
  job: JobName | 'generator' | 'truth';
  problems: string[];
}

async function main() {
  const started = Date.now();
  const crossings: Crossing[] = args.has('ids') ? args.get('ids')!.split(',').map(parseCrossingId) : pickCrossings(seed, count);
  console.log(args.has('ids') ? `zoo: ${crossings.length} pinned crossings` : `zoo: seed ${seed}, ${crossings.length} crossings`);
  const entries = await generatedEntries(crossings);
  console.log(`zoo: ${entries.length} files (twins included) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const failures: Failure[] = [];
  for (const e of entries) if (e.generatorError) failures.push({ file: e.name, crossing: e.truth.crossing, job: 'generator', problems: [e.generatorError] });
  const facts = await sampleFacts(entries);
  const bad = new Set<string>();
  for (const e of entries) {
    const f = facts.get(e.name);
    const p = f ? truthProblems(e.truth, f) : [];
    if (p.length) {
      bad.add(e.name);
      failures.push({ file: e.name, crossing: e.truth.crossing, job: 'truth', problems: p });
    }
  }
  // Files whose truth is not confirmed are generator bugs: no job is judged on them.
  const sample = entries.filter((e) => !bad.has(e.name));
  const work = await mkdtemp(join(tmpdir(), 'clipstream-zoo-run-'));
  const times: Record<string, number> = {};
  try {
    for (const job of jobs) {
      const r = await runJob(job, sample, work);
      times[job] = r.seconds;
      const failed = [...r.problems].filter(([, p]) => p.length > 0);
      console.log(`zoo: ${job}: ${failed.length} of ${r.problems.size} files fail (${r.seconds.toFixed(0)} s)`);
      for (const [file, problems] of failed) failures.push({ file, crossing: sample.find((e) => e.name === file)!.truth.crossing, job, problems });
    }
  } finally {
    if (!args.has('keep')) await rm(work, { recursive: true, force: true });
    else console.log(`zoo: outputs kept in ${work}`);
  }
  const seconds = (Date.now() - started) / 1000;
  const outDir = args.get('out') ?? tmpdir();
  await mkdir(outDir, { recursive: true });
  const name = args.has('ids') ? `clipstream-zoo-report-pinned-${Date.now()}` : `clipstream-zoo-report-${seed}-${crossings.length}`;
  const lines = [
    `# zoo report: ${args.has('ids') ? 'pinned crossings' : `seed ${seed}`}, ${crossings.length} crossings, ${entries.length} files, ${seconds.toFixed(0)} s`,
    '',
    `Job times (s): ${JSON.stringify(times)}`,
    '',
    ...failures.flatMap((f) => [`- **${f.job}** \`${f.file}\` (crossing \`${f.crossing}\`)`, ...f.problems.map((p) => `  - ${p}`)]),
    '',
    'Regressions to pin (test/zoo/regressions.ts):',
    '',
    '```ts',
    ...[...new Set(failures.filter((f) => f.job !== 'generator' && f.job !== 'truth').map((f) => f.crossing))].map(
      (c) => `  { id: '${c}', found: 'seed ${seed}', jobs: [${[...new Set(failures.filter((f) => f.crossing === c).map((f) => `'${f.job}'`))].join(', ')}] },`,
    ),
    '```',
  ];
  await writeFile(join(outDir, `${name}.md`), `${lines.join('\n')}\n`);
  await writeFile(join(outDir, `${name}.json`), JSON.stringify({ seed, count: crossings.length, files: entries.length, seconds, times, failures }, null, 1));
  console.log(`zoo: ${failures.length} failing (file, job) pairs; report ${join(outDir, `${name}.md`)} (${seconds.toFixed(0)} s in all)`);
  console.log(`zoo: crossings: ${crossings.map(crossingId).length}, seed ${seed}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
