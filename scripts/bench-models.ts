/**
 * CPU throughput of a model at a few batch sizes (one warm-up run, then timed runs):
 *   npx tsx scripts/bench-models.ts model.onnx [batch sizes, default 1,8,32] [threads, default 2]
 * Prints items/s per batch size (clips for SlowFast, examples for VGGish).
 */
import * as ort from 'onnxruntime-node';

const [modelPath, batches = '1,8,32', threads = '2'] = process.argv.slice(2);
if (!modelPath) throw new Error('usage: bench-models.ts model.onnx [1,8,32] [threads]');
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: Number(threads), interOpNumThreads: 1 });
const meta = await import('../src/models/info.js').then((m) => m.readModelInfo(modelPath));
const dims = meta.inputs[0].dims.slice(1) as number[];
for (const b of batches.split(',').map(Number)) {
  const n = b * dims.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.0137);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [b, ...dims]) };
  let t = performance.now();
  await session.run(feeds);
  const warm = (performance.now() - t) / 1000;
  // Enough timed runs for ~5 s, at least one.
  const runs = Math.max(1, Math.min(5, Math.floor(5 / warm)));
  t = performance.now();
  for (let r = 0; r < runs; r++) await session.run(feeds);
  const s = (performance.now() - t) / 1000 / runs;
  const rss = process.memoryUsage().rss / 2 ** 30;
  process.stdout.write(
    `${meta.extractorName} batch ${b}: ${(b / s).toFixed(2)} items/s (${s.toFixed(2)} s/run, ${runs} run(s), warm-up ${warm.toFixed(2)} s, rss ${rss.toFixed(1)} GiB)\n`,
  );
}
