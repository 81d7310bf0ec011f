import { validateInteger } from '../util/validate.js';

export interface BatchQueueOptions<I, O> {
  /** Most items run at once. */
  batchSize: number;
  /** Items with the same key can share a batch (default: all can). */
  groupKey?: (item: I) => string;
  /** Runs one batch; returns one result per item, in order. A throw fails every item of the batch. */
  run: (batch: I[]) => Promise<O[]>;
}

interface Queued<I, O> {
  item: I;
  key: string;
  resolve: (r: O) => void;
  reject: (e: Error) => void;
}

/**
 * Batching by backpressure for callers that submit items one at a time (the stream form is
 * `batchStage`): while a batch runs, submitted items queue; when the model is free it takes what
 * is queued (the oldest item and those of its group, up to `batchSize`) as the next batch. Never
 * waits for a full batch: a slow caller gets batches of one at once.
 *
 * @example
 * const q = new BatchQueue({ batchSize: 4, run: (frames) => model.runFrames(frames) });
 * const [a, b] = await Promise.all([q.submit(f0), q.submit(f1)]); // one batch of two
 */
export class BatchQueue<I, O> {
  readonly batchSize: number;
  /** Sizes of the batches run, for statistics. */
  readonly batchSizes: number[] = [];
  private queue: Queued<I, O>[] = [];
  private running = false;

  constructor(private readonly options: BatchQueueOptions<I, O>) {
    this.batchSize = validateInteger(options.batchSize, 'options.batchSize', 1, 4096);
  }

  /** Queues one item; resolves with its result. */
  submit(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, key: this.options.groupKey?.(item) ?? '', resolve, reject });
      if (!this.running) {
        this.running = true;
        // One microtask turn lets callers that submit together share the batch; no timer.
        queueMicrotask(() => void this.pump());
      }
    });
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const batch: Queued<I, O>[] = [];
      for (let i = 0; i < this.queue.length && batch.length < this.batchSize; i++) {
        if (this.queue[i]!.key === head.key) batch.push(this.queue[i]!);
      }
      this.queue = this.queue.filter((q) => !batch.includes(q));
      this.batchSizes.push(batch.length);
      try {
        const results = await this.options.run(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
      // Others are waiting: give the callers just answered one event-loop turn to submit their
      // next item, so callers with one item in flight each (recurrent streams) keep sharing
      // batches instead of drifting into alternate batches of one. Not a timer: the model is
      // busy again within the same turn.
      if (this.queue.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.running = false;
  }
}
