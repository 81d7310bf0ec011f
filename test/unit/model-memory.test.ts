/**
 * Without ONNX Runtime's CPU arena (`memoryArena: false`, what extract's visual model uses) memory
 * is given back after a run: a model that ran one big batch holds no more memory once it runs small
 * ones. With the arena (ORT's default) the big batch's buffers stay for the life of the session,
 * and extract's RSS grew with every new batch shape.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRunner } from '../../src/infer/model-runner.js';
import { GraphBuilder, int, ints } from '../../src/models/onnx-graph.js';

const ROW = 262144; // floats per item: 1 MiB in, 16 MiB once widened
const rssMB = () => process.memoryUsage.rss() / 2 ** 20;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'model-memory-'));
  // [B, ROW] → 16 copies side by side [B, 16·ROW] → Relu → mean per row [B, 1]: 16 MiB of intermediates per item.
  const g = new GraphBuilder('wide');
  g.addInput('x', ['batch', ROW]);
  g.addNode('Concat', Array<string>(16).fill('x'), 'wide', { axis: int(1) });
  g.addNode('Relu', ['wide'], 'positive');
  g.addNode('ReduceMean', ['positive'], 'mean', { axes: ints([1]), keepdims: int(1) });
  g.addOutput('mean', ['batch', 1]);
  await writeFile(join(dir, 'wide.onnx'), g.toBuffer());
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ModelRunner memory', () => {
  for (const thread of ['worker', 'main'] as const) {
    it(`memoryArena: false gives a big batch's buffers back after the run (${thread} thread)`, async () => {
      const m = await ModelRunner.open(join(dir, 'wide.onnx'), { device: 'cpu', thread, intraOpThreads: 1, memoryArena: false });
      const input = new Float32Array(12 * ROW);
      const run = async (n: number) => {
        for (let i = 0; i < n * ROW; i++) input[i] = ((i % 7) - 3) / 4;
        const { outputs } = await m.run({ x: { data: input.slice(0, n * ROW), dims: [n, ROW] } }, ['mean']);
        return outputs.mean!.data;
      };
      try {
        await run(1);
        const before = rssMB();
        // The big batch needs about 12 · 16 MiB · 2 = 384 MiB while it runs.
        const big = await run(12);
        // Independent truth: every row is 16 copies of the pattern −3/4..3/4 in steps of 1/4, so the mean of
        // its positive part is (1/4 + 2/4 + 3/4) / 7 over a whole number of periods, near enough for a 2^18 row.
        for (const v of big) expect(v).toBeCloseTo(1.5 / 7, 3);
        for (const n of [1, 2, 3, 1]) await run(n);
        const grown = rssMB() - before;
        expect(grown, `RSS grew ${grown.toFixed(0)} MB after the batch of 12 (the arena kept its buffers)`).toBeLessThan(150);
      } finally {
        await m.close();
      }
    });
  }
});
