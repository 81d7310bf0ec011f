/**
 * One video through the segments job: probe → plan → run each segment not already done (per
 * the state mode) → records and processed.json → join → remux. A failing segment is recorded
 * with its reason and the others go on; the video is then `incomplete` and a rerun retries
 * the failed segments only (in carry mode also the following ones whose start state changes
 * as a result, until the carried state is the same as before).
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler } from '../types.js';
import { removeDeadTemps } from '../util/atomic.js';
import { probeFrameTimeline } from '../media/probe.js';
import { inferSegment, warmState, type InferContext } from './infer.js';
import { joinSegments, remuxAudio } from './join.js';
import type { FrameModel, RecurrentState } from './model.js';
import { autoDownsampleRatio, type ResolvedSegmentsOptions } from './options.js';
import { planSegments, type Segment } from './plan.js';
import { fileSha256, RecordStore, segmentName, stateHash, type SegmentRecord } from './records.js';
import { writeSourceSegments } from './split.js';

export interface VideoReport {
  input: string;
  output: string;
  workDir: string;
  status: 'done' | 'incomplete' | 'failed';
  segments: number;
  segmentsRun: number;
  segmentsReused: number;
  failed: { index: number; error: string }[];
  frames: number;
  error?: string;
}

/** The work folder of an output: `out/talk.mp4` → `out/talk.segments/`. */
export function workDirFor(output: string): string {
  return `${output.replace(/\.[^./\\]+$/, '')}.segments`;
}

