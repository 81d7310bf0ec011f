/**
 * Prototype for issue 22 item 1: in-process decoding with the npm package `node-av` (6.1.1 ships FFmpeg 8.1
 * inside its platform package, not 7) against the project's decode stage (one ffmpeg per clip).
 *
 * NOT part of `npm run bench` or CI, and node-av is NOT a dependency of the project: it is
 * loaded from a scratch install outside the repository (NODEAV_DIR, default /tmp/nodeav):
 *   mkdir /tmp/nodeav && cd /tmp/nodeav && npm init -y && npm install node-av@6 --ignore-scripts
 * Run: `npx tsx bench/nodeav-decode.ts compare|cpu|crash|fuzz|zoo ...` (see main() at the bottom; `one` and
 * `fuzzchild` are the child processes of `crash` and `fuzz`).
 * The figures it measured are in bench/RESULTS.md, "In-process decoding with node-av (issue 22)".
 *
 * decodeInProcess does the work of decodeClip in exact mode: the first `windowSeconds` of
 * video, the `numFrames` linspace picks converted to RGB24 at the source size (BT.601, the
 * reference's range rule, swscale bilinear: rgbFilter's filter string, in libavfilter), then
 * FrameResizer; the audio resampled to `sampleRate` (aresample) as float and averaged to mono.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClipstreamError } from '../src/errors.js';
import { decodeClip, type ResolvedDecodeOptions, resolveDecodeOptions, rgbFilter } from '../src/media/decode.js';
import { parseCrossingId, pickCrossings } from '../test/zoo/crossings.js';
import { generatedEntries } from '../test/zoo/generated.js';
import { cpuSeconds, decodeBaseline, decodeOurs } from './measure.js';
import { QUICK_WORKLOAD, makeClipSet, makeClips } from './workload.js';
import { predictFrameCount } from '../src/media/mp4.js';
import { FrameResizer } from '../src/media/resize.js';
import { linspaceIndices } from '../src/media/sampling.js';

/** The few node-av shapes this prototype touches (node-av is not installed in the project). */
interface AvFrame {
  width: number;
  height: number;
  pts: bigint;
  timeBase: { num: number; den: number };
  channels: number;
  nbSamples: number;
  toBuffer(): Buffer;
  free(): void;
}
interface AvStream {
  index: number;
  timeBase: { num: number; den: number };
  startTime: bigint;
  codecpar: { getCodedSideData(type: unknown): Buffer | null };
}
interface AvPacket {
  streamIndex: number;
}
interface AvDemuxer {
  video(): AvStream | null | undefined;
  audio(): AvStream | null | undefined;
  packetsSync(): Generator<AvPacket | null>;
  closeSync(): void;
}
interface AvDecoder {
  decodeSync(p: AvPacket | null): void;
  receiveSync(): unknown;
  close(): void;
}
interface AvFilter {
  processSync(f: AvFrame | null): void;
  receiveSync(): unknown;
  close(): void;
}
export interface NodeAv {
  Demuxer: { openSync(input: Buffer | string): AvDemuxer };
  Decoder: { createSync(s: AvStream, o?: object): AvDecoder };
  FilterAPI: { create(description: string, o?: object): AvFilter };
  Frame: new () => AvFrame;
  AV_PKT_DATA_DISPLAYMATRIX: unknown;
  ffmpegVersion?: () => string;
}

export const NODEAV_DIR = process.env.NODEAV_DIR ?? '/tmp/nodeav';

export async function loadNodeAv(dir = NODEAV_DIR): Promise<NodeAv> {
  return (await import(pathToFileURL(join(dir, 'node_modules/node-av/dist/index.js')).href)) as NodeAv;
}

export interface InProcessClip {
  frames: Uint8Array | null;
  decodedFrames: number;
  pcm: Float32Array | null;
}

/**
 * The autorotation the ffmpeg CLI applies (its rule, restated): theta from the display matrix,
 * 90 → transpose=clock, 180 → hflip,vflip, 270 → transpose=cclock.
 */
