/**
 * # How to write a stage
 *
 * Every job of clipstream is `pipeline(source, ...stages, { signal })`: a source of items (a
 * Readable, an async iterable), object-mode stages that work on them, and a sink. Each stage
 * also works alone in a user's `stream/promises.pipeline`. This module is the one kit they are
 * written with.
 *
 * **An item** is a plain object: a `key` (or a tar sample's `__key__`) that failure messages
 * name, the fields the stages before it added, and at most one failure mark, `item.failure`
 * (`ItemFailure`: the stage, a `ClipstreamError`, and `'failed'` or `'skipped'`). An item
 * with a failure passes every later stage untouched; markers (a shard's end) pass too.
 *
 * **A per-item stage** is `itemStage(options, step)`. `step(item, { signal, where })` changes
 * the item in place (or returns the item that goes on in its place) and throws when it cannot
 * do its work. The kit runs it on `concurrency` items at once, keeps their order, holds one of
 * the run's `Slots` per step when given, and when the step throws it marks the item
 * (`item.failure`) and passes it on, or stops the pipeline, as `onError` says (`'skip'`, the
 * default; `'throw'`; or a function of the error). An abort always stops the pipeline. Options:
 * `name`, `needs`, `adds`, `drops` (its contract), `concurrency`, `onError`, `slots`,
 * `accepts` (which items the step sees), `keyOf`/`whereOf`/`code`/`statusOf` (how a failure
 * reads), `onFailure` (to update the job's own view of a failed item), `signal`.
 *
 * **Its contract** (`needs`: fields it reads, `adds`: fields it puts on the item, `drops`: heavy
 * fields it consumes) is checked when a pipeline is built: `checkStages(stages, sourceFields)`
 * throws `ERR_PIPELINE` naming both stages when one needs what no stage before it adds.
 *
 * **Stages that are not one item in, one item out** (a video in, its frames out; batches for
 * a model; a sink) are `generatorStage(async function* (source, signal) { ... })` with
 * `declareStage(stage, contract)`; `orderedMap` gives bounded, ordered concurrency there. Such
 * a stage passes items that carry a failure on without working on them, as the kit does.
 *
 * **A sink** (the last stage: a record written, a table updated) is `itemSink(contract, write)`:
 * `write(item)` is awaited for each item in turn, failed ones included (the sink records them).
 *
 * **Composing**: `pipeline(source, ...stages, { signal })` here is `stream/promises.pipeline`
 * that, on a failure or an abort, returns only once every stage has closed (no ffmpeg left).
 *
 * @example
 * import { Readable } from 'node:stream';
 * import { checkStages, itemStage, pipeline } from 'clipstream';
 *
 * // Needs `text`, adds `words`; two items at once, in order. An empty text fails its item only.
 * const countWords = itemStage({ name: 'count words', needs: ['text'], adds: ['words'], concurrency: 2 }, async (item) => {
 *   if (item.text === '') throw new Error('no text');
 *   item.words = item.text.split(' ').length;
 * });
 * const out = [];
 * await pipeline(
 *   Readable.from([{ key: 'a', text: 'one two three' }, { key: 'b', text: '' }]),
 *   ...checkStages([countWords], ['key', 'text']),
 *   async (items) => {
 *     for await (const item of items) out.push([item.key, item.words ?? `${item.failure.stage}: ${item.failure.error.message}`]);
 *   },
 * );
 * console.log(JSON.stringify(out)); // [["a",3],["b","count words: no text"]]
 *
 * @module
 */
export { generatorStage, orderedMap, type StageOptions } from './generator.js';
export { declareStage, checkStages, type StageContract } from './contract.js';
export { failItem, type ItemFailure, type OnError } from './on-error.js';
export { itemSink, itemStage, type ItemStageOptions } from './item-stage.js';
export { Slots } from './slots.js';
export { pipeline } from './compose.js';
