/**
 * One segment through the model: decode its frame range → model → output writer. A recurrent
 * model gets the segment's start state (carried from the previous segment, zeros, or warmed up
 * on the `warmup` frames before the segment) and returns the state after its last frame. While
 * frame t runs in the model, frame t−1 is composed and written and frames t+1.. are decoded,
 * so decode, inference and encode overlap without frames piling up (a few frames of memory).
 */
import type { EncodeSettings } from '../media/encoders.js';
import { ClipstreamError } from '../errors.js';
import { composeFrame, pngChannels, toModelInput, type OutputType } from './compose.js';
import { decodeRange, prefetch } from './decode-range.js';
import { mp4Sink, pngSink, type FrameSink, type OutputMeaning } from './encode.js';
import type { FrameTimeline } from '../media/probe.js';
import type { FrameModel, FrameResult, RecurrentState } from './model.js';
import { keyframeBefore, type Segment } from './plan.js';

export interface InferContext {
  path: string;
  timeline: FrameTimeline;
  model: FrameModel;
  ratio: number;
  outputType: OutputType;
  format: 'mp4' | 'png';
  background: readonly [number, number, number];
  encode: EncodeSettings;
  /** SAR and colour of the source, for mp4 output. */
  meaning?: OutputMeaning;
  /** Frames decoded ahead of the model. */
  prefetch: number;
  signal?: AbortSignal;
}

/** Marks a promise as handled (a failure is still seen where it is awaited), so an early exit leaves no unhandled rejection. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Runs `frames` [from, to) through the model only to warm the state up; outputs are dropped. */
export async function warmState(ctx: InferContext, from: number, to: number): Promise<RecurrentState> {
  let state: RecurrentState = null;
  const { width: w, height: h } = ctx.timeline;
  const range = { startFrame: from, endFrame: to };
  for await (const rgb of prefetch(
    decodeRange(ctx.path, ctx.timeline, range, keyframeBefore(ctx.timeline.keyframes, from), { signal: ctx.signal }),
    ctx.prefetch,
  )) {
    state = (await ctx.model.submit(toModelInput(rgb, w, h), state, h, w, ctx.ratio)).state;
  }
  return state;
}

/**
 * Writes segment `seg` to `out` (an mp4, or a folder of PNGs named by source frame) starting
 * from `stateIn`; returns the files written and the end state. On failure nothing of it stays.
 *
 * @example const { files, state } = await inferSegment(ctx, seg, null, 'out/a.segments/seg_000000.mp4');
 */
export async function inferSegment(
  ctx: InferContext,
  seg: Segment,
  stateIn: RecurrentState,
  out: string,
): Promise<{ files: string[]; state: RecurrentState; frames: number }> {
  const { width: w, height: h } = ctx.timeline;
  const _plane = w * h;
  const sink: FrameSink =
    ctx.format === 'mp4'
      ? await mp4Sink(out, w, h, ctx.timeline.rate, ctx.encode, ctx.signal, ctx.meaning)
      : pngSink(out, seg.startFrame, w, h, pngChannels(ctx.outputType));
  const channels = ctx.format === 'mp4' ? 3 : pngChannels(ctx.outputType);
  const emit = async (rgb: Uint8Array, r: FrameResult) => {
    await sink.write(composeFrame(ctx.outputType, rgb, r.fgr, r.pha, w, h, ctx.background, channels));
  };
  let state = stateIn;
  let frames = 0;
  try {
    const source = prefetch(decodeRange(ctx.path, ctx.timeline, seg, seg.keyframe, { signal: ctx.signal }), ctx.prefetch);
    // In flight: frames whose model result is pending, oldest first (at most one for RVM).
    const inFlight: { rgb: Uint8Array; result: Promise<FrameResult> }[] = [];
    const depth = ctx.model.kind === 'rvm' ? 1 : ctx.model.batchSize;
    const drainOne = async () => {
      const f = inFlight.shift()!;
      const r = await f.result;
      await emit(f.rgb, r);
      frames++;
    };
    for await (const rgb of source) {
      if (ctx.model.kind === 'rvm') {
        // The next frame needs this state: wait for the previous result, then compose it
        // while this frame runs.
        const prev = inFlight.shift();
        const prevResult = prev ? await prev.result : null;
        if (prevResult) state = prevResult.state;
        inFlight.push({ rgb, result: handled(ctx.model.submit(toModelInput(rgb, w, h), state, h, w, ctx.ratio)) });
        if (prev && prevResult) {
          await emit(prev.rgb, prevResult);
          frames++;
        }
      } else {
        inFlight.push({ rgb, result: handled(ctx.model.submit(toModelInput(rgb, w, h), null, h, w, ctx.ratio)) });
        while (inFlight.length > depth) await drainOne();
      }
    }
    while (inFlight.length > 0) {
      const f = inFlight[0]!;
      const r = await f.result;
      if (ctx.model.kind === 'rvm') state = r.state;
      await drainOne();
    }
    if (frames !== seg.endFrame - seg.startFrame) {
      throw new ClipstreamError('ERR_DECODE', `${ctx.path}: segment ${seg.index} gave ${frames} of ${seg.endFrame - seg.startFrame} frames`, {
        where: { file: ctx.path },
      });
    }
    return { files: await sink.finish(), state, frames };
  } catch (err) {
    await sink.abort().catch(() => {});
    throw err;
  }
}
