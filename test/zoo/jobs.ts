/**
 * Every job over a generated sample, each output compared with its file's truth: what the
 * generated-zoo test and the explorer (scripts/zoo.ts) both run. A job's result maps each
 * file name to its mismatches (none: the file passed); a job that throws fails every file.
 */
import { execFile } from 'node:child_process';
import { link, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clips } from '../../src/jobs/clips.js';
import { dedup } from '../../src/jobs/dedup.js';
import { DEFAULT_MAX_DISTANCE, fingerprintDistance } from '../../src/features/fingerprint.js';
import { extract } from '../../src/jobs/extract.js';
import { faces } from '../../src/jobs/faces.js';
import { segments } from '../../src/jobs/segments.js';
import { resolveDecodeOptions } from '../../src/media/decode.js';
import { decodeSample } from '../../src/media/decode-stage.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import type { Sample } from '../../src/types.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeTar } from '../helpers/tar.js';
import { type Facts, PYTHON, planesToRgb, readFacts, sarOf } from './checks.js';
import { parseCrossingId } from './crossings.js';
import { type GenEntry, type GenTruth, generatorFfmpeg } from './generated.js';

export const JOBS = ['extract', 'clips', 'faces', 'segments', 'dedup'] as const;
export type JobName = (typeof JOBS)[number];

export interface JobResult {
  job: JobName;
  seconds: number;
  /** File name → mismatches; every file of the sample is a key. */
  problems: Map<string, string[]>;
}

const run = promisify(execFile);
const REFERENCE = fileURLToPath(new URL('../../scripts/decode_reference.py', import.meta.url));
/** One VGGish window: audio shorter than this gives no audio feature. */
const VGGISH_S = 0.96;

/** The files that have a video to work on (the generator made them). */
const usable = (entries: GenEntry[]) => entries.filter((e) => !e.generatorError);

/** The sample as one folder of the files under their own names (hard links: no copies). */
export async function inputFolder(entries: GenEntry[], dir: string): Promise<string> {
  const folder = join(dir, 'in');
  await mkdir(folder, { recursive: true });
  for (const e of usable(entries)) await link(e.path, join(folder, e.name));
  return folder;
}

/** The sample's facts, read once and kept beside it (the sample's folder never changes once made). */
export async function sampleFacts(entries: GenEntry[]): Promise<Map<string, Facts>> {
  const list = usable(entries);
  if (list.length === 0) return new Map();
  const cache = join(dirname(list[0]!.path), '.facts.json');
  try {
    const saved = JSON.parse(await readFile(cache, 'utf8')) as Record<string, Facts>;
    if (list.every((e) => saved[e.name])) return new Map(list.map((e) => [e.name, saved[e.name]!]));
  } catch {
    // not read yet
  }
  const facts = await readFacts(list.map((e) => e.path));
  const byName = Object.fromEntries(list.map((e, i) => [e.name, facts[i]!]));
  const tmp = `${cache}.${process.pid}`;
  await writeFile(tmp, JSON.stringify(byName));
  await rename(tmp, cache);
  return new Map(Object.entries(byName));
}

function newResult(job: JobName, entries: GenEntry[]): JobResult {
  return { job, seconds: 0, problems: new Map(usable(entries).map((e) => [e.name, []])) };
}

async function timed(r: JobResult, body: () => Promise<void>): Promise<JobResult> {
  const started = Date.now();
  try {
    await body();
  } catch (err) {
    for (const list of r.problems.values()) list.push(`the job threw: ${(err as Error).message.split('\n')[0]}`);
  }
  r.seconds = (Date.now() - started) / 1000;
  return r;
}

/** Content time of frame n (n = frames: the end of the last frame). */
export function frameTime(t: GenTruth, n: number): number {
  if (n >= t.frames!) return t.duration!;
  return t.frameTimes ? t.frameTimes[n]! : n / t.fps!;
}