function rotationFilter(av: NodeAv, stream: AvStream): string {
  const sd = stream.codecpar.getCodedSideData(av.AV_PKT_DATA_DISPLAYMATRIX);
  if (!sd || sd.length < 36) return '';
  const m = Array.from({ length: 9 }, (_, i) => sd.readInt32LE(i * 4));
  const s0 = Math.hypot(m[0]!, m[3]!);
  const s1 = Math.hypot(m[1]!, m[4]!);
  if (s0 === 0 || s1 === 0) return '';
  let theta = Math.round((Math.atan2(m[1]! / s1, m[0]! / s0) * 180) / Math.PI);
  theta -= 360 * Math.floor(theta / 360 + 0.9 / 360);
  if (Math.abs(theta - 90) < 1) return 'transpose=clock,';
  if (Math.abs(theta - 180) < 1) return 'hflip,vflip,';
  if (Math.abs(theta - 270) < 1) return 'transpose=cclock,';
  return '';
}

function isFrame(av: NodeAv, x: unknown): x is AvFrame {
  return x instanceof av.Frame;
}

/** Seconds of a frame from the stream's start (the frame's own time base: the decoder may set 1/sample rate). */
function frameSeconds(f: AvFrame, stream: AvStream): number {
  const start = stream.startTime < 0n || stream.startTime > 1n << 62n ? 0 : (Number(stream.startTime) * stream.timeBase.num) / stream.timeBase.den;
  const tb = f.timeBase.den > 0 ? f.timeBase : stream.timeBase;
  return (Number(f.pts) * tb.num) / tb.den - start;
}

/** Counts the video frames of the window (when the container index predicts none). */
function countFrames(av: NodeAv, data: Buffer, o: ResolvedDecodeOptions): number {
  const demuxer = av.Demuxer.openSync(data);
  try {
    const vs = demuxer.video();
    if (!vs) throw new Error('no video stream');
    const dec = av.Decoder.createSync(vs, { threadCount: o.threads, exitOnError: false });
    let n = 0;
    let done = false;
    const drain = () => {
      for (let f = dec.receiveSync(); isFrame(av, f); f = dec.receiveSync()) {
        if (frameSeconds(f, vs) < o.windowSeconds) n++;
        else done = true;
        f.free();
      }
    };
    for (const p of demuxer.packetsSync()) {
      if (p && p.streamIndex !== vs.index) continue;
      dec.decodeSync(p);
      drain();
      if (done) break;
    }
    dec.close();
    return n;
  } finally {
    demuxer.closeSync();
  }
}

/**
 * decodeClip's exact-mode work, in this process. Throws (a JS error) on what node-av reports;
 * what happens on a native fault is what the `crash` mode of this script measures.
 */
