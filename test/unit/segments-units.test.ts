import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderUnits, segments } from '../../src/jobs/segments.js';
import { GraphBuilder, ints } from '../../src/models/onnx-graph.js';
import { parseColour, toModelInput } from '../../src/segments/compose.js';
import { buildMattingModel } from '../../src/segments/matting-model.js';
import { FrameModel, stackStates } from '../../src/segments/model.js';
import { parseBitRate, parseStateMode, resolveSegmentsOptions } from '../../src/segments/options.js';
import { workDirFor } from '../../src/segments/stages.js';
import { keyframeBefore, planSegments } from '../../src/segments/plan.js';
import { decodeState, encodeState } from '../../src/segments/records.js';
import { MATTE_FIXTURE, matteIoU, renderMatteFrame, trueMask } from '../../fixtures/matte.js';
import { readPng } from '../helpers/segments.js';

const cfr = (n: number, fps: number) => Float64Array.from({ length: n }, (_, i) => Math.round((i / fps) * 1e6) / 1e6);

describe('planSegments', () => {
  it.each([
    [
      '150 frames at 25 fps, 2 s',
      cfr(150, 25),
      [0, 60, 120],
      2,
      [
        [0, 50],
        [50, 100],
        [100, 150],
      ],
    ],
    [
      '29.97 fps, 1 s (no frame at exactly 1 s)',
      cfr(90, 30000 / 1001),
      [0],
      1,
      [
        [0, 30],
        [30, 60],
        [60, 90],
      ],
    ],
    ['longer than the video: one segment', cfr(10, 25), [0], 15, [[0, 10]]],
    [
      'VFR: 10 fps then 50 fps',
      Float64Array.from([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.02, 1.04, 1.98, 2.0, 2.02]),
      [0],
      1,
      [
        [0, 10],
        [10, 14],
        [14, 16],
      ],
    ],
    [
      'source starting at 1.4 s (MPEG-TS style)',
      Float64Array.from([1.4, 1.8, 2.2, 2.6]),
      [0, 2],
      0.8,
      [
        [0, 2],
        [2, 4],
      ],
    ],
  ])('%s', (_name, pts, keyframes, seconds, ranges) => {
    const segs = planSegments({ pts, keyframes }, seconds);
    expect(segs.map((s) => [s.startFrame, s.endFrame])).toEqual(ranges);
    for (const s of segs) expect(s.keyframe).toBe(keyframeBefore(keyframes, s.startFrame));
  });

  it('names the option when the length is not positive', () => {
    expect(() => planSegments({ pts: cfr(5, 25), keyframes: [0] }, 0, 'options.segmentSeconds')).toThrow(
      'Expected number of at least 0.001 for options.segmentSeconds but received 0 of type number',
    );
  });

  it.each([
    [0, 0],
    [29, 0],
    [30, 30],
    [31, 30],
    [200, 90],
  ])('keyframeBefore(%i) = %i', (frame, kf) => {
    expect(keyframeBefore([0, 30, 60, 90], frame)).toBe(kf);
  });
});

describe('option parsers', () => {
  it.each([
    ['carry', { mode: 'carry' }],
    ['reset', { mode: 'reset' }],
    ['warmup:12', { mode: 'warmup', frames: 12 }],
  ])('state %s', (v, m) => {
    expect(parseStateMode(v)).toEqual(m);
  });
  it.each(['warmup', 'warmup:0', 'warm', ''])('refuses state %j', (v) => {
    expect(() => parseStateMode(v, '--state')).toThrow(/for --state but received/);
  });
  it.each([
    ['40M', 40e6],
    ['8000k', 8e6],
    ['2.5M', 2.5e6],
    ['5000000', 5e6],
  ])('bit rate %s', (v, n) => expect(parseBitRate(v)).toBe(n));
  it.each([
    ['green', [0.47, 1, 0.6]],
    ['#ff0000', [1, 0, 0]],
    ['0,0.5,1', [0, 0.5, 1]],
    ['0,255,0', [0, 1, 0]],
    ['blue', null],
    ['1,2', null],
  ])('colour %s', (v, c) => {
    expect(parseColour(v)).toEqual(c);
  });
});