/**
 * Where clips puts frame `n`: clips plans on content time (README, clips: a hole in the
 * timestamps is closed to one frame interval, and no clip crosses it), so in a file with a
 * hole every frame after it moves back by the hole. The hole is the recipe's: the one
 * interval of the truth's frame times far over the others.
 */
export function contentTime(t: GenTruth, n: number): number {
  // A hole is the recipe's `gap` timing, also inside a file whose timestamps restart (a `ts`).
  if (!/^[a-z0-9]+_[a-z0-9]+_gap_/.test(t.crossing) || !t.frameTimes || t.frameTimes.length < 3) return frameTime(t, n);
  const ft = t.frameTimes;
  let at = 1;
  for (let i = 2; i < ft.length; i++) if (ft[i]! - ft[i - 1]! > ft[at]! - ft[at - 1]!) at = i;
  const steps = ft.slice(1).map((x, i) => x - ft[i]!);
  const usual = steps.filter((_, i) => i + 1 !== at).reduce((a, b) => Math.max(a, b), 0);
  const hole = ft[at]! - ft[at - 1]! - usual;
  return frameTime(t, n) - (n >= at ? hole : 0);
}

const aspect = (w: number, h: number) => w / h;
/** The displayed aspect of a decoded output: its size, SAR and rotation as ffprobe reads them. */
function shownAspect(f: Facts): number {
  const v = f.ffprobe!.video!;
  const sar = sarOf(v.sar);
  const w = (v.width * sar[0]) / sar[1];
  return v.rotation === 90 || v.rotation === 270 ? aspect(v.height, w) : aspect(w, v.height);
}
/** Cropping an odd size to even for 4:2:0 moves the aspect by under 2 %. */
const ASPECT = 0.02;

/**
 * Colour tags of an output against its source's: matrix, primaries and transfer must be kept.
 * The range may change (full to TV levels is a conversion, not a loss) as long as the pixels
 * follow it, which `firstColourProblems` checks where the output's pixels are the source's.
 */
function tagProblems(what: string, f: Facts, t: GenTruth): string[] {
  const v = f.ffprobe!.video!;
  const c = t.colour;
  const name = (x: string | undefined | null) => (x == null || x === 'unknown' ? 'untagged' : x);
  const got = [name(v.space), name(v.primaries), name(v.transfer)];
  const want = [c.space ?? 'untagged', c.primaries ?? 'untagged', c.transfer ?? 'untagged'];
  // An untagged source may come out tagged BT.601 (the same meaning).
  if (!c.space) for (const i of [0, 1, 2]) if (['bt470bg', 'smpte170m'].includes(got[i]!)) got[i] = 'untagged';
  return JSON.stringify(got) === JSON.stringify(want) ? [] : [`${what}: colour tags (matrix/primaries/transfer) ${got.join('/')}, source ${want.join('/')}`];
}

/** The first frame's colour as the output's own tags say to read it: the truth's, if the meaning survived. */
function firstColourProblems(what: string, f: Facts, t: GenTruth): string[] {
  const v = f.ffprobe!.video!;
  const planes = f.pyav!.video!.firstPlanes;
  if (!planes) return [];
  const matrix = v.space === 'bt709' ? 'bt709' : v.space === 'bt2020nc' ? 'bt2020' : 'bt601';
  const range = v.range === 'pc' || v.pixFmt.startsWith('yuvj') ? 'pc' : 'tv';
  const rgb = planesToRgb(planes, f.pyav!.video!.bits, matrix, range);
  const off = Math.max(...rgb.map((x, i) => Math.abs(x - t.firstFrameColor![i]!)));
  return off <= 8
    ? []
    : [`${what}: first frame read by its tags (${matrix}/${range}) is RGB ${rgb}, the source's ${t.firstFrameColor} (${off.toFixed(0)} levels off)`];
}

function aspectProblems(what: string, f: Facts, t: GenTruth): string[] {
  const got = shownAspect(f);
  const want = aspect(t.width!, t.height!);
  return Math.abs(got / want - 1) <= ASPECT ? [] : [`${what}: display aspect ${got.toFixed(4)}, source ${want.toFixed(4)} (${t.width}x${t.height})`];
}

