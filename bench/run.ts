/**
 * `npm run bench`: generates its own workload with the bundled ffmpeg (under `.bench/`), then
 * measures decode overhead, the inference ceiling, pipeline efficiency, the obvious script,
 * memory, batching and scaling, and prints a table (plus one JSON line with `--json`).
 *
 *   npm run bench                      full run: the rounds and sizes the targets are judged on (tens of minutes)
 *   npm run bench -- --quick           every section once on tiny work, for checking a change: under 2 minutes
 *                                      on an idle 2-core machine; no `met` column (its figures are not the targets')
 *   npm run bench -- --smoke --json    every section on smaller work still; CI checks that the bench still runs
 * After the table, the wall and CPU seconds of each section (docs/performance.md).
 *   npm run bench -- --md bench/RESULTS.md   also write the results as Markdown
 *
 * Sizes can be overridden: --pipeline-clips N, --naive-clips N, --decode-clips N,
 * --scaling 50,200,800, --memory 100,1000, --distinct N, --batch-size N, --threads N,
 * --workers N, --intra-op N, --only decode,infer,batching,pipeline,naive,scaling,memory,queue,faces,clips,scores,segments,shots,semdedup,dedup.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem, type as osType, release, availableParallelism, loadavg } from 'node:os';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor } from '../src/infer/extractor.js';
import { shippedModelsDir, DEFAULT_AUDIO_MODEL, DEFAULT_VISUAL_MODEL } from '../src/models/models-dir.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import type { ChildJob, ChildResult } from './child.js';
import {
  audioExamplesFor,
  bareInference,
  decodeBaseline,
  decodeOurs,
  fakeSample,
  histogram,
  makeAudios,
  makeVideos,
  mean,
  modelStage,
  readAlone,
  stageAgainstBare,
  writeAlone,
  type BareResult,
  type BenchRow,
  type StageRun,
} from './measure.js';
import { benchClipsJob, benchClipTables } from './clips.js';
import { benchFaces } from './faces.js';
import { naiveExtract } from './naive.js';
import { benchQueue } from './queue.js';
import { FULL_WORKLOAD, QUICK_WORKLOAD, SMOKE_WORKLOAD, makeClipSet, makeClips, type WorkloadSpec } from './workload.js';
import { readModelInfo } from '../src/models/info.js';
import { benchSegments } from './segments.js';
import { benchShots } from './shots.js';
import { benchSemdedup } from './semdedup.js';
import { benchDedup } from './dedup.js';
import { benchScores } from './scores.js';
import { SectionClock } from './sections.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = join(ROOT, '.bench');

interface Config {
  mode: 'full' | 'quick' | 'smoke';
  workload: WorkloadSpec;
  shardSize: number;
  decodeClips: number;
  bareSeconds: number;
  batchSizes: number[];
  visualItems: number;
  audioItems: number;
  slowIntervalMs: number;
  pipelineClips: number;
  naiveClips: number;
  scaling: number[];
  memory: number[];
  /** extract's options in every run (undefined: extract's defaults). */
  batchSize?: number;
  numWorkers: number;
  threads?: number;
  intraOp?: number;
  only: Set<string> | null;
  json: boolean;
  md: string | null;
}

function parseArgs(argv: string[]): Config {
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string) => (value(name) === undefined ? undefined : Number(value(name)));
  const list = (name: string) => value(name)?.split(',').map(Number);
  const mode = flag('smoke') ? 'smoke' : flag('quick') ? 'quick' : 'full';
  const base: Omit<Config, 'only' | 'json' | 'md' | 'numWorkers'> =
    mode === 'full'
      ? {
          mode,
          workload: FULL_WORKLOAD,
          shardSize: 50,
          decodeClips: 48,
          bareSeconds: 3,
          batchSizes: [1, 2, 4, 8],
          // Stage runs about as long as the bare loop's bareSeconds (visual ~8 clips/s, audio ~650):
          // a short run would charge the stage's start and drain to a fraction of a second of work.
          visualItems: 24,
          audioItems: 2000,
          slowIntervalMs: 40,
          pipelineClips: 200,
          naiveClips: 50,
          scaling: [50, 200, 1000],
          memory: [100, 1000],
        }
      : mode === 'quick'
        ? {
            mode,
            // Every section once on tiny work: the extract runs are 4 and 8 clips (pipeline, naive,
            // scaling and memory share them), each figure measured once.
            workload: QUICK_WORKLOAD,
            shardSize: 4,
            decodeClips: 4,
            bareSeconds: 0.5,
            batchSizes: [1, 4],
            visualItems: 4,
            audioItems: 32,
            slowIntervalMs: 20,
            pipelineClips: 8,
            naiveClips: 4,
            scaling: [4, 8],
            memory: [4, 8],
          }
        : {
            mode,
            workload: SMOKE_WORKLOAD,
            shardSize: 2,
            decodeClips: 2,
            bareSeconds: 0.1,
            batchSizes: [1, 2],
            visualItems: 2,
            audioItems: 8,
            slowIntervalMs: 10,
            pipelineClips: 4,
            naiveClips: 2,
            scaling: [2, 4],
            memory: [2, 4],
          };
  const workload = { ...base.workload, distinct: num('distinct') ?? base.workload.distinct };
  const only = value('only');
  return {
    ...base,
    workload,
    decodeClips: num('decode-clips') ?? base.decodeClips,
    pipelineClips: num('pipeline-clips') ?? base.pipelineClips,
    naiveClips: num('naive-clips') ?? base.naiveClips,
    scaling: list('scaling') ?? base.scaling,
    memory: list('memory') ?? base.memory,
    batchSize: num('batch-size'),
    numWorkers: num('workers') ?? 2,
    threads: num('threads'),
    intraOp: num('intra-op'),
    only: only ? new Set(only.split(',')) : null,
    json: flag('json'),
    md: value('md') ?? null,
  };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;