export function decodeInProcess(av: NodeAv, data: Buffer, o: ResolvedDecodeOptions, known: number | null = null): InProcessClip {
  let total = o.video ? (known ?? predictFrameCount(data, o.windowSeconds)) : null;
  if (o.video && total === null) total = countFrames(av, data, o);
  if (o.video && !total) throw new Error('no video frame could be decoded');
  const picks = total ? linspaceIndices(total, o.numFrames) : [];
  const pickSet = new Set(picks);
  const demuxer = av.Demuxer.openSync(data);
  try {
    const vs = o.video ? demuxer.video() : null;
    if (o.video && !vs) throw new Error('no video stream');
    const as = o.audio ? demuxer.audio() : null;
    // exitOnError false: a packet the decoder rejects is skipped, as the ffmpeg CLI does (no -xerror).
    const vdec = vs ? av.Decoder.createSync(vs, { threadCount: o.threads, exitOnError: false }) : null;
    const adec = as ? av.Decoder.createSync(as, { threadCount: 1, exitOnError: false }) : null;
    const vfilter = vs ? av.FilterAPI.create(`${rotationFilter(av, vs)}${rgbFilter(o.colorMatrix)}`, { graph: { nbThreads: 1 } }) : null;
    const afilter = as
      ? av.FilterAPI.create(`atrim=duration=${o.windowSeconds},aresample=${o.sampleRate},aformat=sample_fmts=flt`, { graph: { nbThreads: 1 } })
      : null;
    const frameBytes = o.size * o.size * 3;
    const frames = vs ? new Uint8Array(o.numFrames * frameBytes) : null;
    let resizer: FrameResizer | null = null;
    let index = 0;
    let videoDone = !vs;
    let audioDone = !as;
    const rgbOut = (picked: number) => {
      for (let r = vfilter!.receiveSync(); isFrame(av, r); r = vfilter!.receiveSync()) {
        resizer ??= new FrameResizer(r.width, r.height, o.size, o.crop);
        const rgb = r.toBuffer();
        picks.forEach((p, i) => {
          if (p === picked) resizer!.resize(rgb, 0, frames!, i * frameBytes);
        });
        r.free();
      }
    };
    const videoDrain = () => {
      for (let f = vdec!.receiveSync(); isFrame(av, f); f = vdec!.receiveSync()) {
        if (!videoDone && frameSeconds(f, vs!) < o.windowSeconds) {
          if (pickSet.has(index)) {
            vfilter!.processSync(f);
            rgbOut(index);
          }
          index++;
        } else videoDone = true;
        f.free();
      }
    };
    const chunks: Buffer[] = [];
    let channels = 0;
    const audioOut = () => {
      for (let r = afilter!.receiveSync(); isFrame(av, r); r = afilter!.receiveSync()) {
        channels = r.channels;
        chunks.push(r.toBuffer());
        r.free();
      }
    };
    const audioDrain = () => {
      for (let f = adec!.receiveSync(); isFrame(av, f); f = adec!.receiveSync()) {
        if (!audioDone && frameSeconds(f, as!) < o.windowSeconds) {
          afilter!.processSync(f);
          audioOut();
        } else audioDone = true;
        f.free();
      }
    };
    for (const p of demuxer.packetsSync()) {
      if (p === null) break;
      if (vs && p.streamIndex === vs.index && !videoDone) {
        vdec!.decodeSync(p);
        videoDrain();
      } else if (as && p.streamIndex === as.index && !audioDone) {
        adec!.decodeSync(p);
        audioDrain();
      }
      if (videoDone && audioDone) break;
    }
    if (vdec) {
      vdec.decodeSync(null);
      videoDrain();
      vdec.close();
    }
    if (adec) {
      adec.decodeSync(null);
      audioDrain();
      afilter!.processSync(null);
      audioOut();
      adec.close();
    }
    vfilter?.close();
    afilter?.close();
    // The index was wrong (an edit list, a header that lies): pick again from the frames really decoded, as decodeClip does.
    if (vs && index !== total) {
      if (known === null && index > 0) return decodeInProcess(av, data, o, index);
      throw new Error(`decoded ${index} frames of the window, ${known === null ? 'the index said' : 'the first pass'} ${total}`);
    }
    let pcm: Float32Array | null = null;
    if (as) {
      const bytes = Buffer.concat(chunks);
      const n = Math.floor(bytes.length / (4 * Math.max(channels, 1)));
      const all = new Float32Array(n * channels);
      new Uint8Array(all.buffer).set(bytes.subarray(0, n * channels * 4));
      if (channels === 1) pcm = all;
      else {
        pcm = new Float32Array(n);
        for (let i = 0, at = 0; i < n; i++) {
          let sum = 0;
          for (let c = 0; c < channels; c++) sum += all[at++]!;
          pcm[i] = sum / channels;
        }
      }
    }
    return { frames, decodedFrames: index, pcm };
  } finally {
    demuxer.closeSync();
  }
}