export async function processVideo(input: string, output: string, model: FrameModel, o: ResolvedSegmentsOptions): Promise<VideoReport> {
  const work = workDirFor(output);
  const report: VideoReport = { input, output, workDir: work, status: 'done', segments: 0, segmentsRun: 0, segmentsReused: 0, failed: [], frames: 0 };
  const t = await probeFrameTimeline(input, { signal: o.signal });
  const segs = planSegments(t, o.segmentSeconds, 'options.segmentSeconds');
  report.segments = segs.length;
  report.frames = t.pts.length;
  const ratio = o.downsampleRatio === 'auto' ? autoDownsampleRatio(t.width, t.height) : o.downsampleRatio;
  model.checkFits(t.width, t.height, ratio, input);
  const encode = { encoder: o.encoder, threads: o.encoderThreads, crf: o.crf, preset: o.preset, bitRate: o.bitRate };
  await mkdir(work, { recursive: true });
  for (const d of [work, join(work, 'records'), join(work, 'states'), dirname(output), ...(o.format === 'png' ? [output] : [])]) await removeDeadTemps(d);

  const store = new RecordStore(work);
  const src = await stat(input);
  const settings = `${JSON.stringify(
    {
      input: { size: src.size, mtimeMs: src.mtimeMs },
      model: await fileSha256(model.path),
      kind: model.kind,
      segmentSeconds: o.segmentSeconds,
      state: o.state,
      outputType: o.outputType,
      format: o.format,
      background: o.background,
      encode,
      ratio,
    },
    null,
    1,
  )}\n`;
  const before = await store.readSettings();
  if (before !== null && before !== settings) {
    (o.onWarning ?? defaultWarningHandler)(
      new ClipstreamError('ERR_PIPELINE', `${input}: the source or the settings changed since the last run in ${work}; every segment is redone`, {
        where: { file: input },
      }),
    );
    await store.clear();
  }
  await store.writeSettings(settings);

  const steps = o.step === 'all' ? new Set(['infer', 'join', 'remux', ...(o.keepSegments ? ['split'] : [])]) : new Set([o.step]);
  if (steps.has('split')) await writeSourceSegments(input, t, segs, join(work, 'source'), encode, o.signal);

  const outOf = (s: Segment) => (o.format === 'mp4' ? join(work, `${segmentName(s.index)}.mp4`) : output);
  const ctx: InferContext = {
    path: input,
    timeline: t,
    model,
    ratio,
    outputType: o.outputType,
    format: o.format,
    background: o.background,
    encode,
    prefetch: 4,
    signal: o.signal,
  };
  const done = segs.map(() => false);
  const processed = () =>
    store.writeProcessed(
      segs.map((s, i) => ({ file: o.format === 'mp4' ? `${segmentName(s.index)}.mp4` : relative(work, join(output, segmentName(s.index))), done: done[i]! })),
    );

  /** Runs one segment from `stateIn` and records the outcome. */
  const run = async (seg: Segment, stateIn: () => Promise<RecurrentState>, inHash: string): Promise<RecurrentState | undefined> => {
    const prev = await store.read(seg.index);
    const base = {
      index: seg.index,
      startFrame: seg.startFrame,
      endFrame: seg.endFrame,
      frames: seg.endFrame - seg.startFrame,
      stateIn: inHash,
      attempts: (prev?.attempts ?? 0) + 1,
    };
    let rec: SegmentRecord;
    let end: RecurrentState | undefined;
    try {
      const r = await inferSegment(ctx, seg, await stateIn(), outOf(seg));
      const outputs = await Promise.all(r.files.map(async (f) => ({ file: relative(work, f), sha256: (await fileSha256(f))! })));
      const stateOut = model.kind === 'rvm' ? await store.saveState(seg.index, r.state) : null;
      rec = { ...base, status: 'done', outputs, stateOut };
      end = r.state;
      report.segmentsRun++;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      rec = { ...base, status: 'failed', outputs: [], stateOut: null, error: (err as Error).message };
      report.failed.push({ index: seg.index, error: rec.error! });
    }
    await store.write(rec);
    done[seg.index] = rec.status === 'done';
    await processed();
    o.onProgress?.({ video: input, segment: seg.index, segments: segs.length, status: rec.status, frames: rec.frames, error: rec.error });
    return end;
  };
  const reuse = async (seg: Segment, inHash: string): Promise<SegmentRecord | null> => {
    const rec = await store.read(seg.index);
    if (!(await store.verified(rec)) || rec!.stateIn !== inHash) return null;
    done[seg.index] = true;
    report.segmentsReused++;
    o.onProgress?.({ video: input, segment: seg.index, segments: segs.length, status: 'reused', frames: rec!.frames });
    return rec;
  };

  if (steps.has('infer')) {
    if (model.kind === 'rvm' && o.state.mode === 'carry') {
      // Sequential: segment k starts from the state segment k−1 ended with.
      let state: RecurrentState = null;
      for (const seg of segs) {
        const inHash = stateHash(state);
        const rec = await reuse(seg, inHash);
        if (rec) state = rec.stateOut ? await store.loadState(rec) : null;
        else {
          const from: RecurrentState = state;
          state = (await run(seg, async (): Promise<RecurrentState> => from, inHash)) ?? null;
        }
      }
    } else {
      // Independent segments, `parallelSegments` at a time; their frames share model batches.
      const warm = o.state.mode === 'warmup' && model.kind === 'rvm' ? o.state.frames : 0;
      const inHash = model.kind !== 'rvm' ? 'stateless' : warm ? `warmup:${warm}` : 'zeros';
      let next = 0;
      const worker = async () => {
        while (next < segs.length) {
          const seg = segs[next++]!;
          if (await reuse(seg, inHash)) continue;
          await run(seg, async () => (warm && seg.startFrame > 0 ? warmState(ctx, Math.max(0, seg.startFrame - warm), seg.startFrame) : null), inHash);
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.parallelSegments, segs.length) }, worker));
    }
  } else {
    for (const seg of segs) done[seg.index] = await store.verified(await store.read(seg.index));
  }
  await processed();
  if (o.step === 'split') return report;
  const missing = segs.filter((s) => !done[s.index]).map((s) => s.index);
  if (missing.length > 0) {
    report.status = 'incomplete';
    report.error = `segment(s) ${missing.join(', ')} not done${report.failed.length ? ' (failed, see records)' : ''}; rerun to retry them`;
    return report;
  }
  const joined = join(work, 'joined.mp4');
  if (o.format === 'mp4' && steps.has('join'))
    await joinSegments(
      work,
      segs.map((s) => `${segmentName(s.index)}.mp4`),
      joined,
      o.signal,
    );
  if (o.format === 'mp4' && steps.has('remux')) {
    await remuxAudio(joined, t, o.audio, output, o.signal);
    if (o.step === 'all') await rm(joined, { force: true });
  }
  return report;
}
