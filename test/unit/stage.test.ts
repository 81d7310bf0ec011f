import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { generatorStage, orderedMap } from '../../src/stage/generator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('orderedMap', () => {
  it('keeps input order when later items finish first', async () => {
    const delays = [50, 5, 30, 1, 10];
    const out = await collect(
      orderedMap(
        Readable.from(delays),
        async (d) => {
          await sleep(d);
          return d;
        },
        3,
      ),
    );
    expect(out).toEqual(delays);
  });

  it.each([1, 2, 4])('never runs more than %i calls at once', async (concurrency) => {
    let running = 0;
    let peak = 0;
    await collect(
      orderedMap(
        Readable.from(Array.from({ length: 12 }, (_, i) => i)),
        async (x) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(5);
          running--;
          return x;
        },
        concurrency,
      ),
    );
    expect(peak).toBe(concurrency);
  });

  it('yields a finished head at once while the source is slow', async () => {
    async function* slow() {
      yield 1;
      await sleep(300);
      yield 2;
    }
    const started = Date.now();
    const it = orderedMap(slow(), async (x) => x, 4)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toBe(1);
    expect(Date.now() - started).toBeLessThan(250);
    await it.return?.(undefined);
  });

  it('propagates an error thrown by fn', async () => {
    await expect(
      collect(
        orderedMap(
          Readable.from([1, 2, 3]),
          async (x) => {
            if (x === 2) throw new Error('boom 2');
            return x;
          },
          2,
        ),
      ),
    ).rejects.toThrow('boom 2');
  });
});

describe('generatorStage', () => {
  it('works inside pipeline and transforms every item in order', async () => {
    const out: number[] = [];
    await pipeline(
      Readable.from([1, 2, 3, 4]),
      generatorStage<number, number>(async function* (source) {
        for await (const x of source) yield x * 10;
      }),
      new Writable({
        objectMode: true,
        write(x: number, _e, cb) {
          out.push(x);
          cb();
        },
      }),
    );
    expect(out).toEqual([10, 20, 30, 40]);
  });

  it('applies backpressure: a stalled consumer stops the producer after a bounded number of items', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 1000; i++) {
        produced++;
        yield i;
      }
    }
    const stage = generatorStage<number, number>(
      async function* (src) {
        for await (const x of src) yield x;
      },
      { writableHighWaterMark: 2, readableHighWaterMark: 2 },
    );
    const done = pipeline(
      source(),
      stage,
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(_x, _e, _cb) {
          /* never calls back: stalled */
        },
      }),
    );
    done.catch(() => {});
    await sleep(100);
    expect(produced).toBeGreaterThan(0);
    expect(produced).toBeLessThan(50);
    stage.destroy();
  });

  it('aborts its signal when destroyed by an error elsewhere in the pipeline', async () => {
    let aborted = false;
    const stage = generatorStage<number, number>(async function* (src, signal) {
      signal.addEventListener('abort', () => {
        aborted = true;
      });
      for await (const x of src) yield x;
    });
    await expect(
      pipeline(
        Readable.from([1, 2, 3]),
        stage,
        new Writable({
          objectMode: true,
          write(x: number, _e, cb) {
            cb(x === 2 ? new Error('sink failed') : null);
          },
        }),
      ),
    ).rejects.toThrow('sink failed');
    expect(aborted).toBe(true);
  });
});

describe('orderedMap with a slow head', () => {
  it('keeps the other slots busy while the head is still running', async () => {
    let releaseHead!: () => void;
    const head = new Promise<void>((r) => (releaseHead = r));
    const started: number[] = [];
    const it = orderedMap(
      Readable.from([0, 1, 2, 3, 4, 5]),
      async (x) => {
        started.push(x);
        if (x === 0) await head;
        return x;
      },
      2,
    )[Symbol.asyncIterator]();
    const first = it.next();
    // While item 0 runs, its neighbour slot goes on with 1, 2, 3 (results wait, at most 2 x concurrency).
    for (let i = 0; i < 50 && started.length < 4; i++) await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3]);
    releaseHead();
    expect((await first).value).toBe(0);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual([1, 2, 3, 4, 5]);
  });
});
