import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { batchStage } from '../../src/infer/batcher.js';
import type { Sample, StreamItem } from '../../src/types.js';
import { isLive } from '../../src/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shard = { url: 's.tar', name: 's', index: 0 };

function sample(i: number): Sample {
  return { kind: 'sample', __key__: `k${i}`, __url__: 's.tar', shard, index: i, files: {}, entry: { filename: `k${i}.mp4`, id: `k${i}`, segment: [0, 10] } };
}

async function* producer(n: number, delayMs: number): AsyncGenerator<StreamItem> {
  for (let i = 0; i < n; i++) {
    if (delayMs) await sleep(delayMs);
    yield sample(i);
  }
  yield { kind: 'shard-end', shard, samples: n };
}

async function runBatches(opts: { n: number; produceMs: number; runMs: number; consumeMs: number; batchSize: number }) {
  const sizes: number[] = [];
  const out: StreamItem[] = [];
  await pipeline(
    producer(opts.n, opts.produceMs),
    batchStage({
      batchSize: opts.batchSize,
      accept: (x: StreamItem): x is Sample => isLive(x),
      onBatch: (s) => sizes.push(s),
      run: async (batch) => {
        await sleep(opts.runMs);
        for (const s of batch) s.visualFeatures = [];
      },
    }),
    new Writable({
      objectMode: true,
      highWaterMark: 1,
      write(x: StreamItem, _e, cb) {
        out.push(x);
        setTimeout(cb, opts.consumeMs);
      },
    }),
  );
  return { sizes, out };
}

describe('batchStage with two batches in flight (inFlight 2)', () => {
  async function inFlight2(n: number, produceMs: number) {
    const sizes: number[] = [];
    const out: StreamItem[] = [];
    let running = 0;
    let most = 0;
    await pipeline(
      producer(n, produceMs),
      batchStage({
        batchSize: 4,
        inFlight: 2,
        accept: (x: StreamItem): x is Sample => isLive(x),
        onBatch: (size) => sizes.push(size),
        run: async (batch) => {
          most = Math.max(most, ++running);
          // The later batch may finish first: the order downstream must not follow it.
          await sleep(batch[0]!.index % 8 === 0 ? 30 : 5);
          running--;
          for (const x of batch) x.visualFeatures = [];
        },
      }),
      new Writable({
        objectMode: true,
        write(x: StreamItem, _e, cb) {
          out.push(x);
          cb();
        },
      }),
    );
    return { sizes, out, most };
  }

  it('runs a second full batch while one runs, and keeps the order of the items', async () => {
    const { sizes, out, most } = await inFlight2(40, 0);
    expect(most).toBe(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40);
    expect(sizes.slice(1, -1).every((s) => s === 4)).toBe(true);
    expect(out.map((x) => (x.kind === 'sample' ? x.index : 'end'))).toEqual([...Array.from({ length: 40 }, (_, i) => i), 'end']);
  });

  it('never starts a partial batch beside a running one: a trickle gets one batch at a time', async () => {
    const { sizes, most } = await inFlight2(8, 20);
    expect(most).toBe(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(8);
  });
});

describe('batchStage (batching by backpressure)', () => {
  it('fills batches when the producer is faster than the model', async () => {
    const { sizes, out } = await runBatches({ n: 40, produceMs: 0, runMs: 20, consumeMs: 0, batchSize: 8 });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40);
    // The first batch starts with what is there; after that work piles up and batches are full.
    expect(sizes.slice(1, -1).every((s) => s === 8)).toBe(true);
    expect(out.map((x) => (x.kind === 'sample' ? x.index : 'end'))).toEqual([...Array.from({ length: 40 }, (_, i) => i), 'end']);
  });

  it('keeps batches small when samples trickle in', async () => {
    const { sizes } = await runBatches({ n: 10, produceMs: 30, runMs: 2, consumeMs: 0, batchSize: 8 });
    expect(Math.max(...sizes)).toBe(1);
  });

  it('grows batches when the consumer downstream is slow', async () => {
    const fast = await runBatches({ n: 30, produceMs: 5, runMs: 1, consumeMs: 0, batchSize: 8 });
    const slow = await runBatches({ n: 30, produceMs: 5, runMs: 1, consumeMs: 40, batchSize: 8 });
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(mean(fast.sizes)).toBeLessThan(2);
    expect(mean(slow.sizes)).toBeGreaterThan(4);
  });

  it('passes failed samples and markers through without running them', async () => {
    const items: StreamItem[] = [
      sample(0),
      { ...sample(1), failure: { stage: 'decode', status: 'failed', error: new (await import('../../src/errors.js')).ClipstreamError('ERR_DECODE', 'x') } },
      sample(2),
    ];
    const seen: number[] = [];
    const out: StreamItem[] = [];
    await pipeline(
      Readable.from(items),
      batchStage({
        batchSize: 4,
        accept: (x: StreamItem): x is Sample => isLive(x),
        run: async (b) => {
          seen.push(...b.map((s) => s.index));
        },
      }),
      new Writable({
        objectMode: true,
        write(x: StreamItem, _e, cb) {
          out.push(x);
          cb();
        },
      }),
    );
    expect(seen).toEqual([0, 2]);
    expect(out.map((x) => (x as Sample).index)).toEqual([0, 1, 2]);
  });

  it('starts the next batch (what is queued when the model frees) before handing on the finished one', async () => {
    const events: string[] = [];
    let batchNo = 0;
    await pipeline(
      Readable.from(Array.from({ length: 12 }, (_, i) => sample(i))),
      batchStage({
        batchSize: 4,
        accept: (x: StreamItem): x is Sample => isLive(x),
        run: async (batch) => {
          const n = ++batchNo;
          events.push(`run${n}:${batch.map((s) => s.index).join(',')}`);
          await sleep(10);
        },
      }),
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(x: StreamItem, _e, cb) {
          events.push(`out${(x as Sample).index}`);
          setTimeout(cb, 2);
        },
      }),
    );
    const runs = events.filter((e) => e.startsWith('run'));
    // Every sample ran exactly once, in order.
    expect(runs.flatMap((e) => e.split(':')[1]!.split(',').map(Number))).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(events.filter((e) => e.startsWith('out'))).toEqual(Array.from({ length: 12 }, (_, i) => `out${i}`));
    // Batch 2 was started before the first item of batch 1 went downstream.
    expect(events.indexOf(`run2:${runs[1]!.split(':')[1]}`)).toBeLessThan(events.indexOf('out0'));
  });

  it('fails the pipeline with the error of a batch started ahead, after the items before it', async () => {
    const out: number[] = [];
    let n = 0;
    await expect(
      pipeline(
        Readable.from(Array.from({ length: 12 }, (_, i) => sample(i))),
        batchStage({
          batchSize: 4,
          accept: (x: StreamItem): x is Sample => isLive(x),
          run: async () => {
            await sleep(5);
            if (++n === 2) throw new Error('boom in batch 2');
          },
        }),
        new Writable({
          objectMode: true,
          write(x: StreamItem, _e, cb) {
            out.push((x as Sample).index);
            cb();
          },
        }),
      ),
    ).rejects.toThrow('boom in batch 2');
    expect(n).toBe(2);
    expect(out.length).toBeGreaterThan(0);
    expect(out.length).toBeLessThan(12);
  }, 10_000);

  it('rejects a batch size of 0 with a message naming the option', () => {
    expect(() => batchStage({ batchSize: 0, accept: (x: StreamItem): x is Sample => isLive(x), run: async () => {} })).toThrow(
      'Expected integer between 1 and 4096 for options.batchSize but received 0 of type number',
    );
  });
});
