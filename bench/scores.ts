/**
 * What per-clip scores add to the clips job: the same job on the same source with scores on
 * (the default) and off (`scores: 'none'`), in child processes run alternately side by side, CPU
 * seconds of the job process and its ffmpeg children compared. Target: at most 20 % more CPU.
 *
 *   npx tsx bench/scores.ts              one row as JSON (also `npm run bench -- --only scores`)
 *   npx tsx bench/scores.ts --seconds=20 --repeat=1
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clips as clipsJob } from '../src/jobs/clips.js';
import { makeSource } from '../test/helpers/clip-sources.js';
import { cpuSeconds, runChildScript, type BenchRow } from './measure.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = join(ROOT, '.bench', 'scores');
const r3 = (x: number) => Math.round(x * 1000) / 1000;

interface Job {
  sources: string;
  out: string;
  scores: boolean;
}
interface JobRun {
  seconds: number;
  cpu: number | null;
  clips: number;
}

async function jobChild(job: Job): Promise<void> {
  await rm(job.out, { recursive: true, force: true });
  const t0 = performance.now();
  const c0 = cpuSeconds();
  // The job's defaults (libx264 at its own preset, one-pass), 2 s clips back to back: every frame is cut and scored.
  const report = await clipsJob({ sources: job.sources, outputDir: job.out, clipLenS: 2, scores: job.scores ? 'all' : 'none', onWarning: () => {} });
  const c1 = cpuSeconds();
  const run: JobRun = { seconds: (performance.now() - t0) / 1000, cpu: c0 === null || c1 === null ? null : c1 - c0, clips: report.clips.length };
  process.stdout.write(`SCORES_RESULT ${JSON.stringify(run)}\n`);
}

async function source(seconds: number, size: string): Promise<string> {
  const file = join(WORK, `src-${seconds}s-${size}.mp4`);
  if (!(await stat(file).catch(() => null))) {
    await mkdir(WORK, { recursive: true });
    await makeSource(file, { seconds, fps: 25, size, gop: 250, audioHz: 440 });
  }
  const list = join(WORK, `sources-${seconds}s-${size}.csv`);
  await writeFile(list, `video_id,path\nsrc,${file}\n`);
  return list;
}

/**
 * The clips job with and without scores, `repeat` times each, alternating; the row compares the
 * summed CPU seconds (wall seconds beside them), with the load average at the start and end.
 *
 * @example rows.push(...(await benchScores({ seconds: 40, repeat: 2, log: console.log })));
 */
export async function benchScores(o: { seconds: number; size?: string; repeat: number; log: (s: string) => void }): Promise<BenchRow[]> {
  const size = o.size ?? '640x360';
  const sources = await source(o.seconds, size);
  const load0 = loadavg()[0]!;
  const sum = { on: { cpu: 0, wall: 0 }, off: { cpu: 0, wall: 0 } };
  let clips = 0;
  let cpuKnown = true;
  for (let r = 0; r < o.repeat; r++) {
    for (const on of r % 2 === 0 ? [false, true] : [true, false]) {
      const run = await runChildScript<JobRun>(
        fileURLToPath(import.meta.url),
        { sources, out: join(WORK, `out-${on}`), scores: on },
        'SCORES_RESULT ',
        'scores',
        ROOT,
      );
      const s = on ? sum.on : sum.off;
      s.wall += run.seconds;
      if (run.cpu === null) cpuKnown = false;
      else s.cpu += run.cpu;
      clips = run.clips;
      o.log(`   clips job, scores ${on ? 'on ' : 'off'}: ${run.clips} clips in ${r3(run.seconds)} s, CPU ${run.cpu === null ? '?' : r3(run.cpu)} s`);
    }
  }
  const load1 = loadavg()[0]!;
  await rm(WORK, { recursive: true, force: true });
  const ratio = cpuKnown ? sum.on.cpu / sum.off.cpu : sum.on.wall / sum.off.wall;
  return [
    {
      item: 'scores cost',
      metric: `clips job CPU s with scores vs without (${o.seconds} s ${size} @ 25 fps source, ${clips} clips of 2 s, libx264 default preset, ${o.repeat}× each alternating; load ${load0.toFixed(1)} → ${load1.toFixed(1)})`,
      ours: String(r3(cpuKnown ? sum.on.cpu : sum.on.wall)),
      reference: `${r3(cpuKnown ? sum.off.cpu : sum.off.wall)} (scores off)`,
      ratio: r3(sum.on.wall / sum.off.wall),
      cpuRatio: cpuKnown ? r3(ratio) : null,
      target: '≤ 1.2 (CPU)',
      met: ratio <= 1.2,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, def: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def);
  const i = process.argv.indexOf('--child');
  if (i > 0) await jobChild(JSON.parse(process.argv[i + 1]!) as Job);
  else
    for (const row of await benchScores({ seconds: arg('seconds', 40), repeat: arg('repeat', 2), log: (s) => process.stderr.write(`${s}\n`) }))
      process.stdout.write(`${JSON.stringify(row)}\n`);
}