describe('recurrent states', () => {
  it('stacks per-stream states, zero-filling the initial ones', () => {
    expect(stackStates([null, null])).toEqual({ data: new Float32Array(1), dims: [1, 1, 1, 1] });
    const a = { data: Float32Array.from([1, 2, 3, 4]), dims: [1, 1, 2, 2] };
    const s = stackStates([null, a, { data: new Float32Array(1), dims: [1, 1, 1, 1] }]);
    expect(s.dims).toEqual([3, 1, 2, 2]);
    expect(Array.from(s.data)).toEqual([0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
  });

  it('survives a write-then-read round trip bit for bit', () => {
    const state = { r1: { data: Float32Array.from([0.1, -2.5e-8, 3]), dims: [1, 3, 1, 1] }, r2: { data: Float32Array.from([1]), dims: [1, 1, 1, 1] } };
    const back = decodeState(encodeState(state))!;
    expect(back.r1!.dims).toEqual([1, 3, 1, 1]);
    expect(Buffer.from(back.r1!.data.buffer).equals(Buffer.from(state.r1.data.buffer))).toBe(true);
    expect(decodeState(encodeState(null))).toBeNull();
  });
});

describe('the shipped matting model', () => {
  let model: FrameModel;
  beforeAll(async () => {
    model = await FrameModel.open('models/rvm_synthetic.onnx', { device: 'cpu', batchSize: 4 });
  });
  afterAll(async () => {
    await model.close();
  });

  it('is what the builder makes (byte-identical)', async () => {
    expect(Buffer.compare(await readFile('models/rvm_synthetic.onnx'), buildMattingModel())).toBe(0);
  });

  it("has RVM's interface: zero states [1,1,1,1] broadcast, the state changes the output, streams share a batch", async () => {
    expect(model.kind).toBe('rvm');
    const { width: w, height: h } = MATTE_FIXTURE;
    const f0 = toModelInput(renderMatteFrame(MATTE_FIXTURE, 0), w, h);
    const f5 = toModelInput(renderMatteFrame(MATTE_FIXTURE, 5), w, h);
    // Two streams at once: one batch of two.
    const before = model.batchSizes.length;
    const [a, b] = await Promise.all([model.submit(f0, null, h, w, 1), model.submit(f5, null, h, w, 1)]);
    expect(model.batchSizes.slice(before)).toEqual([2]);
    expect(a.state!.r1!.dims).toEqual([1, 1, h, w]);
    expect(
      matteIoU(
        Uint8Array.from(a.pha!, (x) => Math.round(x * 255)),
        trueMask(MATTE_FIXTURE, 0),
      ),
    ).toBeGreaterThan(0.95);
    // Frame 5 after frame 0's state differs from frame 5 from zeros where the disc moved, and only a little.
    const carried = await model.submit(toModelInput(renderMatteFrame(MATTE_FIXTURE, 5), w, h), a.state, h, w, 1);
    let diff = 0;
    for (let i = 0; i < w * h; i++) diff = Math.max(diff, Math.abs(carried.pha![i]! - b.pha![i]!));
    expect(diff).toBeGreaterThan(0.2);
    expect(diff).toBeLessThan(0.35);
  });

  it('downsamples by downsample_ratio and returns a full-size matte', async () => {
    const { width: w, height: h } = MATTE_FIXTURE;
    const r = await model.submit(toModelInput(renderMatteFrame(MATTE_FIXTURE, 10), w, h), null, h, w, 0.5);
    expect(r.pha).toHaveLength(w * h);
    expect(r.state!.r1!.dims).toEqual([1, 1, h / 2, w / 2]);
    expect(
      matteIoU(
        Uint8Array.from(r.pha!, (x) => Math.round(x * 255)),
        trueMask(MATTE_FIXTURE, 10 / 25),
      ),
    ).toBeGreaterThan(0.9);
  });

  it('refuses frames that cannot fit, with the way out', () => {
    expect(() => model.checkFits(7680, 4320, 1, 'big.mp4')).toThrow(/big\.mp4: a 7680x4320 frame is 7680x4320 inside model .*pass --downsample_ratio=0\.067/);
    expect(() => model.checkFits(160, 120, 0.001, 'small.mp4')).toThrow(/--downsample_ratio=0.001 makes its 160x120 frames smaller than one pixel/);
    expect(() => model.checkFits(7680, 4320, 0.25, 'big.mp4')).not.toThrow();
  });
});

describe('a stateless image-to-image model', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-image-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs frame batches through a one-input model and writes its matte', async () => {
    // The shipped model's matte without the recurrence, as a plain image → mask model.
    const g = new GraphBuilder('mask');
    g.addInput('image', ['batch', 3, 'height', 'width']);
    g.addInitializer('w', [1, 3, 1, 1], new Float32Array([16, 0, -16]));
    g.addInitializer('b', [1], new Float32Array([-16 * 0.14]));
    g.addNode('Conv', ['image', 'w', 'b'], 'logits', { kernel_shape: ints([1, 1]) });
    g.addNode('Sigmoid', ['logits'], 'mask');
    g.addOutput('mask', ['batch', 1, 'height', 'width']);
    const path = join(dir, 'mask.onnx');
    await writeFile(path, g.toBuffer());
    const out = join(dir, 'alpha');
    const r = await segments({
      inputs: ['fixtures/segments/matte_move.mp4'],
      outputs: [out],
      model: path,
      segmentSeconds: 2,
      outputType: 'alpha',
      format: 'png',
      batchSize: 4,
      device: 'cpu',
      onWarning: () => {},
    });
    expect(r.modelKind).toBe('image');
    expect(r.videos[0]!.status).toBe('done');
    expect(r.meanBatch).toBeGreaterThan(1);
    for (const k of [3, 77, 149]) {
      const png = await readPng(join(out, `${String(k).padStart(6, '0')}.png`));
      expect(matteIoU(png.data, trueMask(MATTE_FIXTURE, k / 25))).toBeGreaterThan(0.9);
    }
  });
});

