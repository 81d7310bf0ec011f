/**
 * faces with the stage kit's one failure mark: a clip the encoder cannot make is passed on
 * marked (`clip.failure`, no separate item kind), the later clips of its source are marked
 * skipped without an encode, and the record sink records the source as failed.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clipKeyOf } from '../../src/faces/crop.js';
import { encodeStage } from '../../src/faces/encode.js';
import type { ClipItem, FaceItem, FaceSource } from '../../src/faces/items.js';
import { facesRecordSink, type RecordState } from '../../src/faces/record.js';
import { probeSource } from '../../src/faces/source-info.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';

const VIDEO = 'fixtures/faces/face_move.mp4';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-failure-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('a clip that cannot be made carries clip.failure; later clips of its source are skipped; the source is recorded failed', async () => {
  const ffmpeg = ffmpegPath();
  const source: FaceSource = { index: 0, path: VIDEO, rel: 'face_move.mp4', key: 'face_move', info: await probeSource(VIDEO, ffmpeg) };
  let secondRead = false;
  const clip = (track: number, frames: AsyncIterable<Uint8Array>): ClipItem => ({
    kind: 'clip',
    source,
    track,
    clipKey: clipKeyOf(source.key, track),
    detections: [{ frame: 0, sample: 0, time: 0, x1: 0, y1: 0, x2: 16, y2: 16, score: 1 }],
    startTime: 0,
    crop: { x: 0, y: 0, size: 16, inner: { x: 0, y: 0, width: 16, height: 16 }, pad: { left: 0, top: 0, right: 0, bottom: 0 } },
    size: 16,
    numFrames: 2,
    frames,
  });
  const items: FaceItem[] = [
    clip(
      0,
      (async function* () {
        yield* [];
        throw new Error('frames lost');
      })(),
    ),
    clip(
      1,
      (async function* () {
        secondRead = true;
        yield new Uint8Array(16 * 16 * 3);
      })(),
    ),
    { kind: 'source-end', source, samples: 2 },
  ];
  const seen: FaceItem[] = [];
  const tap = new Writable({
    objectMode: true,
    write(item: FaceItem, _e, cb) {
      seen.push(item);
      cb();
    },
  });
  await pipeline(
    Readable.from(items),
    encodeStage({ ffmpeg, outputDir: dir, audio: 'none', imageFormat: 'jpeg', jpegQuality: 95, scorers: [], scoreFrames: 2 }),
    tap,
  );
  expect(seen.map((i) => i.kind)).toEqual(['clip', 'clip', 'source-end']);
  const [first, second] = seen as ClipItem[];
  expect([first!.failure?.stage, first!.failure?.status, first!.failure?.error.message]).toEqual(['encode', 'failed', 'frames lost']);
  expect([second!.failure?.status, second!.failure?.error]).toEqual(['skipped', first!.failure?.error]);
  expect(secondRead).toBe(false);

  const state: RecordState = { videos: {}, rows: [], logs: [] };
  const lost: number[] = [];
  await pipeline(
    Readable.from(seen),
    facesRecordSink(state, { outputDir: dir, sources: [source], onWarning: () => {}, onSource: (_log, _clips, n) => lost.push(n) }),
  );
  expect(state.logs.map((l) => [l.status, l.error])).toEqual([['failed', expect.stringContaining('frames lost')]]);
  expect(lost).toEqual([1]);
  expect(await readdir(join(dir, 'clips')).catch(() => [])).toEqual([]);
});
