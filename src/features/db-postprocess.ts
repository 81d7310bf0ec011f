/**
 * PP-OCR's text detector (DB, "Differentiable Binarization") around the network: the input resize
 * and normalisation, and the post-processing that turns the network's probability map into text
 * boxes. Pure functions on typed arrays, no ONNX here (src/infer/text-detector.ts runs the model).
 *
 * The numbers are PaddleOCR 2.x's inference defaults (tools/infer/utility.py, predict_det.py,
 * ppocr/postprocess/db_postprocess.py, the PP-OCRv4 det configs), written afresh here:
 * - resize: `det_limit_type='max'`, `det_limit_side_len=960`: a side above 960 scales the image
 *   down so its longer side is 960, a smaller image is not scaled up; each side is then rounded to
 *   the nearest multiple of 32 (Python's round, halves to even), at least 32; bilinear
 *   (cv2.INTER_LINEAR, no anti-aliasing);
 * - normalise: BGR channel order (PaddleOCR reads with cv2 and trains with `img_mode: BGR`),
 *   `(v / 255 - mean[c]) / std[c]` with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)
 *   applied to channels B, G, R in that order; NCHW float32;
 * - post-process: `thresh=0.3` on the map, contours, minimum-area rectangles (min side >= `min_size=3`),
 *   mean map value inside the rectangle (`score_mode='fast'`) >= `box_thresh=0.6`, unclip by
 *   `area * unclip_ratio / perimeter` (`unclip_ratio=1.5`), the rectangle again (min side >= min_size + 2),
 *   scaled to the input frame and rounded; at most `max_candidates=1000` contours; then, as
 *   predict_det's filter does, boxes clipped to the frame and those 3 px or less wide or high dropped.
 *
 * Where this differs from PaddleOCR's code, and why the boxes are the same
 * (scripts/db_postprocess_reference.py runs PaddleOCR's steps with cv2; test/unit/text-detector.test.ts
 * compares the two on real probability maps):
 * - contours: PaddleOCR traces borders with cv2.findContours (RETR_LIST, CHAIN_APPROX_SIMPLE). Only the
 *   convex hull of a contour reaches the result (the minimum-area rectangle is the hull's), so here
 *   the outer contours are 8-connected components of the mask, and the hole contours (RETR_LIST lists
 *   them too) are the 4-connected background regions that do not touch the frame edge, bounded by the
 *   mask pixels 4-adjacent to them, exactly the pixels Suzuki-Abe border following visits; hulls are
 *   taken of those pixels. Same hulls, so the same rectangles; only the order of the contours can
 *   differ, which matters only past 1000 contours.
 * - unclip: PaddleOCR offsets the rectangle with pyclipper (round joins, integer coordinates) and takes
 *   the minimum-area rectangle of that. The round-joined offset of a rectangle by d has as its minimum-area
 *   rectangle the rectangle grown by d on every side, which is what this computes directly (a mitred
 *   offset of the convex polygon); pyclipper's integer rounding moves corners by under a pixel of the map.
 * - corners and side lengths within 1/1000 px of a whole or half pixel are snapped onto it before
 *   PaddleOCR's truncation and rounding (snapHalf): cv2's float32 gives 0.9999981 for 1, and PaddleOCR's
 *   int cast then moves the box a pixel by noise; at most a pixel of difference, and only in such ties.
 * - the box score fills the rectangle by testing pixel centres (within half a pixel of an edge
 *   counts, as cv2.fillPoly draws the outline too) instead of cv2.fillPoly's scanline; for the
 *   axis-aligned rectangles text gives, the same pixels.
 */

/** PaddleOCR's inference defaults for the DB detector (see the module comment). */
export const DB_DEFAULTS = {
  limitSideLen: 960,
  thresh: 0.3,
  boxThresh: 0.6,
  unclipRatio: 1.5,
  maxCandidates: 1000,
  minSize: 3,
} as const;

/** ImageNet mean and std, applied to the B, G, R planes in this order (PaddleOCR's NormalizeImage on a cv2 image). */
const MEAN_BGR = [0.485, 0.456, 0.406] as const;
const STD_BGR = [0.229, 0.224, 0.225] as const;