/** extract: a record per file with video, its audio features, and the decode against the PyAV reference. */
export async function runExtract(entries: GenEntry[], dir: string): Promise<JobResult> {
  const r = newResult('extract', entries);
  const list = usable(entries);
  return timed(r, async () => {
    // A folder per file in the tar: `twin0.mp4` and `twin0.mkv` stay two samples.
    const member = (i: number, e: GenEntry) => `e${String(i).padStart(3, '0')}/${e.name}`;
    const keyOf = (i: number, e: GenEntry) => `e${String(i).padStart(3, '0')}/${e.name.slice(0, e.name.indexOf('.'))}`;
    // Each shard with its json sidecar (the id and segment every record must take from it). The
    // `.ts` files get a shard of their own: a shard whose json does not match its tar is refused
    // whole (issue 18 defect 11), which must not hide the other files.
    const shardOf = (e: GenEntry) => (e.name.endsWith('.ts') ? 1 : 0);
    const tar = (k: number) => join(dir, `shard-00000${k}.tar`);
    const shards = [0, 1].filter((k) => list.some((e) => shardOf(e) === k));
    for (const k of shards) {
      const mine = list.map((e, i) => [e, i] as const).filter(([e]) => shardOf(e) === k);
      await makeTar(tar(k), await Promise.all(mine.map(async ([e, i]) => ({ name: member(i, e), data: await readFile(e.path) }))));
      const json = mine.map(([e, i]) => ({ filename: member(i, e), id: `v${i}`, segment: [0, e.truth.duration] }));
      await writeFile(join(dir, `shard-00000${k}.json`), JSON.stringify(json));
    }
    // PyAV's resampler crashes (SIGSEGV) on 24-bit PCM and on more than two channels in the
    // reference's audio path, which this check does not use: it sees those files' video only.
    const spec = await Promise.all(
      list.map(async (e, i) => {
        let input = e.path;
        if (e.truth.audioCodec === 'pcm_s24le' || (e.truth.audioChannels ?? 0) > 2) {
          input = join(dir, `video-only-${i}${e.name.slice(e.name.lastIndexOf('.'))}`);
          await run(generatorFfmpeg(), ['-v', 'error', '-y', '-i', e.path, '-map', '0:v', '-c', 'copy', input]);
        }
        return { input, out: join(dir, `ref${i}`), rotate: e.truth.rotation ?? 0, entry: e.path };
      }),
    );
    const reference = referenceBatch(spec, dir);
    const warnings: string[] = [];
    const report = await extract({
      tarPath: shards.map(tar),
      outputDir: join(dir, 'out'),
      minDurationSeconds: 0,
      intraOpThreads: 1,
      onWarning: (w) => warnings.push(w.message),
    });
    const refs = await reference;
    const named = new Map(report.shards.flatMap((s) => [...s.failed, ...s.skipped].map((p) => [p.key, p.reason] as const)));
    const status = new Map(report.shards.map((s, k) => [shards[k]!, s.status]));
    const records = (await Promise.all(shards.map((k) => readFeatureShard(join(dir, 'out', `shard-00000${k}.msgpack`)).catch(() => [])))).flat();
    const byKey = new Map(records.map((x) => [x.__key__, x]));
    for (const [i, e] of list.entries()) {
      const p = r.problems.get(e.name)!;
      const t = e.truth;
      const rec = byKey.get(keyOf(i, e));
      if (status.get(shardOf(e)) !== 'written') p.push(`its shard is ${status.get(shardOf(e))}`);
      if (!rec) {
        p.push(`no record (${named.get(keyOf(i, e)) ?? 'not named as failed or skipped'})`);
      } else {
        if (rec.id !== `v${i}` || rec.segment[0] !== 0 || Math.abs(rec.segment[1] - t.duration!) > 1e-6)
          p.push(`record id ${rec.id}, segment [${rec.segment}]; the shard's json says v${i}, [0,${t.duration}]`);
        if (rec.visual_features.length === 0) p.push('no visual features');
        const audio = t.audioDuration ?? 0;
        if (t.audioCodec === undefined && rec.audio_features.length > 0) p.push(`${rec.audio_features.length} audio features from a file without audio`);
        if (audio >= VGGISH_S + 0.05 && rec.audio_features.length === 0) p.push(`audio_features [] for ${audio} s of ${t.audioCodec}`);
        if (
          t.audioCodec !== undefined &&
          audio < VGGISH_S &&
          rec.audio_features.length === 0 &&
          !warnings.some((w) => w.includes(keyOf(i, e)) || w.includes(e.name))
        )
          p.push(`audio of ${audio} s, under one ${VGGISH_S} s VGGish window: audio_features [] and no note`);
      }
      // The decode the job runs, against the PyAV + torch reference.
      const sample: Sample = {
        kind: 'sample',
        __key__: keyOf(i, e),
        __url__: tar(shardOf(e)),
        shard: { url: tar(shardOf(e)), name: `shard-00000${shardOf(e)}`, index: shardOf(e) },
        index: i,
        files: { [e.name.slice(e.name.indexOf('.') + 1)]: await readFile(e.path) },
        entry: { filename: e.name, id: e.name, segment: [0, 10] },
      };
      await decodeSample(sample, resolveDecodeOptions({ minDurationSeconds: 0, video: true, audio: false }));
      const ref = refs.get(spec[i]!.input);
      if (ref?.decoded_frames !== t.frames) p.push(`the reference decoded ${ref?.decoded_frames} frames (${ref?.error ?? ''}), truth ${t.frames}`);
      if (sample.failure) {
        p.push(`decode: ${sample.failure.error.message.split('\n')[0]}`);
        continue;
      }
      const v = sample.video!;
      if (v.decodedFrames !== t.frames) p.push(`decoded ${v.decodedFrames} frames, truth ${t.frames}`);
      const want = await readFile(join(dir, `ref${i}.video.f32`)).catch(() => null);
      if (want) {
        const w = new Float32Array(want.buffer, want.byteOffset, want.length / 4);
        let max = 0;
        let sum = 0;
        for (let k = 0; k < w.length; k++) {
          const d = Math.abs(v.frames[k]! - w[k]!);
          max = Math.max(max, d);
          sum += d;
        }
        if (v.frames.length !== w.length) p.push(`${v.frames.length} pixel values, reference ${w.length}`);
        else if (max > 1) p.push(`pixels differ from the reference by up to ${max.toFixed(1)} levels (mean ${(sum / w.length).toFixed(2)})`);
      }
    }
  });
}

