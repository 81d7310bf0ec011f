/**
 * The segments job as stages over videos, each written with the stage kit (`itemStage`) and
 * working alone with `stream/promises.pipeline`: prepare (probe, plan, resume state) → split (the source
 * segments, when asked) → infer (every segment not done yet through the model, recorded) →
 * join (concat, no re-encode) → remux (the source audio back: the final output). A video that
 * fails in a stage is marked failed and passed on; later stages leave it alone.
 *
 * @example
 * const ctx = { model, options: resolveSegmentsOptions({ inputs: ['a.mp4'], outputs: ['out/a.mp4'] }, modelPath) };
 * await pipeline(Readable.from([segmentsItem('a.mp4', 'out/a.mp4')]), ...segmentsStages(ctx), async (items) => { for await (const v of items) console.log(v.report) });
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { dirname, join, relative } from 'node:path';
import { ClipstreamError, isTransient } from '../errors.js';
import { type MediaFacts, probeMedia, setsarFilter } from '../media/facts.js';
import { retryTransient } from '../media/process.js';
import { rgbEncodeColour } from '../media/rgb-encode.js';
import { frameTimelineOf, type FrameTimeline } from '../media/probe.js';
import { itemStage, type ItemFailure, type OnError } from '../stage/index.js';
import { defaultWarningHandler } from '../types.js';
import { removeDeadTemps } from '../util/lock.js';
import { asDiskFull, isDiskFull } from '../util/disk.js';
import { inferSegment, warmState, type InferContext } from './infer.js';
import { joinSegments, planAudio, remuxAudio, type AudioPlan } from './join.js';
import type { FrameModel, RecurrentState } from './model.js';
import { autoDownsampleRatio, type ResolvedSegmentsOptions, type SegmentsProgress } from './options.js';
import type { OutputMeaning } from './encode.js';
import { workDirFor } from './outputs.js';
import { planSegments, type Segment } from './plan.js';
import { fileSha256, RecordStore, segmentName, stateHash, type DoneMarker, type SegmentRecord } from './records.js';
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

export { workDirFor } from './outputs.js';

/** One video on its way through the stages. */
export interface SegmentsItem {
  /** The unit id: the input path as given. */
  key: string;
  input: string;
  output: string;
  report: VideoReport;
  timeline?: FrameTimeline;
  /** What encoded frames must say to mean what the source's do: SAR and colour (see outputMeaning). */
  meaning?: OutputMeaning;
  plan?: Segment[];
  ratio?: number;
  store?: RecordStore;
  /** Set by infer: every segment is done (else the report says `incomplete`). */
  segmentsDone?: boolean;
  /** How the source's audio goes into the mp4 output, decided before inference (null: none). */
  audio?: AudioPlan | null;
  /** The joined segment videos (mp4 output). */
  joined?: string;
  /** The final output, once written. */
  final?: string;
  /** Nothing left to do for this item, though it did not fail (incomplete, or a step alone that ends here). */
  end?: boolean;
  /** Set once a stage gave up on the video (the stage kit's one failure mark); later stages pass it on untouched. */
  failure?: ItemFailure;
}

export interface SegmentsStageContext {
  model: FrameModel;
  options: ResolvedSegmentsOptions;
  /** A video that fails: 'skip' (default: marked failed, the others go on), 'throw', or a function. */
  onError?: OnError;
  /** Each segment done, reused or failed (on top of `options.onSegment`). */
  onSegment?: (p: SegmentsProgress) => void;
}

/** A fresh item for a video and its output. */
export function segmentsItem(input: string, output: string): SegmentsItem {
  return {
    key: input,
    input,
    output,
    report: { input, output, workDir: workDirFor(output), status: 'done', segments: 0, segmentsRun: 0, segmentsReused: 0, failed: [], frames: 0 },
  };
}

/** A segments stage: an object-mode Duplex of SegmentsItems (the stage kit's `itemStage`). */
type Stage = Duplex;