export type Point = [number, number];

export interface DbBox {
  /** Four corners (top-left, top-right, bottom-right, bottom-left), in the input frame's pixels. */
  points: Point[];
  /** Mean of the probability map inside the box before unclipping. */
  score: number;
}

export interface DbOptions {
  thresh?: number;
  boxThresh?: number;
  unclipRatio?: number;
  maxCandidates?: number;
  minSize?: number;
}

/**
 * A value within 1/1000 px of a whole or half pixel, moved onto it. PaddleOCR truncates and rounds
 * corners that cv2 computes in float32, so a corner that lies on a whole pixel in exact arithmetic
 * (a rectangle around pixel centres) lands on either side of it by rounding noise (cv2 gives
 * 0.9999981 for 1, which truncates to 0), and a half-pixel corner rounds either way. Both this code
 * and scripts/db_postprocess_reference.py snap such values first, so the boxes follow the geometry,
 * not float noise (a deviation from PaddleOCR of at most one pixel, in those cases only).
 */
export function snapHalf(v: number): number {
  const h = Math.round(v * 2) / 2;
  return Math.abs(v - h) < 1e-3 ? h : v;
}

/** Python's round(): halves go to the even neighbour (numpy's np.round does the same). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The size PP-OCR's DetResizeForTest (limit_type 'max') resizes a `width` x `height` frame to:
 * sides multiples of 32, the longer one at most about `limitSideLen`.
 *
 * @example
 * detInputSize(640, 360) // { width: 640, height: 352 }
 */
export function detInputSize(width: number, height: number, limitSideLen: number = DB_DEFAULTS.limitSideLen): { width: number; height: number } {
  const longer = Math.max(width, height);
  const ratio = longer > limitSideLen ? limitSideLen / longer : 1;
  // PaddleOCR truncates the scaled side to an int before rounding to 32.
  const side = (v: number) => Math.max(roundHalfEven(Math.trunc(v * ratio) / 32) * 32, 32);
  return { width: side(width), height: side(height) };
}

/**
 * Bilinear resize of packed RGB (cv2.INTER_LINEAR's geometry: pixel centres aligned, no
 * anti-aliasing), straight into the detector's normalised BGR NCHW float32 input.
 */
export function detInputTensor(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  const plane = outWidth * outHeight;
  const out = new Float32Array(3 * plane);
  const sx = width / outWidth;
  const sy = height / outHeight;
  const x0s = new Int32Array(outWidth);
  const x1s = new Int32Array(outWidth);
  const fxs = new Float32Array(outWidth);
  for (let x = 0; x < outWidth; x++) {
    let fx = (x + 0.5) * sx - 0.5;
    if (fx < 0) fx = 0;
    let x0 = Math.floor(fx);
    if (x0 > width - 1) x0 = width - 1;
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, width - 1);
    fxs[x] = fx - x0;
  }
  // Output plane p (B, G, R) reads input channel 2 - p of the RGB pixels.
  const scale = [1 / (255 * STD_BGR[0]), 1 / (255 * STD_BGR[1]), 1 / (255 * STD_BGR[2])];
  const shift = [MEAN_BGR[0] / STD_BGR[0], MEAN_BGR[1] / STD_BGR[1], MEAN_BGR[2] / STD_BGR[2]];
  for (let y = 0; y < outHeight; y++) {
    let fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    let y0 = Math.floor(fy);
    if (y0 > height - 1) y0 = height - 1;
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    const r0 = y0 * width * 3;
    const r1 = y1 * width * 3;
    for (let x = 0; x < outWidth; x++) {
      const a = x0s[x]! * 3;
      const b = x1s[x]! * 3;
      const wx = fxs[x]!;
      for (let p = 0; p < 3; p++) {
        const c = 2 - p;
        const top = rgb[r0 + a + c]! * (1 - wx) + rgb[r0 + b + c]! * wx;
        const bottom = rgb[r1 + a + c]! * (1 - wx) + rgb[r1 + b + c]! * wx;
        const v = top * (1 - wy) + bottom * wy;
        out[p * plane + y * outWidth + x] = v * scale[p]! - shift[p]!;
      }
    }
  }
  return out;
}