interface RefSummary {
  input: string;
  decoded_frames?: number;
  error?: string;
}

/** decode_reference.py over a spec in one Python process, restarted past any file it crashes on. */
async function referenceBatch(spec: Array<{ input: string; out: string; rotate: number }>, dir: string): Promise<Map<string, RefSummary>> {
  const done = new Map<string, RefSummary>();
  let rest = spec;
  for (let round = 0; rest.length > 0; round++) {
    const file = join(dir, `spec-${round}.json`);
    await writeFile(file, JSON.stringify(rest));
    let stdout: string;
    let crashed = '';
    try {
      stdout = (await run(PYTHON, [REFERENCE, '--batch', file], { encoding: 'utf8', maxBuffer: 1 << 26 })).stdout;
    } catch (err) {
      const e = err as { stdout?: string; signal?: string; code?: number; stderr?: string };
      stdout = e.stdout ?? '';
      crashed = `the reference died (${e.signal ?? e.code}): ${(e.stderr ?? '').trim().split('\n').pop()}`;
    }
    for (const line of stdout.trim().split('\n').filter(Boolean)) {
      const x = JSON.parse(line) as RefSummary;
      done.set(x.input, x);
    }
    rest = rest.filter((x) => !done.has(x.input));
    if (crashed && rest.length > 0) {
      done.set(rest[0]!.input, { input: rest[0]!.input, error: crashed });
      rest = rest.slice(1);
    }
  }
  return done;
}

