/**
 * Builds the shipped face detector: an ONNX model in the SCRFD output layout whose hand-set
 * weights find the synthetic fixture face (src/faces/synthetic.ts) and nothing else. It lets
 * the whole `faces` job run and be tested without downloading a real detector; real footage
 * needs a real one (docs/faces.md says how to plug in SCRFD, YuNet or UltraFace).
 *
 * How it works: the stride-8 score head is one convolution whose kernel is the face template
 * (luminance, zero-mean, divided by its energy), so it answers 1 where the face is exactly
 * under an anchor and 0 on a flat background; a sigmoid of 12·(r − 0.4) turns that into a
 * confidence. The box and landmark heads are constants (the template's half-size and landmark
 * offsets in stride units), as SCRFD predicts distances from anchor centres. Strides 16 and 32
 * answer "no face" everywhere, so the output layout is that of a real 9-output SCRFD model.
 */
import { GraphBuilder, ints } from '../models/onnx-graph.js';
import { FACE_HALF_HEIGHT, FACE_HALF_WIDTH, landmarkOffsets, renderFace } from './synthetic.js';

export const SYNTHETIC_DETECTOR_FILE = 'face_detector_synthetic.onnx';
/** Longest side the model expects; the template is one scale, so frames are not enlarged beyond this. */
export const SYNTHETIC_DETECTOR_INPUT = 320;

const STRIDES = [8, 16, 32] as const;
const ANCHORS = 2;
const KW = 56;
const KH = 64;
const STEEPNESS = 12;
/** Template response at which the score is 0.5. */
const CENTRE = 0.4;

/** Separable Gaussian blur with edge clamping. */
function blur(t: Float32Array, w: number, h: number, sigma: number): Float32Array {
  const r = Math.ceil(sigma * 3);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  const pass = (src: Float32Array, horizontal: boolean): Float32Array => {
    const out = new Float32Array(src.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) {
          const xx = horizontal ? Math.min(w - 1, Math.max(0, x + i)) : x;
          const yy = horizontal ? y : Math.min(h - 1, Math.max(0, y + i));
          acc += k[i + r]! * src[yy * w + xx]!;
        }
        out[y * w + x] = acc / sum;
      }
    }
    return out;
  };
  return pass(pass(t, true), false);
}

/**
 * The score kernel: the face's normalised luminance, blurred (σ = 3 px) so the response falls
 * off slowly enough that a face halfway between two anchors (4 px off on both axes) still
 * scores well, made zero-mean (a flat background answers 0) and scaled so the face exactly
 * under an anchor answers 1.
 */
export function faceTemplate(): Float32Array {
  const rgb = renderFace(KW, KH, { cx: KW / 2, cy: KH / 2 });
  const face = new Float32Array(KW * KH);
  for (let i = 0; i < face.length; i++) face[i] = ((rgb[i * 3]! + rgb[i * 3 + 1]! + rgb[i * 3 + 2]!) / 3 - 127.5) / 128;
  const t = blur(face, KW, KH, 3);
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  let response = 0;
  for (let i = 0; i < t.length; i++) {
    t[i] = t[i]! - mean;
    response += t[i]! * face[i]!;
  }
  for (let i = 0; i < t.length; i++) t[i] = t[i]! / response;
  return t;
}

/**
 * Returns the model bytes; the same on every run (no clocks, no randomness).
 *
 * @example
 * await writeFile('models/face_detector_synthetic.onnx', buildSyntheticDetector());
 *
 * @internal used by scripts/build-face-detector.ts and its test only
 */
