/**
 * The shot-detection rows of `npm run bench`, side by side in one run:
 *   - frames/s of `detectShots` (content detector with fades, its defaults) against PySceneDetect's
 *     own ContentDetector (scripts/pyscenedetect_cuts.py: open_video + SceneManager, OpenCV
 *     backend, its automatic downscale) on the same 1080p video with cuts, made by the shot zoo's
 *     generator (target >= 5x). PySceneDetect is not a dependency: the row says skipped unless
 *     CLIPSTREAM_PYSCENEDETECT points at a checkout of it. The two alternate `repeat` times and the
 *     fastest run of each counts (other load only slows a run down); CPU seconds are given too.
 *   - the same against ffmpeg decoding the video to null: the ceiling of any detector that reads
 *     every frame (at 1080p the decode is most of the cost of both detectors);
 *   - peak RSS of `detectShots` in its own process on a 1-minute vs a 10-minute source (target
 *     <= 1.2; the node process, whose memory must not grow with the video; ffmpeg is a child).
 * The load average is written beside each measurement.
 *
 *   npx tsx bench/shots.ts [--quick|--smoke]      alone; `bench/run.ts` calls benchShots()
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectShots } from '../src/clips/shots.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { runTool } from '../src/media/process.js';
import { photoPath, type ShotSpec, type ShotsFile, shotsArgs, shotsTruth } from '../test/zoo/shots-zoo.js';
import { generatorFfmpeg } from '../test/zoo/generated.js';
import { cpuSeconds, runChildScript, type BenchRow } from './measure.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = join(ROOT, '.bench', 'shots');
const PYTHON = '/usr/bin/python3';
const PSD_SCRIPT = join(ROOT, 'scripts', 'pyscenedetect_cuts.py');

const r2 = (x: number) => Math.round(x * 100) / 100;
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join('/');

/** A recipe of `shots` shots of `frames` frames each, hard cuts between different scenes. */
function recipe(name: string, width: number, height: number, shots: number, frames: number): ShotsFile {
  const scenes: ShotSpec['scene'][] = ['testsrc2', 'bars', 'gradients', 'noise', 'life', 'cellauto'];
  if (photoPath()) scenes.push('photo');
  const list: ShotSpec[] = Array.from({ length: shots }, (_, k) => ({ scene: scenes[k % scenes.length]!, seed: 1000 + k, frames }));
  return {
    name,
    container: 'mp4',
    codec: 'h264',
    rate: [25, 1],
    width,
    height,
    shots: list,
    joins: list.slice(1).map(() => ({ kind: 'cut' as const, frames: 0 })),
  };
}

