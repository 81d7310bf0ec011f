/**
 * Issue 10 (clips part): the clips job is a composition of stage files, each usable alone
 * with `stream/promises.pipeline` — here an ETL script that probes and plans first, looks,
 * and then cuts only what it wants.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cutStage } from '../../src/clips/cut.js';
import { describeStage } from '../../src/clips/describe.js';
import { resolveEncoder } from '../../src/media/encoders.js';
import { videoItem, type VideoContext, type VideoItem } from '../../src/clips/item.js';
import { obtainStage } from '../../src/clips/obtain.js';
import { planStage } from '../../src/clips/plan-stage.js';
import { probeStage } from '../../src/clips/probe-stage.js';
import { readSources } from '../../src/clips/sources.js';
import { frameHashes, makeSource } from '../helpers/clip-sources.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-stages-'));
  await makeSource(join(dir, 'a.mp4'), { seconds: 4, fps: 10, audioHz: 440 });
  await writeFile(join(dir, 'bad.mp4'), 'not a video');
  await writeFile(join(dir, 'sources.csv'), 'video_id,path\na,a.mp4\nbad,bad.mp4\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('obtain -> probe -> plan, then cut -> describe, as separate pipelines', async () => {
  const ctx: VideoContext = {
    clipsDir: join(dir, 'out', 'clips'),
    downloadsDir: join(dir, 'out', 'downloads'),
    workDir: join(dir, 'out', '.work'),
    plan: { kind: 'stride', stride: { clipLenS: 1.5, clipStrideS: 1.5 } },
    encoder: await resolveEncoder('libx264'),
    transcode: { threads: 1, crf: 0, preset: 'ultrafast' },
    useInputBitRate: false,
    ignoreAudio: false,
    download: {},
  };
  const planned: VideoItem[] = [];
  await pipeline(
    Readable.from((await readSources(join(dir, 'sources.csv'))).map(videoItem)),
    obtainStage(ctx),
    probeStage(ctx),
    planStage(ctx),
    async (items: AsyncIterable<VideoItem>) => {
      for await (const item of items) planned.push(item);
    },
  );
  expect(planned.map((i) => [i.source.videoId, i.row.failed, i.clips?.map((c) => c.clipId)])).toEqual([
    ['a', false, ['a_0_15', 'a_15_30', 'a_30_40']],
    ['bad', true, undefined],
  ]);
  expect(planned[1]!.row.error).toMatch(/^video bad: cannot probe .*bad\.mp4: /);
  // The one failure mark of the stage kit: the stage that gave up, and the error the row shows.
  expect([planned[0]!.failure, planned[1]!.failure?.stage, planned[1]!.failure?.status]).toEqual([undefined, 'probe', 'failed']);
  expect(planned[1]!.row.error).toContain(planned[1]!.failure!.error.message);
  expect(planned[0]!.timing!.numFrames).toBe(40);

  // Keep the middle clip only, then cut and describe.
  planned[0]!.clips = planned[0]!.clips!.slice(1, 2);
  const done: VideoItem[] = [];
  await pipeline(Readable.from(planned), cutStage(ctx), describeStage(ctx), async (items: AsyncIterable<VideoItem>) => {
    for await (const item of items) done.push(item);
  });
  expect(done[0]!.records.map((r) => [r.clip_id, r.num_frames, r.audio_codec])).toEqual([['a_15_30', 15, 'aac']]);
  expect(done[0]!.made).toBe(1);
  expect(await frameHashes(join(ctx.clipsDir, 'a_15_30.mp4'))).toEqual((await frameHashes(join(dir, 'a.mp4'))).slice(15, 30));
  expect(done[1]!.records).toEqual([]);
});