describe('folderUnits', () => {
  it('maps every video under a folder to an output of the same relative name, never taking outputs as inputs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-units-'));
    try {
      for (const f of ['a.mp4', 'sub/b.mkv', 'notes.txt', 'out/old.mp4']) {
        await mkdir(join(dir, f, '..'), { recursive: true });
        await writeFile(join(dir, f), '');
      }
      const u = await folderUnits(dir, join(dir, 'out'), 'mp4');
      expect(u.inputs).toEqual([join(dir, 'a.mp4'), join(dir, 'sub', 'b.mkv')]);
      expect(u.outputs).toEqual([join(dir, 'out', 'a.mp4'), join(dir, 'out', 'sub', 'b.mp4')]);
      expect((await folderUnits(dir, join(dir, 'out'), 'png')).outputs[1]).toBe(join(dir, 'out', 'sub', 'b'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives videos of one name in different containers distinct outputs; the others keep their names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-units-'));
    try {
      for (const f of ['a.mp4', 'x.mkv', 'x.mp4', 'x.webm', 'x.mkv.mp4', 'y.mkv', 'y.ts', 'sub/x.mov']) {
        await mkdir(join(dir, f, '..'), { recursive: true });
        await writeFile(join(dir, f), '');
      }
      const out = (...p: string[]) => join(dir, 'out', ...p);
      const u = await folderUnits(dir, out(), 'mp4');
      const rel = (p: string) => p.slice(dir.length + 1);
      expect(Object.fromEntries(u.inputs.map((p, i) => [rel(p), rel(u.outputs[i]!)]))).toEqual({
        'a.mp4': 'out/a.mp4',
        'sub/x.mov': 'out/sub/x.mp4',
        // x.mp4 keeps its name; the others of its stem keep their extension, and one that would
        // then take a name another video has gets a counter.
        'x.mp4': 'out/x.mp4',
        'x.mkv.mp4': 'out/x.mkv.mp4',
        'x.mkv': 'out/x.mkv~2.mp4',
        'x.webm': 'out/x.webm.mp4',
        'y.mkv': 'out/y.mkv.mp4',
        'y.ts': 'out/y.ts.mp4',
      });
      expect(new Set(u.outputs.map(workDirFor)).size).toBe(u.outputs.length);
      const png = await folderUnits(dir, out(), 'png');
      expect(rel(png.outputs[png.inputs.indexOf(join(dir, 'x.mp4'))]!)).toBe('out/x');
      // A PNG output is a folder: the extension is kept without its dot, so the work folders differ too.
      expect(rel(png.outputs[png.inputs.indexOf(join(dir, 'y.ts'))]!)).toBe('out/y_ts');
      expect(new Set(png.outputs).size).toBe(png.outputs.length);
      expect(new Set(png.outputs.map(workDirFor)).size).toBe(png.outputs.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses two videos given one output (or one work folder), naming both', () => {
    const resolve = (outputs: string[]) => () => resolveSegmentsOptions({ inputs: ['a.mp4', 'a.mkv'], outputs }, 'm.onnx');
    expect(resolve(['o/a.mp4', 'o/a.mp4'])).toThrow(/options\.outputs: a\.mp4 and a\.mkv would both write o\/a\.mp4/);
    expect(resolve(['o/a.mp4', 'o/a.mov'])).toThrow(/options\.outputs: a\.mp4 and a\.mkv would both use the work folder o\/a\.segments/);
    expect(resolve(['o/a.mp4', 'o/b.mp4'])).not.toThrow();
  });
});