/** A stage that runs `work` on every item still in play; a failure marks the item (`item.failure`, per onError) and passes it on. */
function stage(
  ctx: SegmentsStageContext,
  contract: { name: string; needs: string[]; adds: string[]; drops?: string[] },
  work: (item: SegmentsItem) => Promise<void>,
): Stage {
  return itemStage<SegmentsItem>(
    {
      ...contract,
      onError: ctx.onError,
      signal: ctx.options.signal,
      accepts: (item) => !item.end,
      keyOf: (item) => item.key,
      code: 'ERR_PIPELINE',
      whereOf: (item) => ({ file: item.input }),
      // One video at a time per stage, as they come.
      writableHighWaterMark: 1,
      readableHighWaterMark: 1,
      onFailure: (item, failure) => {
        const r = item.report;
        // A failure after inference (join, remux) keeps the counts of what ran: "0 segment(s) run" would be untrue.
        const ran = contract.name !== 'prepare' && contract.name !== 'split';
        item.report = ran
          ? { ...r, status: 'failed', error: failure.error.message }
          : { ...r, workDir: '', status: 'failed', segments: 0, segmentsRun: 0, segmentsReused: 0, failed: [], frames: 0, error: failure.error.message };
      },
    },
    work,
  );
}

const stepsOf = (o: ResolvedSegmentsOptions) =>
  o.step === 'all' ? new Set(['infer', 'join', 'remux', ...(o.keepSegments ? ['split'] : [])]) : new Set([o.step]);
/** The encoder settings of the options. */
export const encodeOf = (o: ResolvedSegmentsOptions) => ({ encoder: o.encoder, threads: o.encoderThreads, crf: o.crf, preset: o.preset, bitRate: o.bitRate });

/**
 * What a video's output depends on besides its segments: the source file, the model and the
 * options that change the frames. The records' settings file and the done marker's key both
 * start with it.
 */
export async function outputSettings(input: string, o: ResolvedSegmentsOptions, model: { sha256: string | null; kind: string }) {
  const src = await stat(input);
  return {
    input: { size: src.size, mtimeMs: src.mtimeMs },
    model: model.sha256,
    kind: model.kind,
    segmentSeconds: o.segmentSeconds,
    state: o.state,
    outputType: o.outputType,
    format: o.format,
    background: o.background,
    encode: encodeOf(o),
  };
}

/** What a finished video's output depends on besides its segments: the source, the model and every option that changes the output. */
export async function runKey(input: string, o: ResolvedSegmentsOptions, model: { sha256: string | null; kind: string }): Promise<string> {
  return JSON.stringify({ ...(await outputSettings(input, o, model)), downsampleRatio: o.downsampleRatio, audio: o.audio, keepSegments: o.keepSegments });
}

/** The done marker of a finished video (`done.json`): its run key, segment and frame counts, and its mp4 as written. */
async function doneMarker(item: SegmentsItem, ctx: SegmentsStageContext): Promise<DoneMarker> {
  const o = ctx.options;
  const key = await runKey(item.input, o, { sha256: await fileSha256(ctx.model.path), kind: ctx.model.kind });
  const out = o.format === 'mp4' ? await stat(item.output) : null;
  return { key, segments: item.report.segments, frames: item.report.frames, output: out ? { size: out.size, mtimeMs: out.mtimeMs } : null };
}

/**
 * Timestamps that restart (two recordings joined with `cat`) put two frames at one time: no
 * frame range means one span of the video then. A property of the file, so a rerun cannot help.
 */
function refuseResets(facts: MediaFacts): void {
  const r = facts.timeline?.resets[0];
  if (!r) return;
  const n = facts.timeline!.resets.length;
  throw new ClipstreamError(
    'ERR_DECODE',
    `${facts.path}: its timestamps restart at frame ${r.index} (${r.fromS.toFixed(3)} s → ${r.toS.toFixed(3)} s${n > 1 ? `, and ${n - 1} more time(s)` : ''}), as in recordings joined with cat; ` +
      'segments cannot place its frames on one timeline. This is permanent for this file: split it where the timestamps restart and run each part',
    { where: { file: facts.path } },
  );
}

/** The filters and tags an encode of this source's RGB frames needs: its matrix and range, its SAR, its colour tags. */
export function outputMeaning(facts: MediaFacts): OutputMeaning {
  const { filter, tags } = rgbEncodeColour(facts);
  return { filters: [filter, setsarFilter(facts)].filter((f): f is string => f !== null), tags };
}

