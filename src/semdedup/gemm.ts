/**
 * The one heavy product of semantic dedup, `A · Bᵀ` (rows of A against rows of B: clips against
 * centroids, clips against clips of one cluster), by ONNX Runtime's Gemm (a one-node graph built
 * here, run on the CPU with MLAS) or by plain JavaScript loops. The bench (bench/semdedup.ts)
 * measures both side by side; ONNX Runtime is the default because it is the faster one there.
 */
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { GraphBuilder, int } from '../models/onnx-graph.js';

export type GemmEngine = 'onnx' | 'js';

/** `abt(a, m, b, n, d)`: the m×n product of a (m×d) and the transpose of b (n×d), row-major float32. */
export interface Gemm {
  readonly engine: GemmEngine;
  abt(a: Float32Array, m: number, b: Float32Array, n: number, d: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Opens the engine; `threads` for ONNX Runtime's intra-op pool (default: all cores). */
export async function openGemm(engine: GemmEngine = 'onnx', threads?: number): Promise<Gemm> {
  if (engine === 'js') return jsGemm;
  const g = new GraphBuilder('semdedup_abt');
  g.addInput('a', ['m', 'd']);
  g.addInput('b', ['n', 'd']);
  g.addNode('Gemm', ['a', 'b'], ['y'], { transB: int(1) });
  g.addOutput('y', ['m', 'n']);
  const session = await ort.InferenceSession.create(g.toBuffer(), {
    intraOpNumThreads: threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // No spinning between calls: on a shared machine the pool's spin-waits cost more than they save.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  return {
    engine: 'onnx',
    async abt(a, m, b, n, d) {
      // A call costs tens of microseconds: small products (a k-means++ step on few rows) are faster in loops.
      if (m * n * d < SMALL_PRODUCT) return jsGemm.abt(a, m, b, n, d);
      const out = await session.run({
        a: new ort.Tensor('float32', a.subarray(0, m * d), [m, d]),
        b: new ort.Tensor('float32', b.subarray(0, n * d), [n, d]),
      });
      return out.y!.data as Float32Array;
    },
    close: () => session.release(),
  };
}

/** Products of fewer multiply-adds than this run in JavaScript even on the onnx engine. */
const SMALL_PRODUCT = 1 << 18;

const jsGemm: Gemm = {
  engine: 'js',
  async abt(a, m, b, n, d) {
    const out = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      const ao = i * d;
      for (let j = 0; j < n; j++) {
        const bo = j * d;
        let s = 0;
        for (let k = 0; k < d; k++) s += a[ao + k]! * b[bo + k]!;
        out[i * n + j] = s;
      }
    }
    return out;
  },
  close: async () => {},
};
