import { Duplex } from 'node:stream';

export interface StageOptions {
  /** Items buffered on the input side before upstream is paused. */
  writableHighWaterMark?: number;
  /** Items buffered on the output side before this stage stops producing. */
  readableHighWaterMark?: number;
}

/**
 * Turns an async generator function over an input iterable into an object-mode Duplex
 * that works in `stream/promises.pipeline`. Backpressure is natural: the generator only
 * pulls the next input when it needs one, and only resumes after a `yield` once the
 * consumer wants more. Destroying the stream aborts `signal`, so work in flight (an
 * ffmpeg child, a queued batch) can be torn down.
 *
 * @example
 * const double = generatorStage(async function* (source) {
 *   for await (const x of source) yield x * 2;
 * });
 */
export function generatorStage<I, O>(
  fn: (source: AsyncIterable<I>, signal: AbortSignal) => AsyncGenerator<O, void, undefined>,
  options: StageOptions = {},
): Duplex {
  return new GeneratorStage<I, O>(fn, options);
}

class GeneratorStage<I, O> extends Duplex {
  private readonly inputQueue: I[] = [];
  private inputEnded = false;
  private inputWaiter: (() => void) | null = null;
  private pendingWriteCallback: ((err?: Error | null) => void) | null = null;
  private readonly abort = new AbortController();
  private readonly generator: AsyncGenerator<O, void, undefined>;
  private reading = false;
  private readonly writableLimit: number;

  constructor(fn: (source: AsyncIterable<I>, signal: AbortSignal) => AsyncGenerator<O, void, undefined>, options: StageOptions) {
    super({
      objectMode: true,
      writableHighWaterMark: options.writableHighWaterMark ?? 4,
      readableHighWaterMark: options.readableHighWaterMark ?? 4,
    });
    this.writableLimit = options.writableHighWaterMark ?? 4;
    this.generator = fn(this.input(), this.abort.signal);
  }

  private async *input(): AsyncGenerator<I, void, undefined> {
    for (;;) {
      if (this.inputQueue.length > 0) {
        const item = this.inputQueue.shift() as I;
        this.releaseWriter();
        yield item;
        continue;
      }
      if (this.inputEnded) return;
      await new Promise<void>((resolve) => {
        this.inputWaiter = resolve;
      });
    }
  }

  private wakeInput(): void {
    const w = this.inputWaiter;
    this.inputWaiter = null;
    w?.();
  }

  private releaseWriter(): void {
    if (this.pendingWriteCallback && this.inputQueue.length < this.writableLimit) {
      const cb = this.pendingWriteCallback;
      this.pendingWriteCallback = null;
      cb();
    }
  }

  override _write(chunk: I, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.inputQueue.push(chunk);
    this.wakeInput();
    if (this.inputQueue.length < this.writableLimit) callback();
    else this.pendingWriteCallback = callback;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inputEnded = true;
    this.wakeInput();
    callback();
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.generator.next();
        if (this.destroyed) return;
        if (done) {
          this.push(null);
          return;
        }
        if (!this.push(value)) break;
      }
    } catch (err) {
      this.destroy(err as Error);
      return;
    } finally {
      this.reading = false;
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Internal: only the stage's own work sees this abort reason; a plain Error is enough (test/unit/errors.test.ts allowlist).
    this.abort.abort(err ?? new Error('stage destroyed'));
    this.inputEnded = true;
    this.wakeInput();
    const cb = this.pendingWriteCallback;
    this.pendingWriteCallback = null;
    cb?.(err);
    // The generator may be suspended inside an await; return() settles once it reaches a yield.
    this.generator.return(undefined).then(
      () => callback(err),
      () => callback(err),
    );
  }
}

/**
 * Maps `fn` over `source` with at most `concurrency` calls in flight, yielding results in
 * input order. A finished head result is yielded at once, even while the source is slow,
 * so a trickling producer does not add latency. A call that finished behind a slower head
 * frees its slot (its result waits, at most `concurrency` of them), so one slow item does
 * not leave the other workers idle.
 */
export async function* orderedMap<I, O>(source: AsyncIterable<I>, fn: (item: I) => Promise<O>, concurrency: number): AsyncGenerator<O, void, undefined> {
  type Entry = { promise: Promise<void>; result?: { value: O } | { error: unknown } };
  type NextEntry = { promise: Promise<void>; result?: IteratorResult<I> | { error: unknown } };
  const iterator = source[Symbol.asyncIterator]();
  const queue: Entry[] = [];
  let next: NextEntry | null = null;
  let sourceDone = false;
  const running = () => queue.reduce((n, e) => n + (e.result === undefined ? 1 : 0), 0);
  try {
    for (;;) {
      if (!sourceDone && next === null && running() < concurrency && queue.length < 2 * concurrency) {
        const entry: NextEntry = { promise: Promise.resolve() };
        entry.promise = iterator.next().then(
          (r) => {
            entry.result = r;
          },
          (error: unknown) => {
            entry.result = { error };
          },
        );
        next = entry;
      }
      // A source item arrived: start its call.
      if (next !== null && next.result !== undefined) {
        const r = next.result;
        next = null;
        if ('error' in r) throw r.error;
        if (r.done) sourceDone = true;
        else queue.push(track(fn(r.value)));
        continue;
      }
      const head = queue[0];
      if (head !== undefined && head.result !== undefined) {
        queue.shift();
        if ('error' in head.result) throw head.result.error;
        yield head.result.value;
        continue;
      }
      if (head === undefined && (sourceDone || next === null)) return;
      // Wait for any call to finish or the next source item, whichever comes first.
      const waits: Promise<void>[] = queue.filter((e) => e.result === undefined).map((e) => e.promise);
      if (next !== null) waits.push(next.promise);
      await Promise.race(waits);
    }
  } finally {
    if (!sourceDone) await iterator.return?.();
  }

  function track(p: Promise<O>): Entry {
    const entry: Entry = { promise: Promise.resolve() };
    entry.promise = p.then(
      (value) => {
        entry.result = { value };
      },
      (error: unknown) => {
        entry.result = { error };
      },
    );
    return entry;
  }
}
