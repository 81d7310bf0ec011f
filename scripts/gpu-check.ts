/**
 * The GPU check (run by scripts/gpu-check.sh; docs/gpu.md): each GPU path of clipstream against the same work on
 * the CPU, on the shipped fixtures, in one process:
 *   extract   --device=cuda:N (ONNX Runtime's CUDA execution provider)  vs --device=cpu     features within 1e-3
 *   faces     --device=cuda:N                                          vs --device=cpu     same face clips and frame
 *                                                                                          counts, detector scores within 1e-3
 *   segments  --device=cuda:N, the matte as PNG                        vs --device=cpu     same frames, within 1 level
 *   clips     --encoder=h264_nvenc (with -hwaccel cuda)                vs libx264          same clips, same frame counts
 * Prints ONE JSON line of figures on stdout (progress goes to stderr). Where the GPU part cannot run (no GPU, no CUDA
 * provider library, an ffmpeg without NVENC), the job's own fallback runs instead (CUDA → CPU, NVENC → libx264), that
 * side is reported `skipped` with the reason, and the outputs are still compared. Exit code: 0 when every comparison
 * agrees, 1 when one disagrees or a job fails, 3 with --require_gpu when a GPU part was skipped, 2 for a bad option,
 * 124 when SIGTERM (gpu-check.sh's time limit) stops it: the line then holds the jobs done so far.
 *
 *   npx tsx scripts/gpu-check.ts [--quick] [--device=cuda:0] [--encoder=h264_nvenc] [--ffmpeg_path=P]
 *                                [--jobs=extract,clips,faces,segments] [--copies=4] [--work_dir=D] [--keep] [--require_gpu]
 * Environment: GPU_CHECK_QUICK=1 is --quick.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, availableParallelism, cpus, loadavg, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import onnxruntime from 'onnxruntime-node';
import { cpuSeconds } from '../bench/measure.js';
import { clips } from '../src/jobs/clips.js';
import { extract } from '../src/jobs/extract.js';
import { faces } from '../src/jobs/faces.js';
import { segments } from '../src/jobs/segments.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { bundleClips } from '../src/shards/bundle.js';
import { type Comparison, compareFaces, compareFeatures, compareFrames, comparePixels } from './gpu-compare.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'fixtures');
const run = promisify(execFile);
const r3 = (x: number) => Math.round(x * 1000) / 1000;

const JOBS = ['extract', 'clips', 'faces', 'segments'] as const;
type JobName = (typeof JOBS)[number];

interface Args {
  quick: boolean;
  device: string;
  encoder: string;
  ffmpeg: string;
  jobs: JobName[];
  workDir: string | null;
  keep: boolean;
  requireGpu: boolean;
  /** Full mode: copies of the fixture shards (12 clips each pair) and of the face videos. */
  copies: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: process.env.GPU_CHECK_QUICK === '1',
    device: 'cuda:0',
    encoder: 'h264_nvenc',
    ffmpeg: '',
    jobs: [...JOBS],
    workDir: null,
    keep: false,
    requireGpu: false,
    copies: 4,
  };
  for (const arg of argv) {
    const [k, v] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (k === '--quick' && v === undefined) a.quick = true;
    else if (k === '--keep' && v === undefined) a.keep = true;
    else if (k === '--require_gpu' && v === undefined) a.requireGpu = true;
    else if (k === '--copies' && v && /^[1-9]\d{0,2}$/.test(v)) a.copies = Number(v);
    else if (k === '--device' && v && /^cuda(:\d+)?$/.test(v)) a.device = v;
    else if (k === '--encoder' && (v === 'h264_nvenc' || v === 'hevc_nvenc')) a.encoder = v;
    else if (k === '--ffmpeg_path' && v) a.ffmpeg = v;
    else if (k === '--work_dir' && v) a.workDir = v;
    else if (k === '--jobs' && v && v.split(',').every((j) => (JOBS as readonly string[]).includes(j))) a.jobs = v.split(',') as JobName[];
    else throw new UsageError(`bad option ${arg}`);
  }
  return a;
}

class UsageError extends Error {}

const say = (line: string) => process.stderr.write(`gpu-check: ${line}\n`);