function runChild(job: ChildJob): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'child.ts'), JSON.stringify(job)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (code !== 0 || !line) reject(new Error(`bench child exited ${code}: ${err}`));
      else resolvePromise(JSON.parse(line.slice('BENCH_RESULT '.length)) as ChildResult);
    });
  });
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = mean(points.map((p) => p[0]));
  const my = mean(points.map((p) => p[1]));
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const want = (s: string) => cfg.only === null || cfg.only.has(s);
  const started = Date.now();
  const modelDir = shippedModelsDir();
  const visualPath = join(modelDir, DEFAULT_VISUAL_MODEL);
  const audioPath = join(modelDir, DEFAULT_AUDIO_MODEL);
  const cores = availableParallelism();
  const intraOp = cfg.intraOp ?? cores;
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores,
    memoryGiB: r2(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
    node: process.version,
    loadAverageAtStart: loadavg().map(r2),
    ffmpeg: ffmpegPath(),
  };
  const rows: BenchRow[] = [];
  const figures: Record<string, unknown> = {
    mode: cfg.mode,
    date: new Date().toISOString(),
    machine,
    config: { ...cfg, only: cfg.only ? [...cfg.only] : null },
  };
  const extractOptions = { batchSize: cfg.batchSize, parallelDecoders: cfg.numWorkers, threads: cfg.threads, intraOpThreads: cfg.intraOp };

  log(`clipstream bench (${cfg.mode}) on ${machine.cpu}, ${cores} cores`);
  const clock = new SectionClock(log);
  clock.start('workload');
  log('making the workload...');
  const t0 = Date.now();
  const made = await makeClips(WORK, cfg.workload, log);
  const maxClips = Math.max(cfg.decodeClips, cfg.pipelineClips, cfg.naiveClips, ...cfg.scaling, ...cfg.memory);
  // One pool; a set of N clips is its first shards (N a multiple of shardSize, or a short last shard).
  const set = (n: number) => makeClipSet(WORK, cfg.workload, n, cfg.shardSize);
  await set(maxClips);
  figures.workloadSeconds = r2((Date.now() - t0) / 1000);
  log(`workload ready in ${figures.workloadSeconds} s (${made.clips.length} distinct clips, up to ${maxClips} in shards of ${cfg.shardSize})`);

  // The sections with sizes of their own (segments, shots, semdedup) run their smoke sizes in quick mode: seconds of video, small N.
  const sectionMode = cfg.mode === 'full' ? 'full' : 'smoke';
  const decodeOpts = { concurrency: cfg.numWorkers, threads: cfg.threads };
  let decodeRate: number | null = null;
  let decodeCpu: number | null = null;

  // 1. Decode overhead
  if (want('decode')) {
    clock.start('decode');
    log('1. decode overhead...');
    const ds = await set(cfg.decodeClips);
    const files = ds.sources.map((i) => made.paths[i]!);
    // The exact resize (default: RGB at the source size, torch's bilinear in JS) and the fast one
    // (ffmpeg's scaler on YUV) are both measured; the other rows use the default.
    const variants = [
      { name: 'video', video: true, audio: false, resize: 'exact' as const },
      { name: 'video, --resize=fast', video: true, audio: false, resize: 'fast' as const },
      { name: 'audio', video: false, audio: true, resize: 'exact' as const },
      { name: 'video+audio', video: true, audio: true, resize: 'exact' as const },
      { name: 'video+audio, --resize=fast', video: true, audio: true, resize: 'fast' as const },
    ];
    const out: Record<string, unknown> = {};
    let frames = 0;
    let audioSeconds = 0;
    for (const v of variants) {
      const opts = { ...decodeOpts, video: v.video, audio: v.audio, resize: v.resize };
      const ours = await decodeOurs(ds.shards, opts);
      const base = await decodeBaseline(files, opts);
      const baseStdin = await decodeBaseline(files, opts, true);
      if (ours.failed > 0) throw new Error(`${ours.failed} clips failed to decode`);
      if (v.video) frames = ours.frames;
      if (v.audio) audioSeconds = ours.audioSeconds;
      const ratio = base.seconds / ours.seconds;
      const cpuRatio = ours.cpuSeconds && base.cpuSeconds ? base.cpuSeconds / ours.cpuSeconds : null;
      const ratioStdin = baseStdin.seconds / ours.seconds;
      const cpuRatioStdin = ours.cpuSeconds && baseStdin.cpuSeconds ? baseStdin.cpuSeconds / ours.cpuSeconds : null;
      out[v.name] = {
        stdinBaselineSeconds: r2(baseStdin.seconds),
        stdinBaselineCpuSeconds: baseStdin.cpuSeconds === null ? null : r2(baseStdin.cpuSeconds),
        ratioToStdinBaseline: r2(ratioStdin),
        cpuRatioToStdinBaseline: cpuRatioStdin === null ? null : r2(cpuRatioStdin),
        oursSeconds: r2(ours.seconds),
        baselineSeconds: r2(base.seconds),
        oursCpuSeconds: ours.cpuSeconds === null ? null : r2(ours.cpuSeconds),
        baselineCpuSeconds: base.cpuSeconds === null ? null : r2(base.cpuSeconds),
        cpuRatio: cpuRatio === null ? null : r2(cpuRatio),
        clips: ours.clips,
        frames: ours.frames,
        audioSeconds: r2(ours.audioSeconds),
        ratio: r2(ratio),
      };
      const unit = v.name === 'audio' ? 'audio s/s' : 'frames/s';
      const amount = v.name === 'audio' ? audioSeconds : frames;
      rows.push({
        item: '1 decode',
        metric: `${v.name} (${unit})`,
        ours: String(r2(amount / ours.seconds)),
        reference: `${r2(amount / base.seconds)} (ffmpeg → /dev/null)`,
        ratio: r2(ratio),
        cpuRatio: cpuRatio === null ? null : r2(cpuRatio),
        // Issue 22: the exact resize (the default) within 0.8 of bare ffmpeg; the other decodes within 0.9.
        target: v.name.startsWith('video+audio') ? '(info)' : v.name === 'video' ? '≥ 0.8' : '≥ 0.9',
        met: v.name.startsWith('video+audio') ? null : ratio >= (v.name === 'video' ? 0.8 : 0.9),
      });
      rows.push({
        item: '1 decode',
        metric: `${v.name} vs ffmpeg fed through stdin`,
        ours: String(r2(amount / ours.seconds)),
        reference: `${r2(amount / baseStdin.seconds)} (stdin → /dev/null)`,
        ratio: r2(ratioStdin),
        cpuRatio: cpuRatioStdin === null ? null : r2(cpuRatioStdin),
        target: '(info)',
        met: null,
      });
      if (v.name === 'video+audio') {
        decodeRate = ours.clips / ours.seconds;
        decodeCpu = ours.cpuSeconds === null ? null : ours.cpuSeconds / ours.clips;
      }
    }
    figures.decode = out;
  }

  // 2. Inference ceiling
  let visualStageRate: number | null = null;
  let audioStageRate: number | null = null;
  let visualStageCpu: number | null = null;
  let audioStageCpu: number | null = null;
  clock.start('models load');
  const videos = makeVideos(4);
  const audios = makeAudios(4, cfg.workload.seconds);
  const examples = audios.map(audioExamplesFor);
  const exShape = examples[0]!.shape;
  const visual = await Extractor.load(visualPath, { device: 'cpu', intraOpThreads: intraOp });
  const audio = await Extractor.load(audioPath, { device: 'cpu', intraOpThreads: intraOp });
  const visualSamples = (n: number) => () => Array.from({ length: n }, (_, i) => fakeSample(i, { video: videos[i % videos.length]! }));
  const audioExampleSamples = (n: number) => () => Array.from({ length: n }, (_, i) => fakeSample(i, { audioExamples: examples[i % examples.length]! }));
  const audioPcmSamples = (n: number) => () => Array.from({ length: n }, (_, i) => fakeSample(i, { audio: audios[i % audios.length]! }));
  if (want('infer') || want('pipeline')) {
    clock.start('infer');
    log('2. inference ceiling...');
    const visualUint8 = (await readModelInfo(visualPath)).inputs[0]?.type === 'uint8';
    const bareV = await bareInference(visualPath, visualUint8 ? [32, 256, 256, 3] : [3, 32, 256, 256], cfg.batchSizes, cfg.bareSeconds, intraOp);
    const bareA = await bareInference(audioPath, exShape, cfg.batchSizes, cfg.bareSeconds, intraOp, exShape[0]!);
    const best = (rs: BareResult[]) => rs.reduce((a, b) => (b.itemsPerSecond > a.itemsPerSecond ? b : a));
    const bv = best(bareV);
    const ba = best(bareA);
    // The rows compare the stage with the bare loop at the best batch size, alternating, both warmed up, best round of each (stageAgainstBare).
    const rounds = cfg.mode === 'full' ? 5 : 1;
    const vs = await stageAgainstBare({
      ...{
        modelPath: visualPath,
        itemShape: visualUint8 ? [32, 256, 256, 3] : [3, 32, 256, 256],
        batchSize: bv.batchSize,
        seconds: cfg.bareSeconds,
        threads: intraOp,
        rounds,
      },
      warm: () => modelStage(visual, visualSamples(bv.batchSize), bv.batchSize),
      stage: () => modelStage(visual, visualSamples(cfg.visualItems), bv.batchSize),
    });
    const as = await stageAgainstBare({
      ...{ modelPath: audioPath, itemShape: exShape, batchSize: ba.batchSize, seconds: cfg.bareSeconds, threads: intraOp, rowsPerItem: exShape[0]!, rounds },
      warm: () => modelStage(audio, audioExampleSamples(ba.batchSize * 2), ba.batchSize),
      stage: () => modelStage(audio, audioExampleSamples(cfg.audioItems), ba.batchSize),
    });
    const [sv, sa] = [vs.stage, as.stage];
    const saPcm = await modelStage(audio, audioPcmSamples(cfg.audioItems), ba.batchSize);
    visualStageRate = sv.itemsPerSecond;
    audioStageRate = saPcm.itemsPerSecond;
    visualStageCpu = sv.cpuPerItem;
    audioStageCpu = saPcm.cpuPerItem;
    figures.inference = {
      bareVisual: bareV.map((r) => ({ ...r, itemsPerSecond: r2(r.itemsPerSecond) })),
      bareAudio: bareA.map((r) => ({ ...r, itemsPerSecond: r2(r.itemsPerSecond) })),
      bareSideBySide: {
        visual: { ...vs.bare, itemsPerSecond: r2(vs.bare.itemsPerSecond) },
        audio: { ...as.bare, itemsPerSecond: r2(as.bare.itemsPerSecond) },
        rounds,
      },
      stageVisual: { batchSize: bv.batchSize, itemsPerSecond: r2(sv.itemsPerSecond), cpuPerItem: sv.cpuPerItem, batches: histogram(sv.batches) },
      stageAudio: { batchSize: ba.batchSize, itemsPerSecond: r2(sa.itemsPerSecond), cpuPerItem: sa.cpuPerItem, batches: histogram(sa.batches) },
      stageAudioFromPcm: { batchSize: ba.batchSize, itemsPerSecond: r2(saPcm.itemsPerSecond), cpuPerItem: saPcm.cpuPerItem },
    };
    const rv = sv.itemsPerSecond / vs.bare.itemsPerSecond;
    const ra = sa.itemsPerSecond / as.bare.itemsPerSecond;
    const cr = (bare: BareResult, stage: StageRun) => (bare.cpuPerItem && stage.cpuPerItem ? r2(bare.cpuPerItem / stage.cpuPerItem) : null);
    rows.push({
      item: '2 inference',
      metric: `visual clips/s (batch ${bv.batchSize})`,
      ours: String(r2(sv.itemsPerSecond)),
      reference: `${r2(vs.bare.itemsPerSecond)} (bare session.run, best of ${rounds} alternated)`,
      ratio: r2(rv),
      cpuRatio: cr(vs.bare, sv),
      target: '≥ 0.9',
      met: rv >= 0.9,
    });
    rows.push({
      item: '2 inference',
      metric: `audio clips/s (batch ${ba.batchSize}, ${exShape[0]} examples/clip)`,
      ours: String(r2(sa.itemsPerSecond)),
      reference: `${r2(as.bare.itemsPerSecond)} (bare session.run, best of ${rounds} alternated)`,
      ratio: r2(ra),
      cpuRatio: cr(as.bare, sa),
      target: '≥ 0.9',
      met: ra >= 0.9,
    });
    // The audio stage's slow phase shows as system time and page faults (RESULTS, "The audio stage's slow phase is page faults").
    rows.push({
      item: '2 inference',
      metric: 'audio: system ms / minor page faults per clip',
      ours: `${sa.kernel.sysMsPerItem} / ${sa.kernel.faultsPerItem}`,
      reference: `${as.bare.kernel.sysMsPerItem} / ${as.bare.kernel.faultsPerItem} (bare, its best round)`,
      ratio: null,
      cpuRatio: null,
      target: '(info)',
      met: null,
    });
  }

  // 6. Batching
  if (want('batching')) {
    clock.start('batching');
    log('6. batching...');
    const bs = 8;
    const fast = await modelStage(audio, audioExampleSamples(cfg.audioItems), bs);
    // The slow producer sends one clip per slowIntervalMs: 50 at most (2 s at 40 ms).
    const slowItems = Math.max(4, Math.min(50, Math.floor(cfg.audioItems / 4)));
    const slow = await modelStage(audio, audioExampleSamples(slowItems), bs, cfg.slowIntervalMs);
    const vfast = await modelStage(visual, visualSamples(Math.max(2, Math.floor(cfg.visualItems / 2))), 4);
    figures.batching = {
      maxBatch: bs,
      audioFast: { histogram: histogram(fast.batches), mean: r2(mean(fast.batches)) },
      audioSlow: { intervalMs: cfg.slowIntervalMs, histogram: histogram(slow.batches), mean: r2(mean(slow.batches)) },
      visualFastMax4: { histogram: histogram(vfast.batches), mean: r2(mean(vfast.batches)) },
    };
    rows.push({
      item: '6 batching',
      metric: `audio, fast producer (max ${bs})`,
      ours: `mean ${r2(mean(fast.batches))}`,
      reference: JSON.stringify(histogram(fast.batches)),
      ratio: null,
      target: 'large',
      met: mean(fast.batches) >= bs * 0.75,
    });
    rows.push({
      item: '6 batching',
      metric: `audio, 1 clip / ${cfg.slowIntervalMs} ms`,
      ours: `mean ${r2(mean(slow.batches))}`,
      reference: JSON.stringify(histogram(slow.batches)),
      ratio: null,
      target: 'small',
      met: mean(slow.batches) <= 1.5,
    });
  }
  await visual.close();
  await audio.close();

  const child = (n: number) => set(n).then((s) => runChild({ shards: s.shards, out: join(WORK, 'out', `run-${n}`), ...extractOptions }));
  const childRuns = new Map<number, ChildResult>();
  const childRun = async (n: number) => {
    if (!childRuns.has(n)) {
      log(`   extract on ${n} clips (child process)...`);
      const r = await child(n);
      if (r.failed > 0 || r.clips !== n) throw new Error(`extract on ${n} clips wrote ${r.clips}, failed ${r.failed}: ${r.warnings.join('; ')}`);
      log(`   ${n} clips in ${r2(r.seconds)} s = ${r2(r.clipsPerSecond)} clips/s, peak RSS ${r2(r.peakRssMB)} MB`);
      childRuns.set(n, r);
    }
    return childRuns.get(n)!;
  };

  // 3. Pipeline efficiency
  if (want('pipeline')) {
    clock.start('pipeline');
    log('3. pipeline efficiency...');
    const ps = await set(cfg.pipelineClips);
    const rd = await readAlone(ps.shards);
    const wr = await writeAlone(join(WORK, 'out', 'write-alone'), cfg.pipelineClips, { visual: [11, 44, 88, 176, 288], audio: [8, 16, 32, 64, 128] });
    if (decodeRate === null) {
      const ds = await set(cfg.decodeClips);
      const d = await decodeOurs(ds.shards, { ...decodeOpts, video: true, audio: true });
      decodeRate = d.clips / d.seconds;
      decodeCpu = d.cpuSeconds === null ? null : d.cpuSeconds / d.clips;
    }
    const run = await childRun(cfg.pipelineClips);
    const stages: Record<string, number> = {
      read: rd.clips / rd.seconds,
      decode: decodeRate,
      visual: visualStageRate!,
      audio: audioStageRate!,
      write: wr.clips / wr.seconds,
    };
    const slowest = Object.entries(stages).reduce((a, b) => (b[1] < a[1] ? b : a));
    // Every stage alone already uses both cores; if none of them leaves a core idle, the best
    // a pipeline can do on the same cores is one clip per (sum of the stages' times per clip).
    const serialBound = 1 / Object.values(stages).reduce((a, r) => a + 1 / r, 0);
    const ratio = run.clipsPerSecond / slowest[1];
    // The same on CPU time: what each stage costs per clip alone, summed, vs what the pipeline costs per clip.
    const cpuPerClip: Record<string, number | null> = {
      read: rd.cpuSeconds === null ? null : rd.cpuSeconds / rd.clips,
      decode: decodeCpu,
      visual: visualStageCpu,
      audio: audioStageCpu,
      write: wr.cpuSeconds === null ? null : wr.cpuSeconds / wr.clips,
    };
    const cpuSum = Object.values(cpuPerClip).every((v) => v !== null) ? Object.values(cpuPerClip).reduce((a, v) => a! + v!, 0)! : null;
    const pipeCpu = run.cpuSeconds === null ? null : run.cpuSeconds / run.clips;
    figures.pipeline = {
      stageCpuSecondsPerClip: Object.fromEntries(Object.entries(cpuPerClip).map(([k, v]) => [k, v === null ? null : Math.round(v * 1000) / 1000])),
      stageCpuSum: cpuSum === null ? null : Math.round(cpuSum * 1000) / 1000,
      extractCpuSecondsPerClip: pipeCpu === null ? null : Math.round(pipeCpu * 1000) / 1000,
      cpuBoundClipsPerSecond: cpuSum === null ? null : r2(cores / cpuSum),
      coresBusy: run.cpuSeconds === null ? null : r2(run.cpuSeconds / run.seconds),
      clips: cfg.pipelineClips,
      extractClipsPerSecond: r2(run.clipsPerSecond),
      stagesAlone: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, r2(v)])),
      slowest: slowest[0],
      sharedCoreBound: r2(serialBound),
      ratioToSlowest: r2(ratio),
      ratioToSharedCoreBound: r2(run.clipsPerSecond / serialBound),
      batches: { visual: histogram(run.batches.visual), audio: histogram(run.batches.audio) },
      peakRssMB: r2(run.peakRssMB),
    };
    rows.push({
      item: '3 pipeline',
      metric: `extract clips/s vs slowest stage (${slowest[0]})`,
      ours: String(r2(run.clipsPerSecond)),
      reference: `${r2(slowest[1])} (${slowest[0]} alone)`,
      ratio: r2(ratio),
      target: '≥ 0.9',
      met: ratio >= 0.9,
    });
    rows.push({
      item: '3 pipeline',
      metric: 'extract vs shared-core bound 1/Σ(1/stage)',
      ours: String(r2(run.clipsPerSecond)),
      reference: String(r2(serialBound)),
      ratio: r2(run.clipsPerSecond / serialBound),
      target: '(info)',
      met: null,
    });
    if (cpuSum !== null && pipeCpu !== null) {
      rows.push({
        item: '3 pipeline',
        metric: 'CPU s per clip: Σ stages alone vs extract',
        ours: pipeCpu.toFixed(3),
        reference: `${cpuSum.toFixed(3)} (Σ), ${cores} cores → ≤ ${r2(cores / cpuSum)} clips/s`,
        ratio: null,
        cpuRatio: r2(cpuSum / pipeCpu),
        target: '(info)',
        met: null,
      });
    }
    rows.push({
      item: '6 batching',
      metric: 'extract, visual batches (decode-fed)',
      ours: `mean ${r2(mean(run.batches.visual))}`,
      reference: JSON.stringify(histogram(run.batches.visual)),
      ratio: null,
      target: '(info)',
      met: null,
    });
  }

  // 4. Against the obvious script
  if (want('naive')) {
    clock.start('naive');
    log('4. the obvious script...');
    const ns = await set(cfg.naiveClips);
    const naive = await naiveExtract(ns.shards, join(WORK, 'out', 'naive'), visualPath, audioPath);
    const ours = await childRun(cfg.naiveClips);
    const naiveRate = naive.clips / naive.seconds;
    const ratio = ours.clipsPerSecond / naiveRate;
    const naiveCpu = naive.cpuSeconds === null ? null : naive.cpuSeconds / naive.clips;
    const oursCpu = ours.cpuSeconds === null ? null : ours.cpuSeconds / ours.clips;
    const cpuRatio = naiveCpu !== null && oursCpu !== null ? naiveCpu / oursCpu : null;
    figures.naive = {
      naiveCpuSecondsPerClip: naiveCpu === null ? null : Math.round(naiveCpu * 1000) / 1000,
      extractCpuSecondsPerClip: oursCpu === null ? null : Math.round(oursCpu * 1000) / 1000,
      cpuRatio: cpuRatio === null ? null : r2(cpuRatio),
      clips: cfg.naiveClips,
      naiveSeconds: r2(naive.seconds),
      naiveClipsPerSecond: r2(naiveRate),
      extractSeconds: r2(ours.seconds),
      extractClipsPerSecond: r2(ours.clipsPerSecond),
      speedup: r2(ratio),
    };
    rows.push({
      item: '4 vs script',
      metric: `clips/s on ${cfg.naiveClips} clips`,
      ours: String(r2(ours.clipsPerSecond)),
      reference: `${r2(naiveRate)} (temp files, batch 1)`,
      ratio: r2(ratio),
      cpuRatio: cpuRatio === null ? null : r2(cpuRatio),
      target: '≥ 3',
      met: ratio >= 3,
    });
  }

  // 7. Scaling
  if (want('scaling')) {
    clock.start('scaling');
    log('7. scaling...');
    // Raw: the run's seconds over its clips (start-up included: model loads, worker start, the
    // first clip's way through the pipeline, ~2-3 s). Steady: the seconds after the first clip
    // came out over the clips after it, which is what "time per clip" means once running.
    const raw: Record<string, number> = {};
    const per: Record<string, number> = {};
    const startup: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    for (const n of cfg.scaling) {
      const r = await childRun(n);
      raw[n] = r.seconds / n;
      const first = r.firstClipSeconds ?? 0;
      startup[n] = first;
      // CPU seconds per clip do not move with the machine's load the way wall time does.
      if (r.cpuSeconds !== null) cpu[n] = r.cpuSeconds / n;
      per[n] = n > 1 ? (r.seconds - first) / (n - 1) : r.seconds / n;
    }
    const values = Object.values(per);
    const spread = Math.max(...values) / Math.min(...values);
    const rawValues = Object.values(raw);
    const rawSpread = Math.max(...rawValues) / Math.min(...rawValues);
    const ms = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
    figures.scaling = {
      secondsPerClip: ms(per),
      maxOverMin: r2(spread),
      rawSecondsPerClip: ms(raw),
      rawMaxOverMin: r2(rawSpread),
      firstClipSeconds: ms(startup),
      cpuSecondsPerClip: ms(cpu),
    };
    rows.push({
      item: '7 scaling',
      metric: `s/clip after the first clip at ${cfg.scaling.join(' / ')} clips`,
      ours: values.map((v) => v.toFixed(3)).join(' / '),
      reference: 'max / min',
      ratio: r2(spread),
      target: '≤ 1.10',
      met: spread <= 1.1,
    });
    if (Object.keys(cpu).length === cfg.scaling.length) {
      const cv = Object.values(cpu);
      rows.push({
        item: '7 scaling',
        metric: 'CPU s/clip, start-up included (this process, the spawn helper, ffmpeg)',
        ours: cv.map((v) => v.toFixed(3)).join(' / '),
        reference: 'max / min',
        ratio: r2(Math.max(...cv) / Math.min(...cv)),
        target: '(info)',
        met: null,
      });
    }
    rows.push({
      item: '7 scaling',
      metric: `s/clip raw (start-up ${Object.values(startup)
        .map((v) => v.toFixed(1))
        .join(' / ')} s included)`,
      ours: rawValues.map((v) => v.toFixed(3)).join(' / '),
      reference: 'max / min',
      ratio: r2(rawSpread),
      target: '(info)',
      met: null,
    });
  }

  // 5. Memory
  if (want('memory')) {
    clock.start('memory');
    log('5. memory...');
    const [small, large] = [Math.min(...cfg.memory), Math.max(...cfg.memory)];
    const a = await childRun(small);
    const b = await childRun(large);
    // After warm-up: the peak of the RSS samples taken once the first `warm` clips are done (models
    // loaded, the pipeline full, ONNX Runtime's buffers made), in each run; the whole-run peaks are kept for reference.
    const warm = Math.floor(small / 2);
    const peakAfterWarmUp = (r: ChildResult) => Math.max(...r.rss.filter(([, , done]) => done >= warm).map(([, mb]) => mb));
    const [aWarm, bWarm] = [peakAfterWarmUp(a), peakAfterWarmUp(b)];
    const ratio = bWarm / aWarm;
    // Trend over the run after warm-up (first quarter of the clips dropped): MB per 1000 clips.
    const points = b.rss.filter(([, , done]) => done >= large / 4).map(([, mb, done]) => [done, mb] as [number, number]);
    const mbPer1000 = slope(points) * 1000;
    const growth = (mbPer1000 * (large * 0.75)) / 1000;
    const leakFree = growth <= 0.05 * b.peakRssMB;
    const q = (col: 1 | 3 | 4) =>
      [
        [0, 0.25],
        [0.25, 0.5],
        [0.5, 0.75],
        [0.75, 1.01],
      ].map(([lo, hi]) => r2(mean(b.rss.filter((s) => s[2] >= lo! * large && s[2] < hi! * large).map((s) => s[col]))));
    // The JS side alone (V8 heap; Buffers and typed arrays): flat here means nothing is retained per clip by our code.
    const heapPer1000 = slope(b.rss.filter(([, , done]) => done >= large / 4).map((s) => [s[2], s[3]] as [number, number])) * 1000;
    const extPer1000 = slope(b.rss.filter(([, , done]) => done >= large / 4).map((s) => [s[2], s[4]] as [number, number])) * 1000;
    figures.memory = {
      peakRssMB: { [small]: r2(a.peakRssMB), [large]: r2(b.peakRssMB) },
      warmUpClips: warm,
      peakRssAfterWarmUpMB: { [small]: r2(aWarm), [large]: r2(bWarm) },
      ratio: r2(ratio),
      wholeRunRatio: r2(b.peakRssMB / a.peakRssMB),
      trendMBPer1000Clips: r2(mbPer1000),
      meanRssMBByQuarter: q(1),
      heapUsedTrendMBPer1000Clips: r2(heapPer1000),
      meanHeapUsedMBByQuarter: q(3),
      externalTrendMBPer1000Clips: r2(extPer1000),
      meanExternalMBByQuarter: q(4),
      samples: b.rss.length,
    };
    rows.push({
      item: '5 memory',
      metric: `peak RSS ${small} vs ${large} clips after the first ${warm} clips (MB)`,
      ours: `${r2(aWarm)} / ${r2(bWarm)}`,
      reference: `ratio; whole runs ${r2(a.peakRssMB)} / ${r2(b.peakRssMB)}`,
      ratio: r2(ratio),
      target: '≤ 1.2',
      met: ratio <= 1.2,
    });
    rows.push({
      item: '5 memory',
      metric: `RSS trend over ${large} clips after warm-up`,
      ours: `${r2(mbPer1000)} MB/1000 clips`,
      reference: `quarters ${q(1).join(' / ')} MB`,
      ratio: null,
      target: 'no upward trend (< 5% of peak)',
      met: leakFree,
    });
    rows.push({
      item: '5 memory',
      metric: `JS heap / external trend over ${large} clips after warm-up`,
      ours: `${r2(heapPer1000)} / ${r2(extPer1000)} MB/1000 clips`,
      reference: `heapUsed quarters ${q(3).join(' / ')} MB`,
      ratio: null,
      target: '(info)',
      met: null,
    });
  }

  // 8. Queue overhead: 1, 2, 4 queue workers against as many --rank/--world runs (bench/queue.ts).
  if (want('queue')) {
    clock.start('queue');
    log('8. queue workers...');
    // Quick and smoke: 2 units of 2 clips, each worker count once, no untimed warm-up run.
    const qs = await makeClipSet(WORK, cfg.workload, cfg.mode === 'full' ? 96 : 4, cfg.mode === 'full' ? 4 : 2);
    const q = await benchQueue(qs.shards, {
      workers: cfg.mode === 'full' ? [1, 2, 4] : cfg.mode === 'quick' ? [1, 2] : [1],
      repeats: cfg.mode === 'full' ? 3 : 1,
      warmUp: cfg.mode === 'full',
      log,
    });
    if (q) {
      figures.queue = q.runs;
      rows.push(...q.rows);
    }
  }

  if (want('faces')) {
    clock.start('faces');
    log('faces: peak RSS on 1/2/5-minute videos (quick: 4/8/16 s, smoke: 2/4/8 s), detector on the worker vs the main thread');
    rows.push(...(await benchFaces({ quick: cfg.mode !== 'full', lengths: cfg.mode === 'smoke' ? [2, 4, 8] : undefined, log })));
  }

  if (want('clips')) {
    clock.start('clips');
    log('clips: cost per clip, 100 clips from a 30-min source vs 10 from a 3-min one, with peak RSS');
    rows.push(...(await benchClipsJob({ log, quick: cfg.mode !== 'full', smoke: cfg.mode === 'smoke' })));
    log(`clips: table work per video with ${cfg.mode === 'full' ? 10000 : 200} videos recorded`);
    rows.push(...(await benchClipTables({ videos: cfg.mode === 'full' ? 10_000 : 200, log })));
  }

  if (want('scores')) {
    clock.start('scores');
    log('scores: clips job CPU with per-clip scores vs without, side by side');
    rows.push(...(await benchScores({ seconds: cfg.mode === 'full' ? 40 : 4, repeat: cfg.mode === 'full' ? 2 : 1, log })));
  }

  // 9. segments: the job vs a bare decode → session.run → encode loop and vs the seed's method; RSS short vs long source
  if (want('segments')) {
    clock.start('segments');
    log('9. segments...');
    const s = await benchSegments(sectionMode, log, join(WORK, 'segments'));
    rows.push(...s.rows);
    figures.segments = s.figures;
  }

  // 10. shots: detectShots vs PySceneDetect (when CLIPSTREAM_PYSCENEDETECT is set) on a 1080p video; RSS 1 vs 10 min
  if (want('shots')) {
    clock.start('shots');
    log('10. shots...');
    const s = await benchShots({ mode: sectionMode, log });
    rows.push(...s.rows);
    figures.shots = s.figures;
  }

  // 11. semdedup: k-means + clusters on N × 2,304 float16 rows; peak RSS flat in the number of shards; ONNX vs JS products.
  if (want('semdedup')) {
    clock.start('semdedup');
    log('11. semdedup...');
    const s = await benchSemdedup(sectionMode, log, join(WORK, 'semdedup'));
    rows.push(...s.rows);
    figures.semdedup = s.figures;
  }

  // 12. dedup: synthetic fingerprints with planted copies, deduplicated end to end (target: 100,000 in under a minute)
  if (want('dedup')) {
    clock.start('dedup');
    const count = cfg.mode === 'full' ? 100_000 : cfg.mode === 'quick' ? 5000 : 2000;
    log(`12. dedup: ${count} fingerprints end to end...`);
    const d = await benchDedup({ count, log });
    rows.push(...d.rows);
    figures.dedup = d.figures;
  }

  clock.stop();
  figures.sections = clock.times;
  log(`time per section (load average at start and end; other processes inflate wall, not CPU):\n${clock.summary(cores)}`);
  figures.totalSeconds = r2((Date.now() - started) / 1000);
  figures.loadAverageAtEnd = loadavg().map(r2);
  // Quick and smoke figures come from tiny work, once each: they show that every section runs and
  // which way a change moves a figure, not whether a target is met (that is the full bench's job).
  const judged = cfg.mode === 'full';
  if (!judged) for (const r of rows) r.met = null;
  figures.judged = judged;
  figures.rows = rows;
  const table = formatTable(rows, judged);
  if (!judged) process.stdout.write(`${NOT_JUDGED(cfg.mode)}\n\n`);
  process.stdout.write(`${table}\n`);
  process.stdout.write(`total ${figures.totalSeconds} s\n`);
  if (cfg.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  if (cfg.md) {
    await mkdir(dirname(cfg.md), { recursive: true });
    await writeFile(cfg.md, formatMarkdown(figures, table));
    log(`wrote ${cfg.md}`);
  }
}