interface ClipRow {
  video_id: string;
  filename: string;
  start_frame: string;
  end_frame: string;
  num_frames: string;
  start_s: string;
  end_s: string;
}

/** clips: fixed 1.5 s stride over the folder; every clip against the truth (frames, times, flashes, audio, aspect, colour). */
export async function runClips(entries: GenEntry[], dir: string, folder: string): Promise<JobResult> {
  const r = newResult('clips', entries);
  const list = usable(entries);
  return timed(r, async () => {
    const out = join(dir, 'clips-out');
    const warnings: string[] = [];
    // A list of paths (no ids: clips names each by its stem, as from a folder). A folder itself
    // would leave out every `.ts`: clips lists only mp4/webm/mkv/mov/avi there.
    const sourcesCsv = join(dir, 'sources.csv');
    const csv = (x: string) => `"${x.replaceAll('"', '""')}"`;
    await writeFile(sourcesCsv, `${['path', ...(await readdir(folder)).sort().map((n) => csv(join(folder, n)))].join('\n')}\n`);
    await clips({
      sources: sourcesCsv,
      outputDir: out,
      clipLenS: 1.5,
      crf: 0,
      preset: 'ultrafast',
      parallelVideos: 2,
      onWarning: (w) => warnings.push(w.message),
    });
    const videos = parseCsv(await readFile(join(out, 'videos.csv'), 'utf8'));
    const rows = parseCsv(await readFile(join(out, 'clips.csv'), 'utf8')) as unknown as ClipRow[];
    const issues = parseCsv(await readFile(join(out, 'span_issues.csv'), 'utf8').catch(() => ''));
    const facts = await readFacts(rows.map((x) => join(out, 'clips', x.filename)));
    const factOf = new Map(rows.map((x, i) => [x, facts[i]!]));
    for (const e of list) {
      const p = r.problems.get(e.name)!;
      const t = e.truth;
      const v = videos.filter((x) => basename(x.path ?? '') === e.name);
      if (v.length !== 1) {
        p.push(`${v.length} rows in videos.csv (${warnings.find((w) => w.includes(e.name.slice(0, e.name.indexOf('.')))) ?? 'no warning'})`);
        continue;
      }
      const row = v[0]!;
      if (row.failed === 'true' || row.failed === '1' || row.error) {
        p.push(`failed: ${row.error}`);
        continue;
      }
      const content = contentTime(t, t.frames!);
      if (!(Math.abs(Number(row.duration) - content) <= 0.05)) p.push(`videos.csv duration ${row.duration} s, truth ${content.toFixed(3)} s of content`);
      const mine = rows.filter((x) => x.video_id === row.video_id).sort((a, b) => Number(a.start_frame) - Number(b.start_frame));
      const split = issues.some((x) => x.video_id === row.video_id);
      if (!split) {
        const tiled = mine.every((x, k) => (k === 0 ? x.start_frame === '0' : x.start_frame === mine[k - 1]!.end_frame));
        const total = mine.reduce((n, x) => n + Number(x.num_frames), 0);
        if (!tiled || mine.at(-1)?.end_frame !== String(t.frames) || total !== t.frames)
          p.push(
            `clips ${mine.map((x) => `[${x.start_frame},${x.end_frame})`).join(' ')} do not tile the ${t.frames} frames, and span_issues.csv says nothing`,
          );
      }
      for (const x of mine) {
        const f = factOf.get(x)!;
        const s = Number(x.start_frame);
        const end = Number(x.end_frame);
        const what = `clip [${s},${end})`;
        if (!f.ok || !f.pyav?.video || !f.ffprobe?.video) {
          p.push(`${what}: unreadable (${f.pyavError ?? f.ffprobeError ?? 'no video'})`);
          continue;
        }
        const fv = f.pyav.video;
        if (fv.frames !== end - s || Number(x.num_frames) !== end - s) p.push(`${what}: ${fv.frames} frames decoded, num_frames ${x.num_frames}`);
        const flashes = t.flashes!.filter((n) => n >= s && n < end).map((n) => n - s);
        if (JSON.stringify(fv.flashes) !== JSON.stringify(flashes))
          p.push(`${what}: white frames at ${JSON.stringify(fv.flashes)}, truth ${JSON.stringify(flashes)}`);
        const t0 = contentTime(t, s);
        const t1 = contentTime(t, end);
        if (!(Math.abs(Number(x.start_s) - t0) <= 0.002 && Math.abs(Number(x.end_s) - t1) <= 0.002))
          p.push(`${what}: labelled ${x.start_s} → ${x.end_s} s, its frames span ${t0.toFixed(3)} → ${t1.toFixed(3)} s`);
        p.push(...aspectProblems(what, f, t), ...tagProblems(what, f, t), ...(s === 0 ? firstColourProblems(what, f, t) : []));
        const a = f.pyav.audio;
        const span = t1 - t0;
        const frame = t.fps ? 1 / t.fps : 0.1;
        if (t.audioCodec === undefined) {
          if (a) p.push(`${what}: has ${a.duration.toFixed(3)} s of audio, the source none`);
        } else if (a) {
          if (!(Math.abs(a.duration - span) <= frame + 0.01)) p.push(`${what}: ${a.duration.toFixed(3)} s of audio for ${span.toFixed(3)} s of video`);
        } else if (t0 < t.audioDuration! - frame) {
          p.push(`${what}: no audio, the source has audio to ${t.audioDuration} s`);
        }
      }
    }
  });
}