/** Demux and decode only (the window's video frames and the audio), no conversion: the decoders' own cost. */
export function decodeOnlyInProcess(av: NodeAv, data: Buffer, o: ResolvedDecodeOptions): number {
  const demuxer = av.Demuxer.openSync(data);
  try {
    const vs = demuxer.video();
    const as = o.audio ? demuxer.audio() : null;
    const vdec = vs ? av.Decoder.createSync(vs, { threadCount: o.threads, exitOnError: false }) : null;
    const adec = as ? av.Decoder.createSync(as, { threadCount: 1, exitOnError: false }) : null;
    let n = 0;
    const drain = (dec: AvDecoder, s: AvStream) => {
      for (let f = dec.receiveSync(); isFrame(av, f); f = dec.receiveSync()) {
        if (s === vs && frameSeconds(f, s) < o.windowSeconds) n++;
        f.free();
      }
    };
    for (const p of demuxer.packetsSync()) {
      if (p === null) break;
      if (vs && p.streamIndex === vs.index) {
        vdec!.decodeSync(p);
        drain(vdec!, vs);
      } else if (as && p.streamIndex === as.index) {
        adec!.decodeSync(p);
        drain(adec!, as);
      }
    }
    vdec?.close();
    adec?.close();
    return n;
  } finally {
    demuxer.closeSync();
  }
}

export async function decodeFileInProcess(av: NodeAv, file: string, o: ResolvedDecodeOptions): Promise<InProcessClip> {
  return decodeInProcess(av, await readFile(file), o);
}

// ---------------------------------------------------------------------------------------------
// The measurements (run by hand; see the top of the file).