async function make(f: ShotsFile, out: string): Promise<void> {
  if (existsSync(out)) return;
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp.mp4`;
  const r = await runTool(generatorFfmpeg(), shotsArgs(f, tmp), { timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`shots bench: cannot make ${out}: ${r.stderr.slice(-1000)}`);
  await rename(tmp, out);
}

/** `times` copies of `base` joined by stream copy (the concat demuxer): a long source made fast. */
async function repeatVideo(base: string, times: number, out: string): Promise<void> {
  if (existsSync(out)) return;
  const list = `${out}.txt`;
  await writeFile(list, Array.from({ length: times }, () => `file '${resolve(base)}'\n`).join(''));
  const tmp = `${out}.tmp.mp4`;
  const r = await runTool(generatorFfmpeg(), ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', tmp], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`shots bench: cannot join ${out}: ${r.stderr.slice(-1000)}`);
  await rename(tmp, out);
}

interface PsdRun {
  frames: number;
  seconds: number;
  cpuSeconds: number;
  cuts: number[];
  version: string;
}

function pyscenedetect(path: string): Promise<PsdRun> {
  return new Promise((res, rej) => {
    const p = spawn(PYTHON, [PSD_SCRIPT, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.on('error', rej);
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`pyscenedetect_cuts.py exited ${code}: ${err}`));
      const j = JSON.parse(out) as { version: string; files: Array<Omit<PsdRun, 'version'>> };
      res({ ...j.files[0]!, version: j.version });
    });
  });
}

interface ChildJob {
  input: string;
}
interface ChildRun {
  seconds: number;
  frames: number;
  peakRssMB: number;
  boundaries: number;
}

async function child(job: ChildJob): Promise<void> {
  const t0 = performance.now();
  const r = await detectShots(job.input);
  const seconds = (performance.now() - t0) / 1000;
  // maxRSS: this process's peak (KiB); the decoding ffmpeg is a child process of its own.
  process.stdout.write(
    `SHOTS_RESULT ${JSON.stringify({ seconds, frames: r.frames, peakRssMB: process.resourceUsage().maxRSS / 1024, boundaries: r.boundaries.length })}\n`,
  );
}

/**
 * Runs the shot-detection bench; returns rows in bench/run.ts's table format.
 *
 * @example rows.push(...(await benchShots({ mode: 'quick', log: console.error })));
 */
export async function benchShots(o: {
  mode: 'full' | 'quick' | 'smoke';
  log: (s: string) => void;
}): Promise<{ rows: BenchRow[]; figures: Record<string, unknown> }> {
  const { mode, log } = o;
  const rows: BenchRow[] = [];
  const figures: Record<string, unknown> = {};
  // 1080p: 8 shots of 3 s (full), 4 of 2 s (quick); smoke: 640x360, 2 shots of 1 s.
  const [w, h, shots, per] = mode === 'full' ? [1920, 1080, 8, 75] : mode === 'quick' ? [1920, 1080, 4, 50] : [640, 360, 2, 25];
  const hd = join(WORK, `cuts_${w}x${h}_${shots}x${per}.mp4`);
  log(`shots: making the ${w}x${h} source (${shots} shots of ${per} frames)...`);
  const hdRecipe = recipe('hd', w, h, shots, per);
  await make(hdRecipe, hd);
  const truthCuts = shotsTruth(hdRecipe).cuts;

  // Speed, side by side.
  const psdRoot = process.env.CLIPSTREAM_PYSCENEDETECT;
  const hasPsd = !!psdRoot && existsSync(join(psdRoot, 'scenedetect'));
  const repeat = mode === 'smoke' ? 1 : 2;
  const oursRuns: Array<{ seconds: number; cpu: number | null; frames: number; cuts: number[]; load: string }> = [];
  const psdRuns: Array<PsdRun & { load: string }> = [];
  const decodeRuns: Array<{ seconds: number; cpu: number | null; load: string }> = [];
  for (let i = 0; i < repeat; i++) {
    // The ceiling of any detector that looks at every frame: ffmpeg decoding the video to nothing.
    log(`shots: bare ffmpeg decode of ${w}x${h} (${i + 1}/${repeat}), load ${load()}`);
    const d0 = cpuSeconds();
    const dt = performance.now();
    const dr = await runTool(ffmpegPath(), ['-v', 'error', '-nostdin', '-i', hd, '-map', '0:v:0', '-f', 'null', '-'], { timeoutMs: 1_800_000 });
    if (dr.code !== 0) throw new Error(`shots bench: bare decode failed: ${dr.stderr.slice(-500)}`);
    const d1 = cpuSeconds();
    decodeRuns.push({ seconds: (performance.now() - dt) / 1000, cpu: d0 === null || d1 === null ? null : d1 - d0, load: load() });
    log(`shots: detectShots on ${w}x${h} (${i + 1}/${repeat}), load ${load()}`);
    const c0 = cpuSeconds();
    const t0 = performance.now();
    const r = await detectShots(hd);
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpuSeconds();
    oursRuns.push({ seconds, cpu: c0 === null || c1 === null ? null : c1 - c0, frames: r.frames, cuts: r.boundaries.map((b) => b.frame), load: load() });
    if (hasPsd) {
      log(`shots: PySceneDetect on ${w}x${h} (${i + 1}/${repeat}), load ${load()}`);
      psdRuns.push({ ...(await pyscenedetect(hd)), load: load() });
    }
  }
  const best = <T extends { seconds: number }>(runs: T[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const ours = best(oursRuns);
  const oursFps = ours.frames / ours.seconds;
  figures.speed = { source: `${w}x${h}`, frames: ours.frames, truthCuts, ours: oursRuns, pyscenedetect: psdRuns, bareDecode: decodeRuns };
  const dec = best(decodeRuns);
  rows.push({
    item: 'shots speed',
    metric: `frames/s, detectShots vs ffmpeg decoding the same ${w}x${h} video to null (the ceiling of a detector that reads every frame); load ${ours.load} / ${dec.load}`,
    ours: String(r2(oursFps)),
    reference: `${r2(ours.frames / dec.seconds)} (bare decode)`,
    ratio: r2(oursFps / (ours.frames / dec.seconds)),
    cpuRatio: ours.cpu && dec.cpu ? r2(dec.cpu / ours.cpu) : null,
    target: '(info)',
    met: null,
  });
  if (hasPsd) {
    const psd = best(psdRuns);
    const psdFps = psd.frames / psd.seconds;
    const ratio = oursFps / psdFps;
    const cpuRatio = ours.cpu ? psd.cpuSeconds / ours.cpu : null;
    rows.push({
      item: 'shots speed',
      metric: `frames/s, detectShots (content+fades, PySceneDetect's 256 px, fast_bilinear) vs PySceneDetect ${psd.version} ContentDetector (OpenCV backend, auto downscale), ${w}x${h} h264, ${ours.frames} frames; load ${ours.load} / ${psd.load}`,
      ours: String(r2(oursFps)),
      reference: `${r2(psdFps)} (PySceneDetect; cuts ${psd.cuts.join(',')} vs ours ${ours.cuts.join(',')}, truth ${truthCuts.join(',')})`,
      ratio: r2(ratio),
      cpuRatio: cpuRatio === null ? null : r2(cpuRatio),
      target: '≥ 5',
      met: ratio >= 5,
    });
  } else {
    rows.push({
      item: 'shots speed',
      metric: `frames/s, detectShots vs PySceneDetect, ${w}x${h}; load ${ours.load}`,
      ours: String(r2(oursFps)),
      reference:
        'skipped: PySceneDetect is not installed with clipstream; set CLIPSTREAM_PYSCENEDETECT to a checkout of github.com/Breakthrough/PySceneDetect (0.7.x, runs with python3-opencv)',
      ratio: null,
      target: '≥ 5',
      met: null,
    });
  }

  // Memory: 1 vs 10 minutes, each in a child process (quick: 20 s vs 200 s; smoke: 4 s vs 8 s).
  const [baseShots, basePer, short, long] = mode === 'full' ? [6, 250, 1, 10] : mode === 'quick' ? [4, 125, 1, 10] : [2, 50, 1, 2];
  const base = join(WORK, `mem_640x360_${baseShots}x${basePer}.mp4`);
  log(`shots: making the memory sources (${(baseShots * basePer) / 25} s base, x${short} and x${long})...`);
  await make(recipe('mem', 640, 360, baseShots, basePer), base);
  const shortPath = join(WORK, `${basename(base, '.mp4')}_x${short}.mp4`);
  const longPath = join(WORK, `${basename(base, '.mp4')}_x${long}.mp4`);
  await repeatVideo(base, short, shortPath);
  await repeatVideo(base, long, longPath);
  const runs: ChildRun[] = [];
  const loads: string[] = [];
  for (const input of [shortPath, longPath]) {
    loads.push(load());
    runs.push(await runChildScript<ChildRun>(fileURLToPath(import.meta.url), { input } satisfies ChildJob, 'SHOTS_RESULT ', 'shots', ROOT));
    log(`shots: ${input}: ${runs.at(-1)!.frames} frames in ${r2(runs.at(-1)!.seconds)} s, peak RSS ${r2(runs.at(-1)!.peakRssMB)} MB`);
  }
  const [a, b] = runs as [ChildRun, ChildRun];
  const secs = (r: ChildRun) => Math.round(r.frames / 25);
  const ratio = b.peakRssMB / a.peakRssMB;
  figures.memory = { runs, loads, sizes: [(await stat(shortPath)).size, (await stat(longPath)).size] };
  rows.push({
    item: 'shots memory',
    metric: `peak RSS of detectShots (own process), ${secs(a)} s vs ${secs(b)} s 640x360 source (MB); load ${loads.join(' / ')}`,
    ours: `${r2(a.peakRssMB)} / ${r2(b.peakRssMB)}`,
    reference: `${secs(b)} s / ${secs(a)} s`,
    ratio: r2(ratio),
    target: '≤ 1.2',
    met: ratio <= 1.2,
  });
  return { rows, figures };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--child');
  if (i > 0) await child(JSON.parse(process.argv[i + 1]!) as ChildJob);
  else {
    const mode = process.argv.includes('--smoke') ? 'smoke' : process.argv.includes('--quick') ? 'quick' : 'full';
    const { rows, figures } = await benchShots({ mode, log: (s) => process.stderr.write(`${s}\n`) });
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  }
}