/** faces: a run per file, with its display geometry recorded and every sampled frame. */
export async function runFaces(entries: GenEntry[], dir: string, folder: string): Promise<JobResult> {
  const r = newResult('faces', entries);
  const list = usable(entries);
  return timed(r, async () => {
    const report = await faces({
      inputDir: folder,
      outputDir: join(dir, 'faces-out'),
      detector: 'models/face_detector_synthetic.onnx',
      device: 'cpu',
      intraOpThreads: 1,
      size: 64,
      audio: 'none',
      detectorInputSize: 160,
      onWarning: () => {},
    });
    const keys = new Map<string, string[]>();
    for (const v of report.videos) if (v.key) keys.set(v.key, [...(keys.get(v.key) ?? []), v.file]);
    for (const e of list) {
      const p = r.problems.get(e.name)!;
      const t = e.truth;
      const log = report.videos.find((v) => v.file === e.name);
      if (!log) {
        p.push('not in the report');
        continue;
      }
      if (log.status !== 'done') {
        p.push(`${log.status}: ${log.error}`);
        continue;
      }
      if (log.width !== t.width || log.height !== t.height)
        p.push(`recorded ${log.width}x${log.height}, displayed ${t.width}x${t.height} (coded ${t.codedWidth}x${t.codedHeight}, SAR ${t.sar.join(':')})`);
      if ((log.rotation ?? 0) !== t.rotation) p.push(`rotation ${log.rotation}, truth ${t.rotation}`);
      const sampled = Math.ceil(t.frames! / 2);
      if (log.sampledFrames !== sampled) p.push(`${log.sampledFrames} frames sampled, truth ${sampled} (every 2nd of ${t.frames})`);
      if (log.key && keys.get(log.key)!.length > 1)
        p.push(
          `key ${log.key} shared with ${keys
            .get(log.key)!
            .filter((f) => f !== e.name)
            .join(', ')}`,
        );
    }
  });
}