/** Convex hull (Andrew's monotone chain), counter-clockwise in image coordinates' math orientation, no collinear points. */
export function convexHull(points: Point[]): Point[] {
  const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/** A rotated rectangle: its four corners (in order around it) and its two side lengths. */
export interface RotatedRect {
  corners: Point[];
  width: number;
  height: number;
}

/**
 * The minimum-area enclosing rectangle of a point set (rotating calipers over the hull's edges:
 * the best rectangle has a side on a hull edge). Fewer than three hull points give a zero-area
 * rectangle.
 */
export function minAreaRect(points: Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) return { corners: [], width: 0, height: 0 };
  if (hull.length < 3) {
    const [a, b = a] = hull as [Point, Point?];
    return { corners: [a, b, b, a], width: Math.hypot(b[0] - a[0], b[1] - a[1]), height: 0 };
  }
  let best: RotatedRect | null = null;
  let bestArea = Number.POSITIVE_INFINITY;
  for (let i = 0; i < hull.length; i++) {
    const p = hull[i]!;
    const q = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(q[0] - p[0], q[1] - p[1]);
    if (len === 0) continue;
    const ux = (q[0] - p[0]) / len;
    const uy = (q[1] - p[1]) / len;
    let minU = Number.POSITIVE_INFINITY;
    let maxU = Number.NEGATIVE_INFINITY;
    let minV = Number.POSITIVE_INFINITY;
    let maxV = Number.NEGATIVE_INFINITY;
    for (const h of hull) {
      const u = h[0] * ux + h[1] * uy;
      const v = -h[0] * uy + h[1] * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const at = (u: number, v: number): Point => [u * ux - v * uy, u * uy + v * ux];
      best = { corners: [at(minU, minV), at(maxU, minV), at(maxU, maxV), at(minU, maxV)], width: maxU - minU, height: maxV - minV };
    }
  }
  return best!;
}

/** Orders a rectangle's corners as PP-OCR's get_mini_boxes does: the two leftmost (by x) give top-left and bottom-left, the two rightmost top-right and bottom-right. */
export function orderCorners(corners: Point[]): Point[] {
  const byX = corners.slice().sort((a, b) => a[0] - b[0]);
  const [l0, l1, r0, r1] = byX as [Point, Point, Point, Point];
  const [tl, bl] = l1[1] > l0[1] ? [l0, l1] : [l1, l0];
  const [tr, br] = r1[1] > r0[1] ? [r0, r1] : [r1, r0];
  return [tl, tr, br, bl];
}

function polygonArea(poly: Point[]): number {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    s += a[0] * b[1] - b[0] * a[1];
  }
  return s / 2;
}

function polygonPerimeter(poly: Point[]): number {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    s += Math.hypot(b[0] - a[0], b[1] - a[1]);
  }
  return s;
}

/**
 * Grows a convex polygon by `area * ratio / perimeter` on every side (each edge moved out along its
 * normal, corners where neighbouring edges meet). For a rectangle, the same rectangle as the
 * minimum-area rectangle of a round-joined offset (PaddleOCR's pyclipper unclip).
 */
export function unclip(poly: Point[], ratio: number): Point[] {
  const signed = polygonArea(poly);
  const perimeter = polygonPerimeter(poly);
  if (signed === 0 || perimeter === 0) return poly;
  const d = (Math.abs(signed) * ratio) / perimeter;
  // With a positive signed area (x right, y down: clockwise on screen) the outward normal of edge a->b is (dy, -dx).
  const sign = signed > 0 ? 1 : -1;
  const n = poly.length;
  const lines: { p: Point; dir: Point }[] = [];
  for (let i = 0; i < n; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % n]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const dx = (b[0] - a[0]) / len;
    const dy = (b[1] - a[1]) / len;
    const nx = sign * dy;
    const ny = -sign * dx;
    lines.push({ p: [a[0] + nx * d, a[1] + ny * d], dir: [dx, dy] });
  }
  const out: Point[] = [];
  for (let i = 0; i < n; i++) {
    const l1 = lines[(i + n - 1) % n]!;
    const l2 = lines[i]!;
    const det = l1.dir[0] * l2.dir[1] - l1.dir[1] * l2.dir[0];
    if (Math.abs(det) < 1e-12) {
      out.push(l2.p);
      continue;
    }
    const t = ((l2.p[0] - l1.p[0]) * l2.dir[1] - (l2.p[1] - l1.p[1]) * l2.dir[0]) / det;
    out.push([l1.p[0] + t * l1.dir[0], l1.p[1] + t * l1.dir[1]]);
  }
  return out;
}

