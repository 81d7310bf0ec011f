import { type Duplex, Writable } from 'node:stream';
import type { ErrorCode, Where } from '../errors.js';
import type { ItemFailure } from '../types.js';
import { declareStage, type StageContract } from './contract.js';
import { generatorStage, orderedMap, type StageOptions } from './generator.js';
import { failItem, type OnError } from './on-error.js';
import type { Slots } from './slots.js';

/** What the kit needs of an item: the place for its one failure mark. */
export interface Failable {
  failure?: ItemFailure;
}

/** What a step is given besides its item. */
export interface StepContext {
  /** Aborted when the run stops or the stage is destroyed: pass it to every child process and wait. */
  signal: AbortSignal;
  /** What a failure of this item names (from `whereOf`); a step may add to it (the member it read). */
  where: Where;
}

/** Works on one item: changes it in place (returns nothing), or returns the item that goes on in its place. */
// biome-ignore lint/suspicious/noConfusingVoidType: a step that changes its item in place returns nothing.
export type ItemStep<I> = (item: I, ctx: StepContext) => Promise<I | undefined | void>;

export interface ItemStageOptions<I> extends StageContract, StageOptions {
  /** Items worked on at once (default 1); they come out in the order they came in. */
  concurrency?: number;
  /** An item the step throws on: `'skip'` (default) marks it failed and passes it on, `'throw'` stops the pipeline, or a function decides. */
  onError?: OnError;
  /** Shared by the stages of a run: each step holds one slot while it works. */
  slots?: Slots;
  /** The items the step works on (default: all); the others pass through untouched, as do failed items. */
  accepts?: (item: I) => boolean;
  /** How a failure names the item (default: its `key`, else its `__key__`). */
  keyOf?: (item: I) => string;
  /** The code a failure that is not a ClipstreamError gets (default `ERR_PIPELINE`). */
  code?: ErrorCode;
  /** Where a failure of the item happened (a file, a shard); the step may add to it. */
  whereOf?: (item: I) => Where;
  /** `'skipped'` for errors that are expected conditions (a clip too short); default `'failed'`. */
  statusOf?: (error: unknown) => 'skipped' | 'failed';
  /** Called once the item is marked failed, to update the job's own view of it (a table row, a report). */
  onFailure?: (item: I, failure: ItemFailure) => void;
  /** The run's signal: once it aborts, an error stops the pipeline instead of marking the item. */
  signal?: AbortSignal;
}

const defaultKey = (item: object): string => {
  const i = item as { key?: unknown; __key__?: unknown };
  return String(i.key ?? i.__key__ ?? '');
};

/**
 * The per-item step of `itemStage` without the stream: runs `step` on an item the stage
 * accepts and returns the item to pass on, marked (`item.failure`, per `onError`) when the step
 * threw. Failed and not accepted items come back untouched; an abort is thrown. `signal`
 * (default: `options.signal`) is the one the step is given.
 */
export function itemStep<I extends object>(options: ItemStageOptions<I>, step: ItemStep<I>): (item: I, signal?: AbortSignal) => Promise<I> {
  const never = new AbortController().signal;
  return async (item, given) => {
    if ((item as Failable).failure !== undefined || (options.accepts !== undefined && !options.accepts(item))) return item;
    const signal = given ?? options.signal ?? never;
    const where: Where = { ...options.whereOf?.(item) };
    try {
      const run = () => step(item, { signal, where });
      const out = await (options.slots ? options.slots.use(run, signal) : run());
      return out ?? item;
    } catch (err) {
      if (signal.aborted) throw err;
      const failure = failItem(options.onError, options.name, err, {
        key: (options.keyOf ?? defaultKey)(item),
        code: options.code ?? 'ERR_PIPELINE',
        where,
        status: options.statusOf?.(err),
      });
      (item as Failable).failure = failure;
      options.onFailure?.(item, failure);
      return item;
    }
  };
}

/**
 * A per-item stage: an object-mode Duplex for `stream/promises.pipeline` that runs `step` on
 * each item it accepts, `concurrency` at a time, items kept in order, with its contract
 * declared for `checkStages`. See the module comment of src/stage/index.ts.
 */
export function itemStage<I extends object>(options: ItemStageOptions<I>, step: ItemStep<I>): Duplex {
  const one = itemStep(options, step);
  const concurrency = options.concurrency ?? 1;
  const stage = generatorStage<I, I>(
    (source, stageSignal) => {
      const signal = options.signal ? AbortSignal.any([options.signal, stageSignal]) : stageSignal;
      return orderedMap(source, (item) => one(item, signal), concurrency);
    },
    {
      writableHighWaterMark: options.writableHighWaterMark ?? concurrency,
      readableHighWaterMark: options.readableHighWaterMark ?? concurrency,
    },
  );
  const { name, needs, adds, drops } = options;
  return declareStage(stage, { name, needs, adds, drops });
}

/**
 * The last stage of a pipeline: an object-mode Writable that awaits `write` for each item, one
 * at a time and in order (a record written, a table updated), with its contract declared. A
 * failed item reaches it too: the sink is where a failure is recorded.
 *
 * @example
 * await pipeline(Readable.from(items), decode, itemSink({ name: 'record', needs: ['video'] }, async (item) => save(item)));
 */
export function itemSink<I>(contract: StageContract, write: (item: I) => Promise<void>): Writable {
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write: (item: I, _encoding, callback) => {
      write(item).then(() => callback(), callback);
    },
  });
  return declareStage(sink, contract);
}
