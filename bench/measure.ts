/**
 * The in-process measurements of the bench: decode stage vs bare ffmpeg, model stage vs a
 * bare session.run loop, batch size distributions, and single stages run alone.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { predictFrameCount, toFastStart } from '../src/media/mp4.js';
import { spawnHelperPid, spawnViaHelper, useSpawnHelper } from '../src/media/spawner.js';
import { linspaceIndices } from '../src/media/sampling.js';
import { rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ort from 'onnxruntime-node';
import { type Extractor, extractFeatures } from '../src/infer/extractor.js';
import { decodeArgs, resolveDecodeOptions, type DecodeOptions } from '../src/media/decode.js';
import { decodeClips } from '../src/media/decode-stage.js';
import { readShards } from '../src/shards/tar-reader.js';
import { writeFeatureShards } from '../src/sinks/feature-shard.js';
import { vggishExamples } from '../src/features/vggish.js';
import type { DecodedAudio, DecodedVideo, Sample, ShardInfo, StreamItem, Tensor } from '../src/types.js';
import { readModelInfo } from '../src/models/info.js';

/** One row of the bench table: our figure against its reference, the ratio, and whether the target is met. */
export interface BenchRow {
  item: string;
  metric: string;
  ours: string;
  reference: string;
  ratio: number | null;
  /** The same ratio on CPU seconds (this process and its ffmpeg children), when measured: less affected by other load. */
  cpuRatio?: number | null;
  target: string;
  met: boolean | null;
}

export const now = (): number => performance.now() / 1000;

/**
 * CPU seconds of this process plus its reaped children (ffmpeg), from /proc/self/stat; null
 * off Linux. The machine may be shared, so ratios are also given on CPU time, which other
 * processes do not inflate the way they inflate wall time.
 */
export function cpuSeconds(): number | null {
  const self = procCpu('self');
  if (self === null) return null;
  // ffmpeg is started from the spawn helper (src/media/spawner.ts): its CPU, and that of the
  // children it reaped, count as ours.
  const helper = spawnHelperPid();
  return self + (helper === null ? 0 : (procCpu(String(helper)) ?? 0));
}

function procCpu(pid: string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14-17 of proc(5) (utime, stime, cutime, cstime); f[0] is field 3.
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return null;
  }
}

function cpuSince(start: number | null): number | null {
  const end = cpuSeconds();
  return start === null || end === null ? null : end - start;
}

/**
 * System CPU ms and minor page faults of this process per item, over a measured span. The
 * model stage sometimes lands in a phase where glibc hands the worker thread's big buffers back
 * to the kernel after every run and faults them in again on the next: the CPU per clip doubles,
 * much of it system time (bench/RESULTS.md, "The audio stage's slow phase is page faults").
 * These two figures make that phase visible beside a rate.
 */
export interface KernelShare {
  sysMsPerItem: number;
  faultsPerItem: number;
}

function kernelSince(start: NodeJS.ResourceUsage, items: number): KernelShare {
  const end = process.resourceUsage();
  return {
    sysMsPerItem: Math.round(((end.systemCPUTime - start.systemCPUTime) / 1000 / items) * 100) / 100,
    faultsPerItem: Math.round((end.minorPageFault - start.minorPageFault) / items),
  };
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function sink(onItem: (item: StreamItem) => void = () => {}): Writable {
  return new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(item: StreamItem, _e, cb) {
      onItem(item);
      cb();
    },
  });
}

export interface DecodeRun {
  seconds: number;
  cpuSeconds: number | null;
  clips: number;
  frames: number;
  audioSeconds: number;
  failed: number;
}

/** Our decode stage over the shards (tar reader included: it is how the stage is fed). */
export async function decodeOurs(shards: string[], options: DecodeOptions & { concurrency: number }): Promise<DecodeRun> {
  const r: DecodeRun = { seconds: 0, cpuSeconds: null, clips: 0, frames: 0, audioSeconds: 0, failed: 0 };
  const c0 = cpuSeconds();
  const t0 = now();
  await pipeline(
    readShards(shards),
    decodeClips(options),
    sink((item) => {
      if (item.kind !== 'sample') return;
      if (item.failure) r.failed++;
      r.clips++;
      r.frames += item.video?.decodedFrames ?? 0;
      if (item.audio) r.audioSeconds += item.audio.pcm.length / item.audio.sampleRate;
    }),
  );
  r.seconds = now() - t0;
  r.cpuSeconds = cpuSince(c0);
  return r;
}