/** `nvidia-smi`'s name of each GPU, or why there is none. */
async function gpuInfo(): Promise<{ name: string | null; driver: string | null; memory_mib: number | null; note: string | null }> {
  try {
    const { stdout } = await run('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader,nounits'], { timeout: 30_000 });
    const [name, driver, mem] = (stdout.trim().split('\n')[0] ?? '').split(',').map((s) => s.trim());
    return { name: name || null, driver: driver || null, memory_mib: mem ? Number(mem) : null, note: name ? null : 'nvidia-smi listed no GPU' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    return {
      name: null,
      driver: null,
      memory_mib: null,
      note:
        e.code === 'ENOENT' ? 'nvidia-smi not found: no NVIDIA driver on this machine' : `nvidia-smi failed: ${(e.stderr || e.message).trim().split('\n')[0]}`,
    };
  }
}

/** Where onnxruntime-node keeps its native libraries, and whether its CUDA provider library is among them. */
function ortInfo(): { version: string; cuda_provider_library: string | null; note: string | null } {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve('onnxruntime-node'));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const version = (require(join(dir, 'package.json')) as { version: string }).version;
  const lib = join(dir, 'bin', 'napi-v6', platform(), arch(), 'libonnxruntime_providers_cuda.so');
  if (existsSync(lib)) return { version, cuda_provider_library: lib, note: null };
  return {
    version,
    cuda_provider_library: null,
    note: `cuda provider library absent: onnxruntime-node's CUDA libraries are not installed (no ${lib}); see docs/gpu.md`,
  };
}

async function ffmpegInfo(path: string): Promise<{ path: string; version: string; nvenc: string[]; hwaccel_cuda: boolean; note: string | null }> {
  const text = async (args: string[]) => (await run(path, ['-hide_banner', ...args], { timeout: 30_000 })).stdout;
  const version = (await run(path, ['-version'], { timeout: 30_000 })).stdout.split('\n')[0]?.replace(/ Copyright.*/, '') ?? '';
  const nvenc = [...(await text(['-encoders'])).matchAll(/^\s*V\S*\s+(\w+_nvenc)\s/gm)].map((m) => m[1]!);
  const hwaccelCuda = /^cuda$/m.test(await text(['-hwaccels']));
  const note = nvenc.length === 0 ? `${path} has no NVENC encoder: pass --ffmpeg_path (or FFMPEG_PATH) to an ffmpeg built with NVENC; see docs/gpu.md` : null;
  return { path, version, nvenc, hwaccel_cuda: hwaccelCuda, note };
}

/** ffmpeg's own reason when a one-frame NVENC encode fails (the job's warning does not carry it); null when it works. */
async function nvencError(ffmpeg: string, encoder: string): Promise<string | null> {
  const args = [
    '-hide_banner',
    '-nostdin',
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'color=c=black:s=256x256:d=0.2',
    '-frames:v',
    '1',
    '-c:v',
    encoder,
    '-f',
    'null',
    '-',
  ];
  try {
    await run(ffmpeg, args, { timeout: 30_000 });
    return null;
  } catch (err) {
    const lines = String((err as { stderr?: string }).stderr ?? (err as Error).message)
      .trim()
      .split('\n');
    return `${encoder} did not start with ${ffmpeg}: ${lines.slice(-2).join(' / ')}`;
  }
}

/** One side of a job's comparison in the JSON line (test/jobs/gpu-check.test.ts reads these types). */
export interface Side {
  /** What was asked for and what really ran. */
  requested: string;
  used: string;
  wall_s: number;
  /** CPU seconds of this process, the spawn helper and their ffmpeg children over the side (bench/measure.ts); null off Linux. */
  cpu_s: number | null;
  /** Work done, in `unit`s, and per second of wall time. */
  items: number;
  per_s: number;
  unit: string;
}

export interface JobFigures {
  gpu: Side | null;
  cpu: Side | null;
  /** Why the GPU side ran on the CPU (its fallback) instead; null when it ran on the GPU. */
  gpu_skipped: string | null;
  agree: boolean;
  max_abs_diff: number | null;
  compared: number;
  tolerance: string;
  problems: string[];
  error?: string;
  warnings: string[];
}

