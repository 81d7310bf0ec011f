import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import { detectShots, shotsStage, type ShotItem } from '../../src/clips/shots.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { pipeline } from '../../src/stage/index.js';

// Truth: the recipe. Four lavfi sources of 2 s at 25 fps joined: hard cuts at frames 50 and 100;
// the third fades out over its last 0.6 s and the fourth fades in over its first 0.6 s (one fade
// around frame 150); at 320x180 with a 4:3 SAR and a 90° rotation tag on one copy.
const tmp = mkdtempSync(join(tmpdir(), 'shots-jobs-'));
const video = join(tmp, 'cuts.mp4');
const rotated = join(tmp, 'rotated.mp4');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  const src = (s: string) => ['-f', 'lavfi', '-i', `${s}=size=320x180:rate=25:duration=2`];
  execFileSync(ffmpegPath(), [
    '-v',
    'error',
    '-y',
    ...src('testsrc2'),
    '-f',
    'lavfi',
    '-i',
    'mandelbrot=size=320x180:rate=25',
    ...src('smptebars'),
    ...src('rgbtestsrc'),
    '-filter_complex',
    '[1]trim=duration=2,setpts=PTS-STARTPTS[b];[2]fade=t=out:st=1.4:d=0.6[c];[3]fade=t=in:st=0:d=0.6[d];[0][b][c][d]concat=n=4:v=1:a=0,format=yuv420p,setsar=4/3',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '25',
    video,
  ]);
  execFileSync(ffmpegPath(), ['-v', 'error', '-y', '-i', video, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
}, 60_000);

describe('detectShots on an ffmpeg-made video', () => {
  it('finds the two hard cuts on their frames and the fade as one boundary', async () => {
    const r = await detectShots(video);
    expect(r.frames).toBe(200);
    expect(r.fps).toBe(25);
    const cuts = r.boundaries.filter((b) => b.kind === 'cut').map((b) => b.frame);
    expect(cuts).toEqual([50, 100]);
    const fades = r.boundaries.filter((b) => b.kind === 'fade').map((b) => b.frame);
    expect(fades.length).toBe(1);
    expect(fades[0]).toBeGreaterThanOrEqual(135); // the fade out starts at 1.4 s into the third source
    expect(fades[0]).toBeLessThan(165); // the fade in ends 0.6 s into the fourth
    expect(r.shots.map((s) => [s.start_frame, s.end_frame, s.kind])).toEqual([
      [0, 50, 'start'],
      [50, 100, 'cut'],
      [100, fades[0], 'cut'],
      [fades[0], 200, 'fade'],
    ]);
    expect(r.shots[1]!.start_s).toBe(2);
    expect(r.shots[3]!.end_s).toBe(8);
    // Without fades, the content detectors find the cuts; the fade is no boundary, or one inside it (the
    // two darkest frames meet at 150, where the hue of near-black pixels jumps).
    for (const detector of ['content', 'adaptive'] as const) {
      const frames = (await detectShots(video, { detector, fades: false })).boundaries.map((b) => b.frame);
      expect(frames.slice(0, 2)).toEqual([50, 100]);
      for (const f of frames.slice(2)) expect(f >= 135 && f < 165).toBe(true);
    }
  }, 60_000);

  it('decodes in display geometry (SAR, rotation): frames ~160 px wide in the displayed aspect', async () => {
    const sizes: { width: number; height: number }[] = [];
    const spy = {
      name: 'spy',
      frameSize: (s: { width: number; height: number }) => {
        sizes.push(s);
        return { width: 160, height: 2 * Math.round((160 * s.height) / s.width / 2) };
      },
      push: () => {},
      finish: () => [],
    };
    await detectShots(rotated, { detector: spy });
    expect(sizes).toEqual([{ width: 180, height: 427 }]); // 320x180 at SAR 4:3 is 427x180 displayed; turned a quarter
    const r = await detectShots(rotated);
    expect(r.boundaries.filter((b) => b.kind === 'cut').map((b) => b.frame)).toEqual([50, 100]);
  }, 60_000);

  it('refuses transnetv2 without its model, naming the option and the command that builds it', async () => {
    const err = await detectShots(video, { detector: 'transnetv2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipstreamError);
    expect((err as Error).message).toMatch(/shotModel/);
    expect((err as Error).message).toMatch(/models build --arch=transnetv2/);
    const missing = await detectShots(video, { detector: 'transnetv2', model: '/nonexistent/transnetv2.onnx' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ClipstreamError);
    expect((missing as Error).message).toMatch(/\/nonexistent\/transnetv2\.onnx/);
  });

  it('runs as a stage: one failed video fails its item only', async () => {
    const out: ShotItem[] = [];
    await pipeline(
      Readable.from([
        { key: 'good', path: video },
        { key: 'missing', path: join(tmp, 'none.mp4') },
      ]),
      shotsStage(),
      async (items: AsyncIterable<ShotItem & { failure?: { error: Error } }>) => {
        for await (const it of items) out.push(it);
      },
    );
    expect(out[0]!.shots!.boundaries.filter((b) => b.kind === 'cut').map((b) => b.frame)).toEqual([50, 100]);
    expect((out[1] as { failure?: { error: Error } }).failure?.error.message).toMatch(/none\.mp4/);
  }, 60_000);
});
