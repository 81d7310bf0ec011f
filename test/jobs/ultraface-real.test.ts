import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iou, type Detection } from '../../src/faces/boxes.js';
import { loadFaceDetector, type FaceDetector } from '../../src/faces/detector.js';
import { REPO } from '../helpers/run-cli.js';
import { decodeImage, HAS_PHOTOS, HAS_ULTRAFACE, PHOTOS, PHOTOS_DIR, SHARED_MISSING, ULTRAFACE_DIR } from '../helpers/shared.js';

/**
 * The published UltraFace RFB-640 (real learned weights, ../shared/models/ultraface) on the
 * three photos of real faces: our decoder + NMS must give the boxes of the published
 * post-processing (scripts/ultraface_reference.py, numpy, on the raw outputs of the same
 * session), and find the faces a person counts.
 */
const PY = '/usr/bin/python3';
const HAS_NUMPY = existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
const RFB640 = join(ULTRAFACE_DIR, 'version-RFB-640.onnx');
// The published demo's thresholds (run_video_face_detect_onnx.py: threshold 0.7, hard_nms iou 0.3).
const SCORE = 0.7;
const NMS = 0.3;

describe.skipIf(!HAS_ULTRAFACE || !HAS_PHOTOS)('UltraFace RFB-640 on real photos', () => {
  let detector: FaceDetector;
  let session: ort.InferenceSession;
  let dump = '';
  const ours = new Map<string, Detection[]>();
  beforeAll(async () => {
    detector = await loadFaceDetector(RFB640, { scoreThreshold: SCORE, nmsThreshold: NMS, intraOpThreads: 2 });
    session = await ort.InferenceSession.create(RFB640, { intraOpNumThreads: 2 });
    dump = await mkdtemp(join(tmpdir(), 'ultraface-'));
  });
  afterAll(async () => {
    await detector?.close();
    await session?.release();
    await rm(dump, { recursive: true, force: true });
  });

  it.each(PHOTOS)('%s: our detector finds the %i faces a person counts', async (file, count) => {
    const src = decodeImage(join(PHOTOS_DIR, file));
    const fit = detector.fit(src.width, src.height);
    const img = decodeImage(join(PHOTOS_DIR, file), fit);
    const [found] = await detector.detect([{ ...img, scale: fit.scale, sourceWidth: src.width, sourceHeight: src.height }]);
    ours.set(file, found!);
    expect(found!.length).toBe(count);
    for (const d of found!) {
      expect(d.score).toBeGreaterThan(SCORE);
      expect(d.x2 - d.x1).toBeGreaterThan(8);
    }

    // Raw outputs of the same model on the same input (top-left placement, zero padding, (x - 127) / 128) for the reference.
    const W = 640;
    const H = 480;
    const input = new Float32Array(3 * W * H);
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        for (let c = 0; c < 3; c++) input[c * W * H + y * W + x] = (img.rgb[(y * img.width + x) * 3 + c]! - 127) / 128;
      }
    }
    const out = await session.run({ input: new ort.Tensor('float32', input, [1, 3, H, W]) });
    const name = file.replace(/\.jpg$/, '');
    await writeFile(join(dump, `${name}.scores.f32`), Buffer.from((out.scores!.data as Float32Array).buffer));
    await writeFile(join(dump, `${name}.boxes.f32`), Buffer.from((out.boxes!.data as Float32Array).buffer));
    await writeFile(
      join(dump, `${name}.json`),
      JSON.stringify({
        input_width: W,
        input_height: H,
        scale: fit.scale,
        source_width: src.width,
        source_height: src.height,
        prob_threshold: SCORE,
        iou_threshold: NMS,
      }),
    );
  });

  it.skipIf(!HAS_NUMPY)('the boxes equal those of the published post-processing (numpy reference)', () => {
    expect(ours.size).toBe(PHOTOS.length);
    const r = spawnSync(PY, [join(REPO, 'scripts', 'ultraface_reference.py'), dump], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as Record<string, number[][]>;
    for (const [file, count] of PHOTOS) {
      const want = ref[file.replace(/\.jpg$/, '')]!;
      const got = ours.get(file)!;
      expect(want.length, file).toBe(count);
      expect(got.length, file).toBe(want.length);
      got.forEach((d, i) => {
        const [x1, y1, x2, y2, s] = want[i]!;
        expect(Math.abs(d.score - s!), `${file} #${i} score`).toBeLessThan(1e-6);
        for (const [a, b] of [
          [d.x1, x1],
          [d.y1, y1],
          [d.x2, x2],
          [d.y2, y2],
        ])
          expect(Math.abs(a! - b!), `${file} #${i}`).toBeLessThan(0.01);
      });
    }
  });

  it('faces are distinct: no two kept boxes overlap by more than the NMS threshold', () => {
    for (const [file] of PHOTOS) {
      const got = ours.get(file) ?? [];
      for (let i = 0; i < got.length; i++) for (let j = i + 1; j < got.length; j++) expect(iou(got[i]!, got[j]!), file).toBeLessThanOrEqual(NMS);
    }
  });
});

if (!HAS_ULTRAFACE || !HAS_PHOTOS) console.warn(`ultraface-real.test.ts: ${SHARED_MISSING}`);