/**
 * The same ffmpeg command line (same filters, same threads, same concurrency), reading the clip
 * file and writing to /dev/null, started the way the stage starts ffmpeg (from the spawn helper
 * unless CLIPSTREAM_SPAWN=direct) so that both pay the same process start.
 */
export async function decodeBaseline(
  files: string[],
  options: DecodeOptions & { concurrency: number },
  viaStdin = false,
): Promise<{ seconds: number; cpuSeconds: number | null; clips: number }> {
  const resolved = resolveDecodeOptions(options);
  // viaStdin: the clip is fed from memory through stdin (moov moved to the front, as the stage
  // does) instead of ffmpeg reading the file: the same input path as the stage, outputs still /dev/null.
  const inputs = new Map<string, Buffer>();
  if (viaStdin) for (const file of new Set(files)) inputs.set(file, toFastStart(await readFile(file)));
  // The same frame selection as the stage: picks predicted from the container.
  const picks = new Map<string, number[] | null>();
  for (const file of new Set(files)) {
    const n = resolved.video ? predictFrameCount(await readFile(file), resolved.windowSeconds) : null;
    picks.set(file, n !== null && n >= resolved.numFrames ? linspaceIndices(n, resolved.numFrames) : null);
  }
  const c0 = cpuSeconds();
  const t0 = now();
  await mapLimit(
    files,
    options.concurrency,
    (file) =>
      new Promise<void>((resolve, reject) => {
        const args = [
          '-y',
          ...decodeArgs(resolved, resolved.audio, { input: viaStdin ? 'pipe:0' : file, video: '/dev/null', audio: '/dev/null' }, picks.get(file)),
        ];
        const done = (code: number | null) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code} on ${file}`)));
        const feed = (stdin: Writable | null) => {
          if (!viaStdin || !stdin) return;
          stdin.on('error', () => {});
          stdin.end(inputs.get(file));
        };
        const stdio: Array<'pipe' | 'ignore'> = [viaStdin ? 'pipe' : 'ignore', 'ignore', 'ignore'];
        if (useSpawnHelper()) {
          spawnViaHelper(resolved.ffmpeg, args, stdio).then((c) => {
            feed(c.stdio[0] ?? null);
            return c.exited.then((e) => done(e.code));
          }, reject);
          return;
        }
        const child = spawn(resolved.ffmpeg, args, { stdio });
        feed(child.stdin);
        child.on('error', reject);
        child.on('close', done);
      }),
  );
  return { seconds: now() - t0, cpuSeconds: cpuSince(c0), clips: files.length };
}

/** Deterministic pseudo-random bytes / floats so that no model sees constant input. */
export function noiseBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function noiseFloats(n: number, seed: number, scale = 1): Float32Array {
  const b = noiseBytes(n, seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (b[i]! / 255 - 0.5) * scale;
  return out;
}

export interface BareResult {
  batchSize: number;
  itemsPerSecond: number;
  /** CPU seconds per item (all threads). */
  cpuPerItem: number | null;
  runs: number;
  /** Kernel time and minor page faults of this process per item (see `KernelShare`). */
  kernel: KernelShare;
}

/**
 * A bare `session.run` loop on pre-made tensors, per batch size. `item` is the per-item input
 * shape (a visual clip: [3,32,256,256], or [32,256,256,3] for a uint8 model; an audio clip: [examples, 96, 64] whose rows are
 * stacked along the batch axis as the audio stage does).
 */
export async function bareInference(
  modelPath: string,
  itemShape: number[],
  batchSizes: number[],
  seconds: number,
  threads: number,
  rowsPerItem = 1,
): Promise<BareResult[]> {
  // The session options of Extractor.load (same threads, no spinning, no arena), in the calling thread.
  const info = await readModelInfo(modelPath);
  const session = await ort.InferenceSession.create(modelPath, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: false,
    executionProviders: ['cpu'],
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  const name = session.inputNames[0]!;
  const outputs = session.outputNames.filter((n) => /^layer_\d+$/.test(n));
  const uint8 = info.inputs[0]?.type === 'uint8';
  const per = itemShape.reduce((a, b) => a * b, 1);
  const results: BareResult[] = [];
  try {
    for (const bs of batchSizes) {
      const shape = rowsPerItem === 1 ? [bs, ...itemShape] : [bs * itemShape[0]!, ...itemShape.slice(1)];
      // A model that takes decoded uint8 frames (the shipped SlowFast) is fed bytes, a float model floats.
      const tensor = uint8 ? new ort.Tensor('uint8', noiseBytes(per * bs, 7 + bs), shape) : new ort.Tensor('float32', noiseFloats(per * bs, 7 + bs), shape);
      await session.run({ [name]: tensor }, outputs); // warm-up
      let runs = 0;
      const k0 = process.resourceUsage();
      const c0 = cpuSeconds();
      const t0 = now();
      while (now() - t0 < seconds || runs < 2) {
        await session.run({ [name]: tensor }, outputs);
        runs++;
      }
      const cpu = cpuSince(c0);
      const kernel = kernelSince(k0, runs * bs);
      results.push({ batchSize: bs, itemsPerSecond: (runs * bs) / (now() - t0), cpuPerItem: cpu === null ? null : cpu / (runs * bs), runs, kernel });
    }
  } finally {
    await session.release();
  }
  return results;
}

const SHARD: ShardInfo = { url: '/bench/shard-000000.tar', name: 'shard-000000', index: 0 };

export function fakeSample(i: number, extra: Partial<Sample>): Sample {
  return {
    kind: 'sample',
    __key__: `b${String(i).padStart(6, '0')}_0`,
    __url__: SHARD.url,
    shard: SHARD,
    index: i,
    files: {},
    entry: { filename: `b${String(i).padStart(6, '0')}_0.mp4`, id: `b${String(i).padStart(6, '0')}`, segment: [0, 10] },
    ...extra,
  };
}

/** A few distinct decoded videos (uint8 T×H×W×3) shared by the samples that feed the visual stage. */
export function makeVideos(count: number, frames = 32, size = 256): DecodedVideo[] {
  return Array.from({ length: count }, (_, i) => ({
    frames: noiseBytes(frames * size * size * 3, 11 + i),
    numFrames: frames,
    height: size,
    width: size,
    decodedFrames: 250,
  }));
}

export function makeAudios(count: number, seconds = 10, rate = 16000): DecodedAudio[] {
  return Array.from({ length: count }, (_, i) => ({ pcm: noiseFloats(seconds * rate, 101 + i, 0.5), sampleRate: rate }));
}

export interface StageRun {
  seconds: number;
  cpuPerItem: number | null;
  items: number;
  itemsPerSecond: number;
  batches: number[];
  kernel: KernelShare;
}

/**
 * Our model stage (extractFeatures: batching, preprocessing into the reused batch buffer,
 * session.run, splitting outputs) fed by a producer that has everything ready (fast) or that
 * hands one item every `intervalMs` (slow).
 */
export async function modelStage(extractor: Extractor, samples: () => Sample[], batchSize: number, intervalMs = 0, queueSize?: number): Promise<StageRun> {
  const batches: number[] = [];
  const items = samples();
  const source =
    intervalMs > 0
      ? Readable.from(
          (async function* () {
            for (const s of items) {
              await new Promise((r) => setTimeout(r, intervalMs));
              yield s;
            }
          })(),
          { objectMode: true, highWaterMark: 1 },
        )
      : Readable.from(items, { objectMode: true, highWaterMark: 1 });
  let failed = 0;
  const k0 = process.resourceUsage();
  const c0 = cpuSeconds();
  const t0 = now();
  await pipeline(
    source,
    extractFeatures(extractor, { batchSize, queueSize, onBatch: (n) => batches.push(n) }),
    sink((item) => {
      if (item.kind === 'sample' && item.failure) failed++;
    }),
  );
  const seconds = now() - t0;
  const cpu = cpuSince(c0);
  if (failed > 0) throw new Error(`${failed} samples failed in the ${extractor.kind} model stage`);
  const kernel = kernelSince(k0, items.length);
  return { seconds, cpuPerItem: cpu === null ? null : cpu / items.length, items: items.length, itemsPerSecond: items.length / seconds, batches, kernel };
}

/** Audio examples made once, so the audio stage can be fed "the same tensors" as the bare loop. */
export function audioExamplesFor(audio: DecodedAudio): Tensor {
  return vggishExamples(audio.pcm, audio.sampleRate);
}

/** The tar reader alone: clips/s reading and splitting the shards. */
export async function readAlone(shards: string[]): Promise<{ seconds: number; cpuSeconds: number | null; clips: number }> {
  let clips = 0;
  const c0 = cpuSeconds();
  const t0 = now();
  await pipeline(
    readShards(shards),
    sink((i) => {
      if (i.kind === 'sample') clips++;
    }),
  );
  return { seconds: now() - t0, cpuSeconds: cpuSince(c0), clips };
}

/** The feature shard writer alone, fed records with features of the shipped models' sizes. */
export async function writeAlone(
  dir: string,
  count: number,
  layerSizes: { visual: number[]; audio: number[] },
): Promise<{ seconds: number; cpuSeconds: number | null; clips: number }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const feats = (sizes: number[], seed: number) => Object.fromEntries(sizes.map((n, l) => [`layer_${l}`, { data: noiseFloats(n, seed + l), shape: [n] }]));
  const items: StreamItem[] = [];
  for (let i = 0; i < count; i++) {
    items.push(
      fakeSample(i, {
        visualFeatures: [{ extractor_name: 'v', dataset: 'd', feat_array: feats(layerSizes.visual, i) }],
        audioFeatures: [{ extractor_name: 'a', dataset: 'd', feat_array: feats(layerSizes.audio, i + 1000) }],
      }),
    );
  }
  items.push({ kind: 'shard-end', shard: SHARD, samples: count });
  const c0 = cpuSeconds();
  const t0 = now();
  await pipeline(Readable.from(items, { objectMode: true }), writeFeatureShards({ outputDir: dir }));
  const seconds = now() - t0;
  const cpu = cpuSince(c0);
  await rm(dir, { recursive: true, force: true });
  return { seconds, cpuSeconds: cpu, clips: count };
}

export function histogram(values: number[]): Record<string, number> {
  const h: Record<string, number> = {};
  for (const v of values) h[v] = (h[v] ?? 0) + 1;
  return h;
}

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

export { join };

/**
 * Runs `script --child <job as JSON>` with tsx in its own process, so that its peak RSS is its
 * own, and resolves with the JSON the child printed after `tag` (e.g. `FACES_RESULT `).
 *
 * @example const r = await runChildScript<ChildRun>(fileURLToPath(import.meta.url), job, 'FACES_RESULT ', 'faces', ROOT);
 */
export function runChildScript<T>(script: string, job: unknown, tag: string, what: string, cwd: string): Promise<T> {
  return new Promise((res, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--child', JSON.stringify(job)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(tag));
      if (code !== 0 || !line) reject(new Error(`${what} bench child exited ${code}: ${err}`));
      else res(JSON.parse(line.slice(tag.length)) as T);
    });
  });
}

/**
 * The model stage against the bare loop at one batch size, side by side: both warmed up first (the
 * bare loop's warm-up run, `warm` for the stage), then `rounds` alternations of a bare loop and a
 * stage run; each side is its best round (highest rate, lowest CPU per item). The best of each
 * side, not the sum: a round lands at about 2.5 or about 5 ms of CPU per audio clip (bare loop,
 * stage on the worker and stage on the main thread alike), depending on whether glibc trims the
 * model's buffers after every run (RESULTS, "The audio stage's slow phase is page faults"), a
 * phase that summed rounds would mix unevenly.
 */
export async function stageAgainstBare(o: {
  modelPath: string;
  itemShape: number[];
  batchSize: number;
  seconds: number;
  threads: number;
  rowsPerItem?: number;
  rounds: number;
  warm: () => Promise<StageRun>;
  stage: () => Promise<StageRun>;
}): Promise<{ bare: BareResult; stage: StageRun }> {
  await o.warm();
  let bare: BareResult | null = null;
  let stage: StageRun | null = null;
  const batches: number[] = [];
  let runs = 0;
  const lower = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.min(a, b));
  for (let r = 0; r < o.rounds; r++) {
    const b = (await bareInference(o.modelPath, o.itemShape, [o.batchSize], o.seconds, o.threads, o.rowsPerItem))[0]!;
    runs += b.runs;
    bare = bare === null ? b : { ...(b.itemsPerSecond > bare.itemsPerSecond ? b : bare), cpuPerItem: lower(b.cpuPerItem, bare.cpuPerItem) };
    const s = await o.stage();
    batches.push(...s.batches);
    stage = stage === null ? s : { ...(s.itemsPerSecond > stage.itemsPerSecond ? s : stage), cpuPerItem: lower(s.cpuPerItem, stage.cpuPerItem) };
  }
  return { bare: { ...bare!, runs }, stage: { ...stage!, batches } };
}