/** Probe → plan → the work folder and its records (all redone, with a warning, when the source or settings changed). */
export function prepareStage(ctx: SegmentsStageContext): Stage {
  const { model, options: o } = ctx;
  return stage(ctx, { name: 'prepare', needs: ['input', 'output'], adds: ['timeline', 'meaning', 'plan', 'store', 'audio'] }, async (item) => {
    const { input, output, report } = item;
    const work = report.workDir;
    const facts = await probeMedia(input, { timeline: true, signal: o.signal });
    refuseResets(facts);
    const t = frameTimelineOf(facts);
    const segs = planSegments(t, o.segmentSeconds, 'options.segmentSeconds');
    report.segments = segs.length;
    report.frames = t.pts.length;
    const ratio = o.downsampleRatio === 'auto' ? autoDownsampleRatio(t.width, t.height) : o.downsampleRatio;
    model.checkFits(t.width, t.height, ratio, input);
    await mkdir(work, { recursive: true });
    for (const d of [work, join(work, 'records'), join(work, 'states'), dirname(output), ...(o.format === 'png' ? [output] : [])]) await removeDeadTemps(d);
    const store = new RecordStore(work);
    await store.clearDone();
    const meaning = outputMeaning(facts);
    // Segments encoded without the source's SAR or colour (an earlier version) are not joined with ones that have them.
    const kept = meaning.filters.length || meaning.tags.length ? { meaning } : {};
    const settings = `${JSON.stringify({ ...(await outputSettings(input, o, { sha256: await fileSha256(model.path), kind: model.kind })), ratio, ...kept }, null, 1)}\n`;
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
    // The audio is muxed last, but whether the mp4 takes it is found out now: a refusal then costs no inference.
    const audio = o.format === 'mp4' && o.audio === 'copy' && stepsOf(o).has('remux') ? await planAudio(t, work, o.signal) : null;
    if (audio?.note) (o.onWarning ?? defaultWarningHandler)(new ClipstreamError('ERR_ENCODE', audio.note, { where: { file: input } }));
    Object.assign(item, { timeline: t, meaning, plan: segs, ratio, store, audio });
  });
}

/** `--keep_segments` / `--step=split`: the source segments as files (`<work>/source/`). */
export function splitStage(ctx: SegmentsStageContext): Stage {
  const o = ctx.options;
  return stage(ctx, { name: 'split', needs: ['timeline', 'meaning', 'plan'], adds: ['sourceSegments'] }, async (item) => {
    if (stepsOf(o).has('split'))
      await writeSourceSegments(item.input, item.timeline!, item.plan!, join(item.report.workDir, 'source'), encodeOf(o), o.signal, item.meaning);
  });
}

/**
 * Every segment not done yet (per the state mode) through the model, each recorded as it ends;
 * a failing segment is recorded with its reason and the others go on (the video is then
 * `incomplete`, and a rerun retries it: in carry mode also the following ones whose start
 * state changes as a result, until the carried state is the same as before).
 */