/** Whether the pixel centre (x, y) lies inside the convex polygon or within `tol` pixels of its outline. */
function insideConvex(poly: Point[], x: number, y: number, tol: number, orientation: number): boolean {
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    const ex = b[0] - a[0];
    const ey = b[1] - a[1];
    const len = Math.hypot(ex, ey);
    if (len === 0) continue;
    const dist = (orientation * (ex * (y - a[1]) - ey * (x - a[0]))) / len;
    if (dist < -tol) return false;
  }
  return true;
}

/**
 * Mean of the probability map inside a box (PP-OCR's box_score_fast: the box's corners truncated
 * to whole pixels within its bounding rectangle, then the polygon filled, outline included).
 */
export function boxScore(map: Float32Array, width: number, height: number, box: Point[]): number {
  const clampI = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const xmin = clampI(Math.floor(Math.min(...xs)), width - 1);
  const xmax = clampI(Math.ceil(Math.max(...xs)), width - 1);
  const ymin = clampI(Math.floor(Math.min(...ys)), height - 1);
  const ymax = clampI(Math.ceil(Math.max(...ys)), height - 1);
  const poly = box.map((p): Point => [Math.trunc(p[0] - xmin) + xmin, Math.trunc(p[1] - ymin) + ymin]);
  const orientation = polygonArea(poly) >= 0 ? 1 : -1;
  let sum = 0;
  let count = 0;
  for (let y = ymin; y <= ymax; y++) {
    for (let x = xmin; x <= xmax; x++) {
      if (!insideConvex(poly, x, y, 0.5, orientation)) continue;
      sum += map[y * width + x]!;
      count++;
    }
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * The contours' point sets of a binary mask, as hull-equivalent pixel sets: each 8-connected
 * foreground component (outer borders), then each 4-connected background region that does not
 * touch the frame edge (holes), given by the foreground pixels 4-adjacent to it. Each set is
 * reduced to the first and last pixel of every row run, which keeps its convex hull.
 */
export function maskContours(mask: Uint8Array, width: number, height: number): Point[][] {
  const sets: Point[][] = [];
  const labels = new Int32Array(width * height).fill(-1);
  const stack: number[] = [];
  // Foreground components, 8-connected.
  const fill = (start: number, fg: boolean, eight: boolean, label: number): number[] => {
    const members: number[] = [];
    labels[start] = label;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      members.push(i);
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (!eight && dx !== 0 && dy !== 0) continue;
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const j = ny * width + nx;
          if (labels[j] !== -1 || (mask[j] !== 0) !== fg) continue;
          labels[j] = label;
          stack.push(j);
        }
      }
    }
    return members;
  };
  const runEnds = (pixels: number[]): Point[] => {
    const rows = new Map<number, [number, number]>();
    for (const i of pixels) {
      const x = i % width;
      const y = (i - x) / width;
      const r = rows.get(y);
      if (!r) rows.set(y, [x, x]);
      else {
        if (x < r[0]) r[0] = x;
        if (x > r[1]) r[1] = x;
      }
    }
    const pts: Point[] = [];
    for (const [y, [a, b]] of rows) {
      pts.push([a, y]);
      if (b !== a) pts.push([b, y]);
    }
    return pts;
  };
  let next = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && labels[i] === -1) sets.push(runEnds(fill(i, true, true, next++)));
  }
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 || labels[i] !== -1) continue;
    const region = fill(i, false, false, next++);
    let touchesEdge = false;
    const border = new Set<number>();
    for (const j of region) {
      const x = j % width;
      const y = (j - x) / width;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) {
        touchesEdge = true;
        break;
      }
      for (const k of [j - 1, j + 1, j - width, j + width]) if (mask[k] !== 0) border.add(k);
    }
    if (!touchesEdge && border.size > 0) sets.push(runEnds([...border]));
  }
  return sets;
}

