/**
 * Every stage of the extract job also works alone in a user's `stream/promises.pipeline`:
 * composed by hand (the reader, the entry join, decode, both models, the writer), the stages
 * write the feature shard the job writes, byte for byte.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openExtractModels, resolveExtractOptions } from '../../src/extract/options.js';
import { extractFeatures } from '../../src/infer/extractor.js';
import { extract } from '../../src/jobs/extract.js';
import { decodeClips } from '../../src/media/decode-stage.js';
import { joinEntries } from '../../src/shards/entry-join.js';
import { readTarShards } from '../../src/shards/tar-reader.js';
import { writeFeatureShards } from '../../src/sinks/feature-shard.js';
import { checkStages } from '../../src/stage/index.js';

const TAR = 'fixtures/shards/shard-000000.tar';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extract-compose-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the extract stages composed by hand in stream/promises.pipeline', () => {
  it('write the feature shard the job writes, byte for byte', async () => {
    const common = { tarPath: TAR, parallelDecoders: 1, intraOpThreads: 1, device: 'cpu', onWarning: () => {} };
    const job = await extract({ ...common, outputDir: join(dir, 'job') });
    expect(job.clipsWritten).toBeGreaterThan(0);

    const o = resolveExtractOptions({ ...common, outputDir: join(dir, 'hand') });
    const { visual, audio, close } = await openExtractModels(o);
    try {
      const writer = writeFeatureShards({ outputDir: join(dir, 'hand'), format: o.format, onWarning: () => {} });
      const stages = checkStages([
        readTarShards([TAR]),
        joinEntries({ onWarning: () => {} }),
        decodeClips({ ...o.decodeOptions, concurrency: 1, video: visual !== null, audio: audio !== null }),
        extractFeatures(visual!, { batchSize: o.batchSize }),
        extractFeatures(audio!, { batchSize: o.batchSize }),
        writer,
      ]);
      await pipeline(stages);
      expect(writer.summaries.map((s) => s.written)).toEqual([job.clipsWritten]);
    } finally {
      await close();
    }
    const name = 'shard-000000.msgpack';
    expect(Buffer.compare(await readFile(join(dir, 'hand', name)), await readFile(join(dir, 'job', name)))).toBe(0);
  });
});