const WORK = process.env.NODEAV_WORK ?? '/tmp/nodeav-work';
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function maxAbsDiff(a: ArrayLike<number> | null, b: ArrayLike<number> | null): number | string {
  if (!a || !b) return a === b ? 0 : 'one side missing';
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** decodeClip (one ffmpeg) and decodeInProcess on the same bytes: do they agree? */
async function agree(av: NodeAv, file: string, o: ResolvedDecodeOptions): Promise<Record<string, unknown>> {
  const data = await readFile(file);
  let ours: Awaited<ReturnType<typeof decodeClip>> | null = null;
  let theirs: InProcessClip | null = null;
  const row: Record<string, unknown> = { file: basename(file) };
  try {
    ours = await decodeClip(data, o, { file });
  } catch (e) {
    row.decodeClipError = (e as Error).message.slice(0, 160);
  }
  try {
    theirs = decodeInProcess(av, data, o);
  } catch (e) {
    row.nodeAvError = (e as Error).message.slice(0, 160);
  }
  if (ours && theirs) {
    row.frames = [ours.video?.decodedFrames ?? null, theirs.decodedFrames];
    row.pixelMaxAbsDiff = maxAbsDiff(ours.video?.frames ?? null, theirs.frames);
    let differing = 0;
    let sum = 0;
    if (ours.video && theirs.frames && ours.video.frames.length === theirs.frames.length)
      for (let i = 0; i < theirs.frames.length; i++) {
        const d = Math.abs(ours.video.frames[i]! - theirs.frames[i]!);
        if (d) differing++;
        sum += d;
      }
    row.pixelsDiffering = differing;
    row.pixelMeanAbsDiff = theirs.frames ? r3(sum / theirs.frames.length) : null;
    row.audioSamples = [ours.audio?.pcm.length ?? null, theirs.pcm?.length ?? null];
    const n = Math.min(ours.audio?.pcm.length ?? 0, theirs.pcm?.length ?? 0);
    row.audioMaxAbsDiff = n ? maxAbsDiff(ours.audio!.pcm.subarray(0, n), theirs.pcm!.subarray(0, n)) : null;
  }
  return row;
}

async function compareMode(av: NodeAv, o: ResolvedDecodeOptions): Promise<void> {
  const made = await makeClips(WORK, QUICK_WORKLOAD);
  for (const p of made.paths) console.log(JSON.stringify(await agree(av, p, o)));
}

/**
 * CPU per clip, side by side: the project's decode stage (decodeClips over tar shards, its
 * ffmpeg children's CPU included, concurrency 1) and the in-process decode of the same clips
 * (read from the same files), alternating, `reps` times each.
 */
async function cpuMode(av: NodeAv, o: ResolvedDecodeOptions, clips: number, reps: number): Promise<void> {
  const made = await makeClips(WORK, QUICK_WORKLOAD);
  const set = await makeClipSet(WORK, QUICK_WORKLOAD, clips, clips);
  const files = set.sources.map((i) => made.paths[i]!);
  const bytes = files.map((f) => readFileSync(f));
  const opts = { concurrency: 1, threads: o.threads, video: o.video, audio: o.audio, resize: 'exact' as const };
  decodeInProcess(av, bytes[0]!, o); // warm-up (library load)
  const rows: Array<Record<string, unknown>> = [];
  for (let rep = 0; rep < reps; rep++) {
    const l0 = load();
    const ours = await decodeOurs(set.shards, opts);
    const bare = await decodeBaseline(files, opts);
    const c0 = cpuSeconds()!;
    const t0 = performance.now();
    for (const b of bytes) decodeInProcess(av, b, o);
    const inCpu = cpuSeconds()! - c0;
    const inWall = (performance.now() - t0) / 1000;
    const c1 = cpuSeconds()!;
    for (const b of bytes) decodeOnlyInProcess(av, b, o);
    const onlyCpu = cpuSeconds()! - c1;
    // The ffmpeg CLI's decode alone (same window, same threads, no filter, null output), spawned and reaped here.
    const c3 = cpuSeconds()!;
    for (const f of files) {
      const maps = [...(o.video ? ['-map', '0:v:0'] : []), ...(o.audio ? ['-map', '0:a:0'] : [])];
      const args = ['-v', 'error', '-threads', String(o.threads), '-t', String(o.windowSeconds), '-i', f, ...maps, '-f', 'null', '-'];
      if (spawnSync(o.ffmpeg, args).status !== 0) throw new Error(`ffmpeg decode-only failed on ${f}`);
    }
    const cliOnlyCpu = cpuSeconds()! - c3;
    const row = {
      rep,
      load: `${l0} → ${load()}`,
      oursCpuPerClip: r3(ours.cpuSeconds! / ours.clips),
      bareFfmpegCpuPerClip: r3(bare.cpuSeconds! / bare.clips),
      nodeAvCpuPerClip: r3(inCpu / bytes.length),
      nodeAvDecodeOnlyCpuPerClip: r3(onlyCpu / bytes.length),
      ffmpegCliDecodeOnlyCpuPerClip: r3(cliOnlyCpu / files.length),
      cpuRatio: r3(ours.cpuSeconds! / inCpu),
      bareToNodeAvCpuRatio: r3(bare.cpuSeconds! / bare.clips / (inCpu / bytes.length)),
      oursWallPerClip: r3(ours.seconds / ours.clips),
      nodeAvWallPerClip: r3(inWall / bytes.length),
      failed: ours.failed,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  // FrameResizer alone (the same JS work in both designs): 32 frames per clip at each clip's size.
  const c2 = cpuSeconds()!;
  for (const i of set.sources) {
    const c = made.clips[i]!;
    const resizer = new FrameResizer(c.width, c.height, o.size, o.crop);
    const src = new Uint8Array(resizer.frameBytes).fill(90);
    const dst = new Uint8Array(o.numFrames * o.size * o.size * 3);
    for (let k = 0; k < o.numFrames; k++) resizer.resize(src, 0, dst, k * o.size * o.size * 3);
  }
  const resizeCpuPerClip = r3((cpuSeconds()! - c2) / set.sources.length);
  const median = (k: string) => rows.map((r) => r[k] as number).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
  console.log(
    JSON.stringify({
      clips,
      reps,
      video: o.video,
      audio: o.audio,
      medianOursCpuPerClip: median('oursCpuPerClip'),
      medianBareFfmpegCpuPerClip: median('bareFfmpegCpuPerClip'),
      medianNodeAvCpuPerClip: median('nodeAvCpuPerClip'),
      medianNodeAvDecodeOnlyCpuPerClip: median('nodeAvDecodeOnlyCpuPerClip'),
      medianFfmpegCliDecodeOnlyCpuPerClip: median('ffmpegCliDecodeOnlyCpuPerClip'),
      resizeCpuPerClip,
      medianCpuRatio: median('cpuRatio'),
      medianBareToNodeAvCpuRatio: median('bareToNodeAvCpuRatio'),
    }),
  );
}

/** Broken inputs, each decoded in a child process so that a native crash shows as its exit. */
async function crashMode(): Promise<void> {
  const made = await makeClips(WORK, QUICK_WORKLOAD);
  const good = readFileSync(made.paths[1]!);
  const dir = join(WORK, 'broken');
  mkdirSync(dir, { recursive: true });
  const flip = Buffer.from(good);
  for (let i = Math.floor(flip.length * 0.3); i < flip.length * 0.9; i += 97) flip[i] = flip[i]! ^ 0xff;
  const noise = Buffer.alloc(200_000);
  for (let i = 0, x = 12345; i < noise.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    noise[i] = x >>> 24;
  }
  const cases: Record<string, Buffer> = {
    'truncated-half.mp4': good.subarray(0, Math.floor(good.length / 2)),
    'truncated-moov.mp4': good.subarray(0, 2000),
    'garbage.mp4': noise,
    'empty.mp4': Buffer.alloc(0),
    'corrupt-mdat.mp4': flip,
    'mp4-head-garbage-tail.mp4': Buffer.concat([good.subarray(0, Math.floor(good.length / 3)), noise]),
  };
  for (const [name, b] of Object.entries(cases)) {
    const file = join(dir, name);
    writeFileSync(file, b);
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'one', file], { encoding: 'utf8', timeout: 120_000 });
    let ours = 'ok';
    try {
      await decodeClip(b, resolveDecodeOptions(), { file });
    } catch (e) {
      ours = `${(e as ClipstreamError).code ?? 'error'}: ${(e as Error).message.slice(0, 100)}`;
    }
    console.log(
      JSON.stringify({
        case: name,
        bytes: b.length,
        nodeAvChild: { status: child.status, signal: child.signal, out: child.stdout.trim().slice(-200), stderrTail: child.stderr.trim().slice(-200) },
        decodeClip: ours,
      }),
    );
  }
}

/** A deterministic mutant of `good`: truncated, bytes flipped, or a block overwritten (seeded). */
export function mutant(good: Buffer, seed: number): Buffer {
  let x = seed * 2654435761 + 1;
  const rnd = () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x / 2 ** 32;
  };
  const kind = seed % 4;
  if (kind === 0) return good.subarray(0, Math.floor(rnd() * good.length));
  const b = Buffer.from(good);
  if (kind === 1) for (let k = 0, n = 1 + Math.floor(rnd() * 50); k < n; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
  else if (kind === 2) {
    // the header region (moov at the front: fast-start clips)
    for (let k = 0, n = 1 + Math.floor(rnd() * 20); k < n; k++) b[Math.floor(rnd() * Math.min(b.length, 8000))] = Math.floor(rnd() * 256);
  } else {
    const at = Math.floor(rnd() * b.length);
    for (let i = at; i < Math.min(b.length, at + 4096); i++) b[i] = Math.floor(rnd() * 256);
  }
  return b;
}

/**
 * Many mutants decoded in one child process after another (the child reports each); when the
 * child dies (a native crash: a signal, or an abort), the parent records the mutant and starts
 * a new child from the next one.
 */
async function fuzzMode(count: number): Promise<void> {
  // The bench clips (H.264/AAC), or other files (NODEAV_FUZZ_FILES, one per line: e.g. zoo files of other codecs).
  const sources = process.env.NODEAV_FUZZ_FILES?.split('\n').filter(Boolean) ?? (await makeClips(WORK, QUICK_WORKLOAD)).paths;
  let start = 0;
  const tally: Record<string, number> = {};
  const deaths: Array<Record<string, unknown>> = [];
  while (start < count) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'fuzzchild', String(start), String(count)], {
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 64 << 20,
      env: { ...process.env, NODEAV_WORK: WORK, NODEAV_PATHS: sources.join('\n') },
    });
    const lines = child.stdout.split('\n').filter((l) => /^\d+ /.test(l));
    let last = start - 1;
    for (const l of lines) {
      const [i, result] = [Number(l.slice(0, l.indexOf(' '))), l.slice(l.indexOf(' ') + 1)];
      if (result.startsWith('start')) continue;
      last = i;
      const key = result.startsWith('ok') ? 'ok' : result.replace(/\d+/g, 'N').slice(0, 60);
      tally[key] = (tally[key] ?? 0) + 1;
    }
    if (child.status === 0 && last === count - 1) break;
    const died = last + 1;
    deaths.push({ mutant: died, status: child.status, signal: child.signal, stderrTail: child.stderr.trim().slice(-300) });
    start = died + 1;
  }
  console.log(JSON.stringify({ mutants: count, sources: sources.map((f) => basename(f)), deaths, tally }));
}

