import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../errors.js';
import { retryPolicy } from '../media/process.js';
import { declareStage } from '../stage/contract.js';
import { failItem, type OnError } from '../stage/on-error.js';
import { generatorStage } from '../stage/generator.js';
import { sampledFrames } from './frames.js';
import type { FaceItem, FaceSource, FrameItem, SourceEnd } from './items.js';
import { probeSource } from './source-info.js';

export interface SampleFramesOptions {
  ffmpeg: string;
  /** Run the detector on every k-th frame. */
  sampleEvery: number;
  /** Sources decoded at once; their frames interleave, each source's in order. */
  numWorkers: number;
  /** Detector input size for a displayed frame size (FaceDetector.fit). */
  fit: (width: number, height: number) => { width: number; height: number; scale: number };
  signal?: AbortSignal;
  /** A source that cannot be probed or decoded: 'skip' (default: it ends failed, the others go on), 'throw', or a function. */
  onError?: OnError;
}

/**
 * Stage: sources in, sampled frames out (pixels resized for the detector, displayed
 * orientation), then a `source-end` per source. A source that cannot be probed or decoded
 * ends with the error on its `source-end`; the others go on.
 *
 * @example
 * await pipeline(Readable.from(sources), sampleFramesStage({ ffmpeg, sampleEvery: 2, numWorkers: 2, fit: det.fit.bind(det) }), sink);
 */
export function sampleFramesStage(options: SampleFramesOptions) {
  return declareStage(
    generatorStage<FaceSource, FaceItem>((sources, signal) => mergeBounded(sources, (s) => sourceFrames(s, options, signal), options.numWorkers)),
    { name: 'sample frames', needs: ['source'], adds: ['info', 'frame', 'pixels', 'source-end'] },
  );
}

async function* sourceFrames(source: FaceSource, o: SampleFramesOptions, stageSignal: AbortSignal): AsyncGenerator<FrameItem | SourceEnd> {
  const signal = o.signal ? AbortSignal.any([o.signal, stageSignal]) : stageSignal;
  let samples = 0;
  try {
    const info = await probeSource(source.path, o.ffmpeg, signal);
    source.info = info;
    const fit = o.fit(info.displayWidth, info.displayHeight);
    const { retries, backoffMs } = retryPolicy();
    for (let attempt = 0; ; attempt++) {
      // A transient failure (the decoder killed from outside, or stalled) decodes again, from
      // the start: the frames given before are decoded again and passed over.
      let decoded = 0;
      try {
        for await (const f of sampledFrames(o.ffmpeg, source.path, { sampleEvery: o.sampleEvery, ...fit, signal })) {
          if (decoded++ < samples) continue;
          const frame = f.sample * o.sampleEvery;
          yield {
            kind: 'frame',
            source,
            frame,
            sample: f.sample,
            time: Number.isFinite(f.time) ? f.time : frame / info.fps,
            rgb: f.rgb,
            width: fit.width,
            height: fit.height,
            scale: fit.scale,
          };
          samples++;
        }
        break;
      } catch (err) {
        if (signal.aborted || attempt >= retries || !isTransient(err)) throw err;
        await sleep(backoffMs * 2 ** attempt, undefined, { signal });
      }
    }
    yield { kind: 'source-end', source, samples };
  } catch (err) {
    if (signal.aborted) throw err;
    const failure = failItem(o.onError, 'sample frames', err, { key: source.rel, code: 'ERR_DECODE', where: { file: source.path } });
    yield { kind: 'source-end', source, samples, error: failure.error };
  }
}

/**
 * Runs `fn` over up to `concurrency` inputs at once and yields their items as they come; each
 * inner iterator is asked for its next item only once its previous one was taken, so at most
 * `concurrency` items wait here.
 */
export async function* mergeBounded<I, O>(
  source: AsyncIterable<I>,
  fn: (item: I) => AsyncIterator<O>,
  concurrency: number,
): AsyncGenerator<O, void, undefined> {
  const input = source[Symbol.asyncIterator]();
  let inputDone = false;
  type Slot = { it: AsyncIterator<O>; next: Promise<{ slot: Slot; r: IteratorResult<O> }> };
  const slots = new Set<Slot>();
  const pull = (slot: Slot) => {
    slot.next = slot.it.next().then((r) => ({ slot, r }));
  };
  try {
    for (;;) {
      while (!inputDone && slots.size < concurrency) {
        const r = await input.next();
        if (r.done) {
          inputDone = true;
          break;
        }
        const slot = { it: fn(r.value) } as Slot;
        pull(slot);
        slots.add(slot);
      }
      if (slots.size === 0) return;
      const { slot, r } = await Promise.race([...slots].map((s) => s.next));
      if (r.done) {
        slots.delete(slot);
        continue;
      }
      yield r.value;
      pull(slot);
    }
  } finally {
    for (const s of slots) {
      s.next.catch(() => {});
      await s.it.return?.(undefined);
    }
    if (!inputDone) await input.return?.();
  }
}