/**
 * PP-OCR's DB post-processing of one probability map (`mapWidth` x `mapHeight`, values 0..1) into
 * boxes in a `frameWidth` x `frameHeight` frame.
 */
export function dbPostprocess(
  map: Float32Array,
  mapWidth: number,
  mapHeight: number,
  frameWidth: number,
  frameHeight: number,
  options: DbOptions = {},
): DbBox[] {
  const thresh = options.thresh ?? DB_DEFAULTS.thresh;
  const boxThresh = options.boxThresh ?? DB_DEFAULTS.boxThresh;
  const unclipRatio = options.unclipRatio ?? DB_DEFAULTS.unclipRatio;
  const maxCandidates = options.maxCandidates ?? DB_DEFAULTS.maxCandidates;
  const minSize = options.minSize ?? DB_DEFAULTS.minSize;
  const mask = new Uint8Array(mapWidth * mapHeight);
  for (let i = 0; i < mask.length; i++) mask[i] = map[i]! > thresh ? 1 : 0;
  const contours = maskContours(mask, mapWidth, mapHeight).slice(0, maxCandidates);
  const boxes: DbBox[] = [];
  const snapped = (r: RotatedRect) => ({
    corners: r.corners.map((p): Point => [snapHalf(p[0]), snapHalf(p[1])]),
    side: snapHalf(Math.min(r.width, r.height)),
  });
  for (const contour of contours) {
    const rect = snapped(minAreaRect(contour));
    if (rect.side < minSize) continue;
    const box = orderCorners(rect.corners);
    const score = boxScore(map, mapWidth, mapHeight, box);
    if (score < boxThresh) continue;
    const grown = snapped(minAreaRect(unclip(box, unclipRatio)));
    if (grown.side < minSize + 2) continue;
    const scaled = orderCorners(grown.corners).map(
      (p): Point => [
        Math.min(Math.max(roundHalfEven(snapHalf((p[0] / mapWidth) * frameWidth)), 0), frameWidth),
        Math.min(Math.max(roundHalfEven(snapHalf((p[1] / mapHeight) * frameHeight)), 0), frameHeight),
      ],
    );
    // predict_det's filter_tag_det_res: clip to the frame's last pixel, drop boxes 3 px or less across.
    const clipped = scaled.map((p): Point => [Math.min(p[0], frameWidth - 1), Math.min(p[1], frameHeight - 1)]);
    const w = Math.trunc(Math.hypot(clipped[1]![0] - clipped[0]![0], clipped[1]![1] - clipped[0]![1]));
    const h = Math.trunc(Math.hypot(clipped[3]![0] - clipped[0]![0], clipped[3]![1] - clipped[0]![1]));
    if (w <= 3 || h <= 3) continue;
    boxes.push({ points: clipped, score });
  }
  return boxes;
}

/**
 * The fraction of a `width` x `height` frame covered by the union of boxes (convex quadrilaterals):
 * pixels whose centre lies inside at least one box, over all pixels.
 */
export function coveredFraction(boxes: { points: Point[] }[], width: number, height: number): number {
  if (width <= 0 || height <= 0 || boxes.length === 0) return 0;
  const covered = new Uint8Array(width * height);
  for (const { points } of boxes) {
    if (points.length < 3) continue;
    const orientation = polygonArea(points) >= 0 ? 1 : -1;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const x0 = Math.max(0, Math.floor(Math.min(...xs)));
    const x1 = Math.min(width - 1, Math.ceil(Math.max(...xs)));
    const y0 = Math.max(0, Math.floor(Math.min(...ys)));
    const y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (insideConvex(points, x + 0.5, y + 0.5, 0, orientation)) covered[y * width + x] = 1;
      }
    }
  }
  let n = 0;
  for (let i = 0; i < covered.length; i++) n += covered[i]!;
  return n / covered.length;
}