async function fuzzChild(av: NodeAv, start: number, count: number, o: ResolvedDecodeOptions): Promise<void> {
  const goods = (process.env.NODEAV_PATHS ?? '').split('\n').map((p) => readFileSync(p));
  for (let i = start; i < count; i++) {
    const b = mutant(goods[i % goods.length]!, i);
    process.stdout.write(`${i} start\n`);
    try {
      const r = decodeInProcess(av, b, o);
      process.stdout.write(`${i} ok ${r.decodedFrames}\n`);
    } catch (e) {
      process.stdout.write(`${i} threw ${(e as Error).message.replace(/\s+/g, ' ').slice(0, 80)}\n`);
    }
  }
}

async function oneMode(av: NodeAv, file: string, o: ResolvedDecodeOptions): Promise<void> {
  try {
    const r = decodeInProcess(av, await readFile(file), o);
    console.log(`ok: ${r.decodedFrames} frames, ${r.pcm?.length ?? 0} samples`);
  } catch (e) {
    console.log(`threw: ${(e as Error).message.slice(0, 160)}`);
  }
}

/** Generated zoo crossings (test/zoo/generated.ts, made with /usr/bin/ffmpeg): both decoders agree? */
async function zooMode(av: NodeAv, o: ResolvedDecodeOptions, ids: string[], seed: number, count: number): Promise<void> {
  const crossings = [...ids.map(parseCrossingId), ...(count > 0 ? pickCrossings(seed, count) : [])];
  mkdirSync(join(WORK, 'zoo'), { recursive: true });
  const entries = await generatedEntries(crossings, join(WORK, 'zoo'));
  for (const e of entries) {
    if (e.generatorError) {
      console.log(JSON.stringify({ file: e.name, generatorError: e.generatorError.slice(0, 120) }));
      continue;
    }
    console.log(JSON.stringify({ crossing: e.truth.crossing, ...(await agree(av, e.path, o)) }));
  }
}

