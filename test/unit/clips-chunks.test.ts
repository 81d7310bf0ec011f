/**
 * Issue 10, item 9 (clips): a chunk decodes from the keyframe before its first clip, not
 * from frame 0, and the clips per ffmpeg follow the source's size. Exactness of the seeking
 * route is checked on real files in clips-frames and clips-sync (a chunk per clip).
 */
import { describe, expect, it } from 'vitest';
import { fixedStride } from '../../src/clips/plan.js';
import { clipsPerChunk, onePassArgs } from '../../src/clips/transcode.js';
import type { VideoInfo } from '../../src/media/probe.js';

const info: VideoInfo = {
  path: '/v/long.mp4',
  durationS: 600,
  fps: 25,
  numFrames: 15_000,
  width: 640,
  height: 360,
  videoCodec: 'h264',
  pixFmt: 'yuv420p',
  bitRate: 0,
  audioCodec: null,
};
// Real times are what the route uses; a 0.5 s start (video starting after audio) shows it is not n / fps.
const times = Float64Array.from({ length: 15_000 }, (_, i) => 0.5 + i / 25);
const o = { encoder: 'libx264' as const, threads: 1, crf: 23, frameTimes: { times, endS: 0.5 + 600 } };

describe('one-pass chunks seek to their first clip', () => {
  const clips = fixedStride('long', { fps: 25, numFrames: 15_000 }, { clipLenS: 4, clipStrideS: 60 }).clips;
  const jobs = (list: typeof clips) => list.map((clip, i) => ({ clip, tmp: `/o/${i}.mp4` }));

  it('a chunk starting at frame 3000 (2 min) seeks to the keyframe before it and keeps frames by their raw times', () => {
    const args = onePassArgs(info, jobs(clips.slice(2, 4)), o, true);
    // -ss counts from the file's start, at or before the first frame (0.5 s): 120.48 - 0.5.
    expect(args.slice(args.indexOf('-copyts'), args.indexOf('-i'))).toEqual(['-copyts', '-noaccurate_seek', '-ss', '119.980000']);
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    // Clip 3000-3100: from the midpoint of frames 2999 and 3000 to that of 3099 and 3100; clip 4500-4600 likewise.
    expect(graph).toContain('[s0]trim=start=120.480000:end=124.480000,setpts=PTS-STARTPTS,');
    expect(graph).toContain('[s1]trim=start=180.480000:end=184.480000,setpts=PTS-STARTPTS,');
  });

  it('the first chunk and the fallback route decode from frame 0 and keep frames by index', () => {
    for (const args of [onePassArgs(info, jobs(clips.slice(0, 2)), o, true), onePassArgs(info, jobs(clips.slice(2, 4)), o, false)]) {
      expect(args).not.toContain('-ss');
      expect(args[args.indexOf('-filter_complex') + 1]).toMatch(/trim=start_frame=\d+:end_frame=\d+/);
    }
  });
});

it.each([
  [640, 360, 32],
  [320, 240, 32],
  [1280, 720, 8],
  [1920, 1080, 3],
  [3840, 2160, 1],
  [0, 0, 32],
])('clipsPerChunk(%i, %i) = %i: encoders of one pass hold about as many pixels as 32 at 640x360', (w, h, n) => {
  expect(clipsPerChunk(w, h)).toBe(n);
});
