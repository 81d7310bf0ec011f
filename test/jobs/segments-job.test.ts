import { chmod, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segments, type SegmentsReport } from '../../src/jobs/segments.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { decodeRange } from '../../src/segments/decode-range.js';
import { probeFrameTimeline } from '../../src/media/probe.js';
import { planSegments } from '../../src/segments/plan.js';
import { MATTE_FIXTURE, matteIoU, trueMask } from '../../fixtures/matte.js';
import { decodeAll, decodeAudio, onsets, probeCounted, readPng } from '../helpers/segments.js';

const FIXTURE = 'fixtures/segments/matte_move.mp4';
const { width: W, height: H, fps: FPS, frames: N } = MATTE_FIXTURE;
let dir: string;
const quiet = { onWarning: () => {} };

const meanBatch: Record<string, number> = {};

async function alphaRun(name: string, segmentSeconds: number, state: string, parallelSegments = 2): Promise<Uint8Array[]> {
  const out = join(dir, name);
  const r = await segments({ inputs: [FIXTURE], outputs: [out], segmentSeconds, state, outputType: 'alpha', format: 'png', parallelSegments, ...quiet });
  expect(r.videos[0]!.status).toBe('done');
  meanBatch[name] = r.meanBatch;
  const files = (await readdir(out)).filter((f) => f.endsWith('.png')).sort();
  expect(files).toHaveLength(N);
  return Promise.all(files.map(async (f) => new Uint8Array(await readFile(join(out, f)))));
}

/** Mean |a − b| of two gray PNG frames, in alpha units (0–1). */
async function meanDiff(a: Uint8Array, b: Uint8Array): Promise<number> {
  const [x, y] = await Promise.all([readPng(Buffer.from(a)), readPng(Buffer.from(b))]);
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += Math.abs(x.data[i]! - y.data[i]!);
  return s / x.data.length / 255;
}

const runs: Record<string, Uint8Array[]> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-'));
  runs.whole = await alphaRun('whole', 100, 'carry');
  runs.carry = await alphaRun('carry', 2, 'carry');
  runs.reset = await alphaRun('reset', 2, 'reset');
  runs.warmup = await alphaRun('warmup', 2, 'warmup:5');
  runs.reset1 = await alphaRun('reset1', 1, 'reset', 1);
  runs.reset3 = await alphaRun('reset3', 1, 'reset', 3);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('segments job on the fixture', () => {
  it('plans frame ranges on the real timestamps and decodes each range exactly (counts and first frames)', async () => {
    const t = await probeFrameTimeline(FIXTURE);
    const counted = await probeCounted(FIXTURE);
    expect(t.pts.length).toBe(Number(counted.video.nb_read_frames));
    const segs = planSegments(t, 2);
    expect(segs.map((s) => [s.startFrame, s.endFrame])).toEqual([
      [0, 50],
      [50, 100],
      [100, 150],
    ]);
    // Keyframes every 30 frames: segments 1 and 2 seek to frames 30 and 90, then skip to their start.
    expect(segs.map((s) => s.keyframe)).toEqual([0, 30, 90]);
    const all = await decodeAll(FIXTURE, W, H);
    for (const s of segs) {
      const got: Uint8Array[] = [];
      for await (const f of decodeRange(FIXTURE, t, s, s.keyframe)) got.push(f);
      expect(got).toHaveLength(s.endFrame - s.startFrame);
      expect(Buffer.compare(got[0]!, all[s.startFrame]!)).toBe(0);
      expect(got.every((f, i) => Buffer.compare(f, all[s.startFrame + i]!) === 0)).toBe(true);
    }
  });

  it('carry gives the same frames as one unsegmented pass (PNG bytes); reset does not', () => {
    expect(runs.carry!.every((f, i) => Buffer.compare(f, runs.whole![i]!) === 0)).toBe(true);
    expect(Buffer.compare(runs.reset![50]!, runs.whole![50]!)).not.toBe(0);
    // Before the first boundary every mode is the same pass.
    expect(Buffer.compare(runs.reset![49]!, runs.whole![49]!)).toBe(0);
  });

  it('segments batched together give the same frames as one at a time', () => {
    expect(meanBatch.reset1).toBe(1);
    // How full batches get depends on timing; that some frames shared a batch is enough here.
    expect(meanBatch.reset3).toBeGreaterThan(1);
    expect(runs.reset3!.every((f, i) => Buffer.compare(f, runs.reset1![i]!) === 0)).toBe(true);
  });

  it('measures the boundary jump of each state mode', async () => {
    const boundaries = [50, 100];
    const jump = async (frames: Uint8Array[]) =>
      (await Promise.all(boundaries.map((b) => meanDiff(frames[b]!, frames[b - 1]!)))).reduce((a, b) => a + b, 0) / boundaries.length;
    const off = async (frames: Uint8Array[]) =>
      (await Promise.all(boundaries.map((b) => meanDiff(frames[b]!, runs.whole![b]!)))).reduce((a, b) => a + b, 0) / boundaries.length;
    const figures: Record<string, { jump: number; vsWhole: number }> = {};
    for (const m of ['whole', 'carry', 'warmup', 'reset']) figures[m] = { jump: await jump(runs[m]!), vsWhole: await off(runs[m]!) };
    process.stdout.write(`segments boundary jump (mean |alpha(first) - alpha(last)|, and first frame vs unsegmented): ${JSON.stringify(figures)}\n`);
    expect(figures.carry!.vsWhole).toBe(0);
    expect(figures.reset!.vsWhole).toBeGreaterThan(0);
    expect(figures.warmup!.vsWhole).toBeLessThan(figures.reset!.vsWhole);
  });

  it('finds the known mask: IoU ≥ 0.9 on every frame that shows the disc', async () => {
    let worst = 1;
    for (let k = 0; k < N; k++) {
      if (MATTE_FIXTURE.flashFrames.includes(k)) continue;
      const png = await readPng(Buffer.from(runs.carry![k]!));
      const iou = matteIoU(png.data, trueMask(MATTE_FIXTURE, k / FPS));
      worst = Math.min(worst, iou);
    }
    expect(worst).toBeGreaterThanOrEqual(0.9);
  });
});