async function main(): Promise<void> {
  const [mode = 'compare', ...rest] = process.argv.slice(2);
  const av = await loadNodeAv();
  const o = resolveDecodeOptions({
    video: process.env.NODEAV_VIDEO !== '0',
    audio: process.env.NODEAV_AUDIO !== '0',
    ...(mode === 'zoo' ? { minDurationSeconds: 0 } : {}),
  });
  if (mode === 'one') return oneMode(av, rest[0]!, o);
  if (mode === 'fuzzchild') return fuzzChild(av, Number(rest[0]), Number(rest[1]), o);
  console.log(JSON.stringify({ node: process.version, nodeAvFfmpeg: av.ffmpegVersion?.() ?? null, ffmpeg: o.ffmpeg, load: load() }));
  if (mode === 'compare') return compareMode(av, o);
  if (mode === 'cpu') return cpuMode(av, o, Number(rest[0] ?? 16), Number(rest[1] ?? 5));
  if (mode === 'crash') return crashMode();
  if (mode === 'fuzz') return fuzzMode(Number(rest[0] ?? 200));
  if (mode === 'zoo')
    return zooMode(
      av,
      o,
      rest.filter((a) => a.includes('_')),
      Number(process.env.ZOO_SEED ?? 20261208),
      Number(process.env.ZOO_COUNT ?? 0),
    );
  throw new Error(`unknown mode ${mode}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