/** The same work twice, once per side; each call returns its side's figures. */
interface JobPlan {
  tolerance: string;
  side(kind: 'gpu' | 'cpu', out: string, onWarning: (e: Error) => void): Promise<Omit<Side, 'wall_s' | 'per_s' | 'cpu_s'>>;
  compare(gpuOut: string, cpuOut: string): Promise<Comparison>;
}

async function copyAs(from: string, to: string): Promise<string> {
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to);
  return to;
}

async function plans(a: Args, work: string): Promise<Record<JobName, () => Promise<JobPlan>>> {
  const device = (kind: 'gpu' | 'cpu') => (kind === 'gpu' ? a.device : 'cpu');
  const used = (provider: string) => (provider === 'cuda' ? `cuda (${a.device})` : 'cpu');
  return {
    extract: async () => {
      const input = join(work, 'in', 'extract');
      if (a.quick) {
        // Two clips of the fixtures, one with sound and one without, bundled into one shard.
        for (const f of ['x_Y-z_5.mp4', 'noaudio-C_15.mp4']) await copyAs(join(fixtures, 'clips', f), join(input, 'clips', f));
        await bundleClips({ inputDir: join(input, 'clips'), outputDir: input, shardSize: 2 });
      } else {
        // The two fixture shards (12 clips, a corrupt and a too-short one among them), --copies times over.
        for (let copy = 0; copy < a.copies; copy++) {
          for (let s = 0; s < 2; s++) {
            const to = `shard-${String(copy * 2 + s).padStart(6, '0')}`;
            for (const ext of ['tar', 'json']) await copyAs(join(fixtures, 'shards', `shard-00000${s}.${ext}`), join(input, `${to}.${ext}`));
          }
        }
      }
      const tarPath = a.quick ? join(input, 'shard-000000.tar') : join(input, `shard-{000000..${String(a.copies * 2 - 1).padStart(6, '0')}}.tar`);
      return {
        tolerance: '1e-3 absolute, every feature value',
        side: async (kind, out, onWarning) => {
          const r = await extract({ tarPath, outputDir: out, device: device(kind), onWarning });
          const provider = r.visual?.provider ?? r.audio?.provider ?? 'none';
          return { requested: device(kind), used: used(provider), items: r.clipsWritten, unit: 'clips' };
        },
        compare: (g, c) => compareFeatures(g, c, 1e-3),
      };
    },
    clips: async () => {
      const input = join(work, 'in', 'clips');
      await mkdir(input, { recursive: true });
      const sources = ['video_id,path'];
      const spans = ['videoFile'];
      if (a.quick) {
        sources.push(`long_clip-B,${join(fixtures, 'clips', 'long_clip-B_100.mp4')}`);
        spans.push('long_clip-B_0_100', 'long_clip-B_150_300');
      } else {
        // The fixture sources and spans, and a generated 1080p source cut into 2 s clips (what NVENC is for).
        const listed = (await readFile(join(fixtures, 'sources', 'sources.csv'), 'utf8')).trim().split('\n').slice(1);
        for (const line of listed) {
          const [id, path] = line.split(',');
          sources.push(`${id},${resolve(fixtures, 'sources', path!)}`);
        }
        spans.push(...(await readFile(join(fixtures, 'sources', 'spans.csv'), 'utf8')).trim().split('\n').slice(1));
        const big = join(input, 'gen_1080p.mp4');
        say('making a 20 s 1920x1080 source for clips');
        await run(
          a.ffmpeg,
          [
            ...['-hide_banner', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30:duration=20'],
            ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=20', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-pix_fmt', 'yuv420p'],
            ...['-c:a', 'aac', '-shortest', big],
          ],
          { timeout: 120_000 },
        );
        sources.push(`gen-1080p,${big}`);
        for (let s = 0; s < 600; s += 60) spans.push(`gen-1080p_${s}_${s + 60}`);
      }
      await writeFile(join(input, 'sources.csv'), `${sources.join('\n')}\n`);
      await writeFile(join(input, 'spans.csv'), `${spans.join('\n')}\n`);
      return {
        tolerance: 'same clips, equal frame counts (ffprobe -count_frames)',
        side: async (kind, out, onWarning) => {
          const encoder = kind === 'gpu' ? a.encoder : 'libx264';
          const r = await clips({
            sources: join(input, 'sources.csv'),
            spans: join(input, 'spans.csv'),
            outputDir: out,
            encoder,
            ffmpegPath: a.ffmpeg,
            onWarning,
          });
          const frames = r.clips.reduce((n, c) => n + c.num_frames, 0);
          return { requested: encoder, used: `${r.encoder.encoder}${r.encoder.hwaccel ? ' (-hwaccel cuda)' : ''}`, items: frames, unit: 'frames' };
        },
        compare: (g, c) => compareFrames(join(g, 'clips'), join(c, 'clips')),
      };
    },
    faces: async () => {
      const input = join(work, 'in', 'faces');
      const names = a.quick ? ['face_gap.mp4'] : ['face_move.mp4', 'face_gap.mp4'];
      for (let copy = 0; copy < (a.quick ? 1 : a.copies); copy++) {
        for (const n of names) await copyAs(join(fixtures, 'faces', n), join(input, `${copy}_${n}`));
      }
      return {
        tolerance: 'same face clips, equal frame counts; detector scores within 1e-3',
        side: async (kind, out, onWarning) => {
          const r = await faces({
            inputDir: input,
            outputDir: out,
            device: device(kind),
            detector: join(root, 'models', 'ultraface_rfb_640.onnx'),
            // Quick: a detection every 4th frame (a face clip needs more than 8 detections then, not 16).
            ...(a.quick ? { sampleEvery: 4, minDetections: 8 } : {}),
            onWarning,
          });
          const sampled = r.videos.reduce((n, v) => n + (v.sampledFrames ?? 0), 0);
          return { requested: device(kind), used: used(r.provider), items: sampled, unit: 'sampled frames' };
        },
        compare: (g, c) => compareFaces(g, c, 1e-3),
      };
    },
    segments: async () => {
      const input = await copyAs(join(fixtures, 'segments', 'matte_move.mp4'), join(work, 'in', 'segments', 'matte_move.mp4'));
      return {
        tolerance: 'same frames; the matte (PNG) within 1 level of 255',
        side: async (kind, out, onWarning) => {
          const r = await segments({
            inputs: [input],
            outputs: [join(out, 'matte')],
            outputType: 'alpha',
            format: 'png',
            segmentSeconds: a.quick ? 2 : 1,
            device: device(kind),
            onWarning,
          });
          const frames = r.videos.reduce((n, v) => n + v.frames, 0);
          const bad = r.videos.find((v) => v.status !== 'done');
          if (bad) throw new Error(`segments: ${bad.input} ${bad.status}${bad.error ? `: ${bad.error}` : ''}`);
          return { requested: device(kind), used: used(r.provider), items: frames, unit: 'frames' };
        },
        compare: (g, c) => comparePixels(join(g, 'matte'), join(c, 'matte'), 1),
      };
    },
  };
}