/** segments: one output per file (none overwritten), with every frame, the display aspect and the colour tags. */
export async function runSegments(entries: GenEntry[], dir: string, folder: string): Promise<JobResult> {
  const r = newResult('segments', entries);
  const list = usable(entries);
  return timed(r, async () => {
    const report = await segments({
      inputDir: folder,
      outputDir: join(dir, 'segments-out'),
      segmentSeconds: 2,
      device: 'cpu',
      intraOpThreads: 1,
      onWarning: () => {},
    });
    const outputs = new Map<string, string[]>();
    for (const v of report.videos) outputs.set(v.output, [...(outputs.get(v.output) ?? []), basename(v.input)]);
    const done = report.videos.filter((v) => v.status === 'done');
    const facts = await readFacts(done.map((v) => v.output));
    const factOf = new Map(done.map((v, i) => [v, facts[i]!]));
    for (const e of list) {
      const p = r.problems.get(e.name)!;
      const t = e.truth;
      const v = report.videos.find((x) => basename(x.input) === e.name);
      if (!v) {
        p.push('not in the report');
        continue;
      }
      if (outputs.get(v.output)!.length > 1)
        p.push(
          `output ${basename(v.output)} is also the output of ${outputs
            .get(v.output)!
            .filter((f) => f !== e.name)
            .join(', ')}`,
        );
      if (v.status !== 'done') {
        const why = (v.error ?? v.failed.map((x) => x.error).join('; ')).split('\n')[0]!;
        // segments cannot place two recordings' frames on one timeline: its README refuses such a file, permanently, naming
        // the restart (issue 18, defect 19). That refusal is right for a file whose truth is a restart, and only for one.
        if (!(t.timeline === 'reset' && /timestamps restart at frame \d+.*permanent for this file/.test(why))) p.push(`${v.status}: ${why}`);
        continue;
      }
      const f = factOf.get(v)!;
      if (!f.ok || !f.pyav?.video || !f.ffprobe?.video) {
        p.push(`output unreadable (${f.pyavError ?? f.ffprobeError ?? 'no video'})`);
        continue;
      }
      if (f.pyav.video.frames !== t.frames) p.push(`output has ${f.pyav.video.frames} frames, truth ${t.frames}`);
      p.push(...aspectProblems('output', f, t), ...tagProblems('output', f, t));
      const a = f.pyav.audio;
      if (t.audioCodec !== undefined && !a) p.push(`output has no audio, the source ${t.audioDuration} s of ${t.audioCodec}`);
      if (t.audioCodec === undefined && a) p.push('output has audio, the source none');
    }
  });
}

/** The copies dedup must group with their original: another CRF, or half size (both at even sizes, as libx264 needs). */
const COPIES = {
  crf: ['-crf', '36', '-vf', 'scale=trunc(iw/2)*2:trunc(ih/2)*2'],
  half: ['-vf', 'scale=trunc(iw/4)*2:trunc(ih/4)*2'],
} as const;

/**
 * dedup: every file and a copy of it (made here by ffmpeg from the file, as a re-upload would be)
 * in one folder; each file is fingerprinted under an id of its own, and its copy is within the
 * near-duplicate distance and in its group. The copies alternate between another CRF and half size.
 * The zoo's picture is one 32-pixel box on a flat ground: at 48×36 (`tiny`) CRF 36 smears it and
 * half size leaves 24×18, and at 1920×1080 (`large`) it covers 0.05 % of the frame, so there the
 * fingerprint is mostly compression noise on a flat picture (12-20 bits per frame from a CRF 36
 * copy; docs/dedup.md, "Limits"): those two geometries get the CRF copy, and its distance is not
 * held to the bound. (Crops can cut the box out: crops, and different shots that must not group,
 * are in test/zoo/fingerprint.test.ts and test/jobs/dedup.test.ts on shots made for it. Which zoo
 * files group with each other is not checked: they all show the one pattern.)
 */
