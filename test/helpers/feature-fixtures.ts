/**
 * Deterministic samples for the feature shard tests, shared by the tests and by the
 * child-process writer (so a killed child and the resuming test produce the same bytes).
 */
import { ClipstreamError } from '../../src/errors.js';
import type { FeatureRecord, FeatureSet, Sample, ShardEnd, ShardInfo, Tensor } from '../../src/types.js';

export const SHARD: ShardInfo = { url: '/data/shard-000007.tar', name: 'shard-000007', index: 0 };

/** Values that are exact float32 but awkward in decimal, plus negative zero and tiny ones. */
export function tensor(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = (x / 2 ** 32 - 0.5) * 10 ** ((i % 7) - 3);
  }
  if (n > 1) data[1] = -0;
  return { data, shape };
}

export function featureSets(i: number): { visual: FeatureSet[]; audio: FeatureSet[] } {
  return {
    visual: [
      { extractor_name: 'SLOWFAST_8x8_R50', dataset: 'kinetics-400', feat_array: { layer_0: tensor([16], i * 10 + 1), layer_1: tensor([2, 3], i * 10 + 2) } },
    ],
    audio: [{ extractor_name: 'VGGish', dataset: 'YouTube-8M', feat_array: { layer_0: tensor([3, 8], i * 10 + 3) } }],
  };
}

export function recordFor(i: number): FeatureRecord {
  const { visual, audio } = featureSets(i);
  return {
    filename: `vid${i}_${i * 10}.mp4`,
    id: `vid${i}`,
    segment: [i * 10, i * 10 + 10.5],
    visual_features: visual,
    audio_features: audio,
    __key__: `vid${i}_${i * 10}`,
  };
}

/** Sample `i` of the shard: every 5th (from 3) is skipped as too short, every 7th (from 6) failed. */
export function makeSample(i: number, shard: ShardInfo = SHARD): Sample {
  const r = recordFor(i);
  const sample: Sample = {
    kind: 'sample',
    __key__: `vid${i}_${i * 10}`,
    __url__: shard.url,
    shard,
    index: i,
    files: {},
    entry: { filename: r.filename, id: r.id, segment: r.segment },
  };
  if (i % 5 === 3) {
    sample.failure = { stage: 'decode', status: 'skipped', error: new ClipstreamError('ERR_CLIP_TOO_SHORT', `clip ${r.filename} is 0.4 s, shorter than 1 s`) };
  } else if (i % 7 === 6) {
    sample.failure = { stage: 'decode', status: 'failed', error: new ClipstreamError('ERR_DECODE', `ffmpeg could not decode ${r.filename}`) };
  } else {
    sample.visualFeatures = r.visual_features;
    sample.audioFeatures = r.audio_features;
  }
  return sample;
}

export function shardEnd(samples: number, shard: ShardInfo = SHARD, error?: ClipstreamError): ShardEnd {
  return error ? { kind: 'shard-end', shard, samples, error } : { kind: 'shard-end', shard, samples };
}

/** A fixed permutation of 0..n-1, so "arrives out of order" is reproducible. */
export function shuffled(n: number, seed = 7): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let x = seed;
  for (let i = n - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