const NOT_JUDGED = (mode: string) =>
  `${mode} mode: every section once on tiny work, to check that a change runs and which way it moves a figure. ` +
  'These figures are not measurements of the targets (no "met" column): the targets are judged by the full bench, `npm run bench`, on a quiet machine.';

/** The table; without the `met` column when the figures are not `judged` (quick, smoke). */
function formatTable(rows: BenchRow[], judged = true): string {
  const head = ['item', 'metric', 'ours', 'reference', 'ratio', 'CPU-time ratio', judged ? 'target' : 'target (full bench)', ...(judged ? ['met'] : [])];
  const cells = rows.map((r) => [
    r.item,
    r.metric,
    r.ours,
    r.reference,
    r.ratio === null ? '' : String(r.ratio),
    r.cpuRatio == null ? '' : String(r.cpuRatio),
    r.target,
    ...(judged ? [r.met === null ? '' : r.met ? 'yes' : 'NO'] : []),
  ]);
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...cells.map((c) => `| ${c.join(' | ')} |`)].join('\n');
}

function formatMarkdown(figures: Record<string, unknown>, table: string): string {
  const m = figures.machine as Record<string, unknown>;
  return [
    '# Bench results',
    '',
    `Latest \`npm run bench\` (${figures.mode}) run: ${String(figures.date)}, ${String(m.cpu)}, ${String(m.cores)} cores, ${String(m.memoryGiB)} GiB, ${String(m.os)}, Node ${String(m.node)}, CPU only (no GPU). Took ${String(figures.totalSeconds)} s. Load average (1/5/15 min) at start ${JSON.stringify(m.loadAverageAtStart)}, at end ${JSON.stringify(figures.loadAverageAtEnd)}: above the core count means other processes shared the cores, which inflates wall times; the CPU-time ratios (this process plus its ffmpeg children) are less affected.`,
    '',
    ...(figures.judged === false ? [NOT_JUDGED(String(figures.mode)), ''] : []),
    table,
    '',
    '## All figures (the `--json` line)',
    '',
    '```json',
    JSON.stringify(figures, null, 2),
    '```',
    '',
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