export async function runDedup(entries: GenEntry[], dir: string, folder: string): Promise<JobResult> {
  const r = newResult('dedup', entries);
  const list = usable(entries);
  return timed(r, async () => {
    const copyOf = new Map<string, { file: string; kind: keyof typeof COPIES; flat: boolean }>();
    const kinds = Object.keys(COPIES) as (keyof typeof COPIES)[];
    for (const [i, e] of list.entries()) {
      const geometry = parseCrossingId(e.truth.crossing).geometry;
      const flat = geometry === 'tiny' || geometry === 'large';
      const kind = flat ? 'crf' : kinds[i % kinds.length]!;
      const file = `copy${String(i).padStart(3, '0')}${kind}.mp4`;
      try {
        await run(generatorFfmpeg(), [
          '-nostdin',
          '-v',
          'error',
          '-y',
          '-i',
          e.path,
          '-map',
          '0:v:0',
          ...COPIES[kind],
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-pix_fmt',
          'yuv420p',
          join(folder, file),
        ]);
        copyOf.set(e.name, { file, kind, flat });
      } catch (err) {
        r.problems.get(e.name)!.push(`the copy could not be made: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const out = join(dir, 'dedup-out');
    const report = await dedup({ input: folder, outputDir: out, onWarning: () => {} });
    const prints = new Map(parseCsv(await readFile(join(out, 'fingerprints.csv'), 'utf8')).map((row) => [basename(row.source!), row]));
    const groupOf = new Map<string, string[]>();
    for (const row of parseCsv(await readFile(report.duplicatesCsv, 'utf8'))) groupOf.set(row.clip_id!, [...(groupOf.get(row.clip_id!) ?? []), row.group!]);
    const ids = new Map<string, string[]>();
    for (const row of prints.values()) ids.set(row.clip_id!, [...(ids.get(row.clip_id!) ?? []), basename(row.source!)]);
    for (const e of list) {
      const p = r.problems.get(e.name)!;
      const copy = copyOf.get(e.name);
      const own = prints.get(e.name);
      if (!own?.fingerprint) {
        p.push('no fingerprint');
        continue;
      }
      const sharing = ids.get(own.clip_id!)!.filter((f) => f !== e.name);
      if (sharing.length) p.push(`clip id ${own.clip_id} shared with ${sharing.join(', ')}`);
      if (!copy) continue;
      const theirs = prints.get(copy.file);
      if (!theirs?.fingerprint) {
        p.push(`its ${copy.kind} copy has no fingerprint`);
        continue;
      }
      if (copy.flat) continue;
      const d = fingerprintDistance(own.fingerprint, theirs.fingerprint);
      if (!(d <= DEFAULT_MAX_DISTANCE)) p.push(`its ${copy.kind} copy is ${d.toFixed(1)} bits per frame away (near-duplicates: <= ${DEFAULT_MAX_DISTANCE})`);
      const mine = groupOf.get(own.clip_id!) ?? [];
      const copies = groupOf.get(theirs.clip_id!) ?? [];
      if (mine.length !== 1 || copies.length !== 1 || mine[0] !== copies[0])
        p.push(`not grouped with its ${copy.kind} copy (groups ${mine.join('/') || 'none'} and ${copies.join('/') || 'none'})`);
    }
  });
}

/**
 * Runs `job` over the sample and checks every file. Files with 250-byte names run apart from
 * the others: one name a job cannot handle may abort its whole run (issue 18 defect 12), and
 * that must not hide what the job does with every other file.
 */
export async function runJob(job: JobName, entries: GenEntry[], root: string): Promise<JobResult> {
  const long = (e: GenEntry) => Buffer.byteLength(e.name) > 200;
  const groups = [entries.filter((e) => !long(e)), entries.filter(long)].filter((g) => g.length > 0);
  const merged: JobResult = { job, seconds: 0, problems: new Map() };
  for (const [k, group] of groups.entries()) {
    const dir = join(root, job, String(k));
    await mkdir(dir, { recursive: true });
    const folder = await inputFolder(group, dir);
    const r =
      job === 'extract'
        ? await runExtract(group, dir)
        : job === 'clips'
          ? await runClips(group, dir, folder)
          : job === 'faces'
            ? await runFaces(group, dir, folder)
            : job === 'segments'
              ? await runSegments(group, dir, folder)
              : await runDedup(group, dir, folder);
    merged.seconds += r.seconds;
    for (const [name, p] of r.problems) merged.problems.set(name, p);
  }
  return merged;
}