async function main(): Promise<number> {
  const started = performance.now();
  // ONNX Runtime's warnings about the published UltraFace graph (initializers listed as inputs) would bury the report.
  onnxruntime.env.logLevel = 'error';
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`gpu-check: ${(err as Error).message}\n`);
    return 2;
  }
  a.ffmpeg ||= ffmpegPath();
  const work = a.workDir ?? (await mkdtemp(join(tmpdir(), 'clipstream-gpu-check-')));
  const loadStart = loadavg().map(r3);
  const gpu = await gpuInfo();
  const ort = ortInfo();
  const ff = await ffmpegInfo(a.ffmpeg);
  // Why the GPU side of the model jobs would fall back, as far as can be told before trying.
  const providerNote = ort.note ?? (gpu.name ? null : gpu.note);
  say(
    `gpu: ${gpu.name ?? gpu.note}; onnxruntime-node ${ort.version}: ${ort.cuda_provider_library ?? ort.note}; ffmpeg ${ff.path}: nvenc ${ff.nvenc.join(' ') || 'none'}`,
  );
  const all = await plans(a, work);
  const jobs: Partial<Record<JobName, JobFigures>> = {};
  let failed = false;
  let skipped = false;
  const summary = (exit: number, agree: boolean, stopped?: string) => ({
    check: 'gpu-check',
    date: new Date().toISOString(),
    mode: a.quick ? 'quick' : 'full',
    gpu,
    onnxruntime: ort,
    ffmpeg: ff,
    host: {
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      node: process.version,
      load_avg_start: loadStart,
      load_avg_end: loadavg().map(r3),
    },
    jobs,
    agree,
    gpu_ran: !skipped,
    seconds: r3((performance.now() - started) / 1000),
    exit,
    ...(stopped ? { stopped } : {}),
    work_dir: a.keep || a.workDir ? work : null,
  });
  // Stopped by gpu-check.sh's timeout: the figures so far still come out, as the one line.
  const onTerm = () => {
    process.stdout.write(`${JSON.stringify(summary(124, false, 'terminated (the time limit, GPU_CHECK_TIMEOUT_S) before every job finished'))}\n`);
    if (!a.keep && !a.workDir) rmSync(work, { recursive: true, force: true });
    process.exit(124);
  };
  process.on('SIGTERM', onTerm);
  for (const name of a.jobs) {
    const fig: JobFigures = {
      gpu: null,
      cpu: null,
      gpu_skipped: null,
      agree: false,
      max_abs_diff: null,
      compared: 0,
      tolerance: '',
      problems: [],
      warnings: [],
    };
    jobs[name] = fig;
    const gpuWarnings: string[] = [];
    try {
      const plan = await all[name]();
      fig.tolerance = plan.tolerance;
      for (const kind of ['cpu', 'gpu'] as const) {
        say(`${name} on the ${kind.toUpperCase()}`);
        const onWarning = (e: Error) => {
          const line = e.message.split('\n')[0]!;
          if (fig.warnings.length < 10) fig.warnings.push(`${kind}: ${line}`);
          if (kind === 'gpu') gpuWarnings.push(line);
        };
        const t0 = performance.now();
        const c0 = cpuSeconds();
        const side = await plan.side(kind, join(work, 'out', name, kind), onWarning);
        const wall = (performance.now() - t0) / 1000;
        const c1 = cpuSeconds();
        fig[kind] = { ...side, wall_s: r3(wall), per_s: r3(side.items / wall), cpu_s: c0 === null || c1 === null ? null : r3(c1 - c0) };
      }
      const g = fig.gpu!;
      const onGpu = name === 'clips' ? g.used.includes('nvenc') : g.used.startsWith('cuda');
      if (!onGpu) {
        const fallback = gpuWarnings.find((w) => /CUDA|NVENC|nvenc|GPU/.test(w));
        const before =
          name === 'clips'
            ? [ff.note ?? (await nvencError(a.ffmpeg, a.encoder)), gpu.name ? null : gpu.note].filter((x) => x !== null).join('; ') || null
            : providerNote;
        fig.gpu_skipped = `ran on the CPU fallback (${g.used}): ${before ?? fallback ?? 'the GPU part did not load'}`;
        skipped = true;
      }
      const c = await plan.compare(join(work, 'out', name, 'gpu'), join(work, 'out', name, 'cpu'));
      Object.assign(fig, { agree: c.agree, max_abs_diff: c.max_abs_diff, compared: c.compared, problems: c.problems });
      if (g.items === 0 || fig.cpu!.items === 0) {
        fig.agree = false;
        fig.problems.push('no work was done on one side');
      }
    } catch (err) {
      fig.agree = false;
      fig.error = (err as Error).message.split('\n')[0];
    }
    if (!fig.agree) failed = true;
    say(`${name}: agree=${fig.agree}${fig.gpu_skipped ? ` (GPU side skipped: ${fig.gpu_skipped})` : ''}${fig.error ? ` error: ${fig.error}` : ''}`);
  }
  process.off('SIGTERM', onTerm);
  const exit = failed ? 1 : skipped && a.requireGpu ? 3 : 0;
  process.stdout.write(`${JSON.stringify(summary(exit, !failed))}\n`);
  if (!a.keep && !a.workDir) await rm(work, { recursive: true, force: true });
  return exit;
}
process.exitCode = await main();