export function buildSyntheticDetector(): Buffer {
  const g = new GraphBuilder('face_detector_synthetic');
  g.addInput('input', ['batch', 3, 'height', 'width']);
  const template = faceTemplate();
  const scores: string[] = [];
  const boxes: string[] = [];
  const kps: string[] = [];
  const flatten = (x: string, channels: number, name: string): string => {
    const t = g.addNode('Transpose', [x], `${name}.nhwc`, { perm: ints([0, 2, 3, 1]) });
    const shape = g.addInt64Initializer(`${name}.shape`, [3], [0, -1, channels / ANCHORS]);
    return g.addNode('Reshape', [t, shape], name);
  };
  for (const s of STRIDES) {
    // Score head.
    let conv: string;
    if (s === 8) {
      const w = new Float32Array(ANCHORS * 3 * KH * KW);
      for (let a = 0; a < ANCHORS; a++) {
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < KH * KW; i++) w[(a * 3 + c) * KH * KW + i] = (STEEPNESS * template[i]!) / 3;
        }
      }
      // The second anchor agrees with the first but is less sure, so NMS keeps one box.
      const b = new Float32Array([-STEEPNESS * CENTRE, -STEEPNESS * CENTRE - 3]);
      g.addInitializer(`score_${s}.weight`, [ANCHORS, 3, KH, KW], w, 'face template: blurred zero-mean luminance, response 1 at the face, x12');
      g.addInitializer(`score_${s}.bias`, [ANCHORS], b);
      conv = g.addNode('Conv', ['input', `score_${s}.weight`, `score_${s}.bias`], `score_${s}.logits`, {
        kernel_shape: ints([KH, KW]),
        strides: ints([s, s]),
        // Window centred on the anchor at (8j, 8i); bottom/right trimmed so the map is H/8 × W/8.
        pads: ints([KH / 2, KW / 2, KH / 2 - s, KW / 2 - s]),
      });
    } else {
      g.addInitializer(`score_${s}.weight`, [ANCHORS, 3, 1, 1], new Float32Array(ANCHORS * 3));
      g.addInitializer(`score_${s}.bias`, [ANCHORS], new Float32Array(ANCHORS).fill(-20));
      conv = g.addNode('Conv', ['input', `score_${s}.weight`, `score_${s}.bias`], `score_${s}.logits`, { kernel_shape: ints([1, 1]), strides: ints([s, s]) });
    }
    const prob = g.addNode('Sigmoid', [conv], `score_${s}.prob`);
    scores.push(flatten(prob, ANCHORS, `score_${s}`));

    // Box head: constant distances (left, top, right, bottom) in stride units.
    const dist = [FACE_HALF_WIDTH / s, FACE_HALF_HEIGHT / s, FACE_HALF_WIDTH / s, FACE_HALF_HEIGHT / s];
    g.addInitializer(`bbox_${s}.weight`, [ANCHORS * 4, 3, 1, 1], new Float32Array(ANCHORS * 4 * 3));
    g.addInitializer(`bbox_${s}.bias`, [ANCHORS * 4], new Float32Array([...dist, ...dist]));
    const bconv = g.addNode('Conv', ['input', `bbox_${s}.weight`, `bbox_${s}.bias`], `bbox_${s}.raw`, { kernel_shape: ints([1, 1]), strides: ints([s, s]) });
    boxes.push(flatten(bconv, ANCHORS * 4, `bbox_${s}`));

    // Landmark head: constant offsets of the 5 points in stride units.
    const off = landmarkOffsets().flatMap(([x, y]) => [x / s, y / s]);
    g.addInitializer(`kps_${s}.weight`, [ANCHORS * 10, 3, 1, 1], new Float32Array(ANCHORS * 10 * 3));
    g.addInitializer(`kps_${s}.bias`, [ANCHORS * 10], new Float32Array([...off, ...off]));
    const kconv = g.addNode('Conv', ['input', `kps_${s}.weight`, `kps_${s}.bias`], `kps_${s}.raw`, { kernel_shape: ints([1, 1]), strides: ints([s, s]) });
    kps.push(flatten(kconv, ANCHORS * 10, `kps_${s}`));
  }
  // SCRFD order: all scores, then all boxes, then all landmarks, strides ascending.
  for (const [i, s] of STRIDES.entries()) g.addOutput(scores[i]!, ['batch', `anchors_${s}`, 1]);
  for (const [i, s] of STRIDES.entries()) g.addOutput(boxes[i]!, ['batch', `anchors_${s}`, 4]);
  for (const [i, s] of STRIDES.entries()) g.addOutput(kps[i]!, ['batch', `anchors_${s}`, 10]);
  g.setMetadata('clipstream.kind', 'face-detector');
  g.setMetadata('face_detector.format', 'scrfd');
  g.setMetadata('face_detector.input_size', String(SYNTHETIC_DETECTOR_INPUT));
  g.setMetadata('dataset', 'none (hand-set weights for the synthetic fixture face)');
  g.setMetadata('weights', 'hand-set');
  return g.toBuffer();
}