export function inferStage(ctx: SegmentsStageContext): Stage {
  const { model, options: o } = ctx;
  return stage(ctx, { name: 'infer', needs: ['timeline', 'meaning', 'plan', 'store'], adds: ['segmentsDone'] }, async (item) => {
    const { input, output, report } = item;
    const t = item.timeline!;
    const segs = item.plan!;
    const store = item.store!;
    const work = report.workDir;
    const steps = stepsOf(o);
    const outOf = (s: Segment) => (o.format === 'mp4' ? join(work, `${segmentName(s.index)}.mp4`) : output);
    const ictx: InferContext = {
      path: input,
      timeline: t,
      model,
      ratio: item.ratio!,
      outputType: o.outputType,
      format: o.format,
      background: o.background,
      encode: encodeOf(o),
      meaning: item.meaning,
      prefetch: 4,
      signal: o.signal,
    };
    const done = segs.map(() => false);
    const processed = () =>
      store.writeProcessed(
        segs.map((s, i) => ({ file: o.format === 'mp4' ? `${segmentName(s.index)}.mp4` : relative(work, join(output, segmentName(s.index))), done: done[i]! })),
      );
    const progress = (p: SegmentsProgress) => {
      o.onSegment?.(p);
      ctx.onSegment?.(p);
    };

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
        // A segment leaves nothing when it fails, so a transient failure (its decoder killed, stalled) is simply run again.
        const r = await retryTransient(async () => inferSegment(ictx, seg, await stateIn(), outOf(seg)), { signal: o.signal });
        const outputs = await Promise.all(r.files.map(async (f) => ({ file: relative(work, f), sha256: (await fileSha256(f))! })));
        const stateOut = model.kind === 'rvm' ? await store.saveState(seg.index, r.state) : null;
        rec = { ...base, status: 'done', outputs, stateOut };
        end = r.state;
        report.segmentsRun++;
      } catch (err) {
        if (o.signal?.aborted) throw err;
        if (isDiskFull(err)) throw asDiskFull(err, outOf(seg));
        rec = {
          ...base,
          status: 'failed',
          outputs: [],
          stateOut: null,
          error: (err as Error).message,
          ...(isTransient(err) ? { transient: true as const } : {}),
        };
        report.failed.push({ index: seg.index, error: rec.error! });
      }
      await store.write(rec);
      done[seg.index] = rec.status === 'done';
      await processed();
      progress({ video: input, segment: seg.index, segments: segs.length, status: rec.status, frames: rec.frames, error: rec.error });
      return end;
    };
    const reuse = async (seg: Segment, inHash: string): Promise<SegmentRecord | null> => {
      const rec = await store.read(seg.index);
      if (!(await store.verified(rec)) || rec!.stateIn !== inHash) return null;
      done[seg.index] = true;
      report.segmentsReused++;
      progress({ video: input, segment: seg.index, segments: segs.length, status: 'reused', frames: rec!.frames });
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
            await run(seg, async () => (warm && seg.startFrame > 0 ? warmState(ictx, Math.max(0, seg.startFrame - warm), seg.startFrame) : null), inHash);
          }
        };
        await Promise.all(Array.from({ length: Math.min(o.parallelSegments, segs.length) }, worker));
      }
    } else {
      for (const seg of segs) done[seg.index] = await store.verified(await store.read(seg.index));
    }
    await processed();
    item.segmentsDone = done.every(Boolean);
    if (o.step === 'split') item.end = true;
    else if (!item.segmentsDone) {
      report.status = 'incomplete';
      report.error = `segment(s) ${segs
        .filter((s) => !done[s.index])
        .map((s) => s.index)
        .join(', ')} not done${report.failed.length ? ' (failed, see records)' : ''}; rerun to retry them`;
      item.end = true;
    }
  });
}

/** The segment videos joined by the concat demuxer, stream copy (mp4 output). */
export function joinStage(ctx: SegmentsStageContext): Stage {
  const o = ctx.options;
  return stage(ctx, { name: 'join', needs: ['segmentsDone'], adds: ['joined'] }, async (item) => {
    if (o.format !== 'mp4') return;
    const work = item.report.workDir;
    item.joined = join(work, 'joined.mp4');
    if (stepsOf(o).has('join'))
      await joinSegments(
        work,
        item.plan!.map((s) => `${segmentName(s.index)}.mp4`),
        item.joined,
        o.signal,
      );
  });
}

/** The joined video with the source audio back (`--audio`): the final output; then the done marker that lets a rerun skip the video. */
export function remuxStage(ctx: SegmentsStageContext): Stage {
  const o = ctx.options;
  return stage(ctx, { name: 'remux', needs: ['joined', 'timeline', 'audio'], adds: ['final'], drops: ['joined'] }, async (item) => {
    if (o.format === 'mp4' && stepsOf(o).has('remux')) {
      await remuxAudio(item.joined!, item.timeline!, o.audio, item.output, o.signal, item.audio);
      if (o.step === 'all') await rm(item.joined!, { force: true });
    }
    item.final = item.output;
    if (o.step === 'all') await item.store!.writeDone(await doneMarker(item, ctx));
  });
}

/** The stages of the job, in order. */
export function segmentsStages(ctx: SegmentsStageContext): Stage[] {
  return [prepareStage(ctx), splitStage(ctx), inferStage(ctx), joinStage(ctx), remuxStage(ctx)];
}
