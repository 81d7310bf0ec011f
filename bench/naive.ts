/**
 * The "obvious script" baseline: what a one-off script usually does. For every clip, one
 * after the other: copy it out of the tar to a temp file, run one ffmpeg (default threads)
 * that writes frames and audio to temp files, read them back, pick 32 frames, normalise into
 * a fresh array, run each model with batch size 1, keep the result in memory, and write all
 * results at the end. Same models, same filters, same features as `extract`.
 */
import { execFile } from 'node:child_process';
import { readModelInfo } from '../src/models/info.js';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import tar from 'tar-stream';
import { pack } from 'msgpackr';
import { cpuSeconds } from './measure.js';
import { vggishExamples } from '../src/features/vggish.js';
import { audioFilter, videoFilter } from '../src/media/decode.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { linspaceIndices } from '../src/media/sampling.js';

const run = promisify(execFile);

export async function naiveExtract(
  shards: string[],
  workDir: string,
  visualModel: string,
  audioModel: string,
): Promise<{ seconds: number; cpuSeconds: number | null; clips: number }> {
  const c0 = cpuSeconds();
  const t0 = performance.now();
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const visual = await ort.InferenceSession.create(visualModel);
  const visualUint8 = (await readModelInfo(visualModel)).inputs[0]?.type === 'uint8';
  const audio = await ort.InferenceSession.create(audioModel);
  const results: unknown[] = [];
  const size = 256;
  for (const shard of shards) {
    const ex = tar.extract();
    createReadStream(shard).pipe(ex);
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const clip = join(workDir, entry.header.name);
      await writeFile(clip, Buffer.concat(chunks));
      const rgb = `${clip}.rgb`;
      const pcm = `${clip}.f32`;
      await run(ffmpegPath(), [
        '-v',
        'error',
        '-y',
        '-t',
        '10',
        '-i',
        clip,
        '-map',
        '0:v:0',
        '-vf',
        videoFilter(size, 'top-left'),
        '-pix_fmt',
        'rgb24',
        '-f',
        'rawvideo',
        rgb,
        '-map',
        '0:a:0',
        '-af',
        audioFilter(16000),
        '-f',
        'f32le',
        pcm,
      ]);
      const frames = await readFile(rgb);
      const samples = await readFile(pcm);
      const frameBytes = size * size * 3;
      const picks = linspaceIndices(Math.floor(frames.length / frameBytes), 32);
      let visualInput: ort.Tensor;
      if (visualUint8) {
        // The model normalises in its graph: hand it the picked frames as they are.
        const bytes = new Uint8Array(32 * frameBytes);
        picks.forEach((src, t) => bytes.set(frames.subarray(src * frameBytes, (src + 1) * frameBytes), t * frameBytes));
        visualInput = new ort.Tensor('uint8', bytes, [1, 32, size, size, 3]);
      } else {
        const input = new Float32Array(3 * 32 * size * size);
        picks.forEach((src, t) => {
          for (let p = 0; p < size * size; p++) {
            for (let c = 0; c < 3; c++) input[c * 32 * size * size + t * size * size + p] = (frames[src * frameBytes + p * 3 + c]! / 255 - 0.45) / 0.225;
          }
        });
        visualInput = new ort.Tensor('float32', input, [1, 3, 32, size, size]);
      }
      const v = await visual.run({ [visual.inputNames[0]!]: visualInput });
      const pcmArray = new Float32Array(samples.buffer.slice(samples.byteOffset, samples.byteOffset + Math.floor(samples.length / 4) * 4));
      const examples = vggishExamples(pcmArray, 16000);
      // Batch size 1: one clip per session.run (its ten 0.96 s examples together).
      const a = await audio.run({ [audio.inputNames[0]!]: new ort.Tensor('float32', examples.data, examples.shape) });
      const audioRows = audio.outputNames.map((n) => a[n]!.data as Float32Array);
      results.push({
        filename: entry.header.name,
        visual: visual.outputNames.map((n) => Array.from(v[n]!.data as Float32Array)),
        audio: audioRows.map((x) => Array.from(x)),
      });
      await rm(clip);
      await rm(rgb);
      await rm(pcm);
    }
  }
  await writeFile(join(workDir, 'features.msgpack'), pack(results));
  await visual.release();
  await audio.release();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds();
  await rm(workDir, { recursive: true, force: true });
  return { seconds, cpuSeconds: c0 === null || c1 === null ? null : c1 - c0, clips: results.length };
}