describe('segments job: mp4, audio, failures', () => {
  let fgOut: string;
  let fg: SegmentsReport;
  beforeAll(async () => {
    fgOut = join(dir, 'fg', 'matted.mp4');
    fg = await segments({ inputs: [FIXTURE], outputs: [fgOut], segmentSeconds: 2, outputType: 'foreground', ...quiet });
  });

  it('joins the segments and muxes the audio back in sync (length, offset, a beep at each flash)', async () => {
    expect(fg.videos[0]!.status).toBe('done');
    const src = await probeCounted(FIXTURE);
    const out = await probeCounted(fgOut);
    expect(Number(out.video.nb_read_frames)).toBe(N);
    expect(Number(out.audio!.duration)).toBeCloseTo(Number(src.audio!.duration), 3);
    expect(Number(out.audio!.start_time) - Number(out.video.start_time)).toBeCloseTo(Number(src.audio!.start_time) - Number(src.video.start_time), 3);
    // Flash frames (white) in the output video and beeps in the output audio line up.
    const frames = await decodeAll(fgOut, W, H);
    const flashes = frames
      .map((f, k) => [k, f.reduce((a, b) => a + b, 0) / f.length] as const)
      .filter(([, m]) => m > 200)
      .map(([k]) => k / FPS);
    expect(flashes).toEqual(MATTE_FIXTURE.flashFrames.map((k) => k / FPS));
    const beeps = onsets(await decodeAudio(fgOut), 8000);
    expect(beeps).toHaveLength(flashes.length);
    beeps.forEach((b, i) => expect(Math.abs(b - flashes[i]!)).toBeLessThan(0.5 / FPS));
  });

  it('a corrupt segment file is found by its checksum and redone alone; the output is the same', async () => {
    const before = await readFile(fgOut);
    const work = fg.videos[0]!.workDir;
    await truncate(join(work, 'seg_000001.mp4'), 100);
    const again = await segments({ inputs: [FIXTURE], outputs: [fgOut], segmentSeconds: 2, outputType: 'foreground', ...quiet });
    expect(again.videos[0]).toMatchObject({ status: 'done', segmentsRun: 1, segmentsReused: 2 });
    expect(Buffer.compare(await readFile(fgOut), before)).toBe(0);
  });

  it('a failing segment is recorded with its reason, the others go on, and a rerun retries it', async () => {
    // A real ffmpeg behind a wrapper that fails the decode of segment 1 while a marker file exists.
    const marker = join(dir, 'fail-marker');
    const wrapper = join(dir, 'ffmpeg-wrapper.sh');
    await writeFile(
      wrapper,
      `#!/bin/sh\ncase "$*" in *"gte(t\\\\,1.99"*) if [ -f '${marker}' ]; then echo 'injected failure for the test' >&2; exit 1; fi;; esac\nexec '${ffmpegPath()}' "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    await writeFile(marker, '');
    const saved = process.env.FFMPEG_PATH;
    const out = join(dir, 'fail', 'reset.mp4');
    const opts = { inputs: [FIXTURE], outputs: [out], segmentSeconds: 2, state: 'reset', ...quiet };
    try {
      process.env.FFMPEG_PATH = wrapper;
      const first = await segments(opts);
      const v = first.videos[0]!;
      expect(v.status).toBe('incomplete');
      expect(v.failed.map((f) => f.index)).toEqual([1]);
      expect(v.failed[0]!.error).toMatch(/matte_move\.mp4: decoding frames 50-99 .*injected failure/);
      const rec = JSON.parse(await readFile(join(v.workDir, 'records', 'seg_000001.json'), 'utf8'));
      expect(rec).toMatchObject({ status: 'failed', attempts: 1 });
      expect(JSON.parse(await readFile(join(v.workDir, 'processed.json'), 'utf8'))).toEqual({
        'seg_000000.mp4': true,
        'seg_000001.mp4': false,
        'seg_000002.mp4': true,
      });
      await rm(marker);
      const second = await segments(opts);
      expect(second.videos[0]).toMatchObject({ status: 'done', segmentsRun: 1, segmentsReused: 2 });
      expect(Number((await probeCounted(out)).video.nb_read_frames)).toBe(N);
      expect(JSON.parse(await readFile(join(v.workDir, 'records', 'seg_000001.json'), 'utf8'))).toMatchObject({ status: 'done', attempts: 2 });

      // Carry: the segment after the failed one ran from zeros; the rerun redoes both and equals a clean run.
      await writeFile(marker, '');
      const carryOut = join(dir, 'fail', 'carry.mp4');
      const carry = { ...opts, outputs: [carryOut], state: 'carry' };
      const c1 = await segments(carry);
      expect(c1.videos[0]).toMatchObject({ status: 'incomplete', segmentsRun: 2 });
      await rm(marker);
      const c2 = await segments(carry);
      expect(c2.videos[0]).toMatchObject({ status: 'done', segmentsRun: 2, segmentsReused: 1 });
      const clean = join(dir, 'fail', 'clean.mp4');
      await segments({ ...carry, outputs: [clean] });
      expect(Buffer.compare(await readFile(carryOut), await readFile(clean))).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });
});
