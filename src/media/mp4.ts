/**
 * ISO-BMFF (mp4/mov) helpers. ffmpeg cannot seek in a pipe, so an mp4 whose `moov` box
 * sits after `mdat` (ffmpeg's default output) cannot be decoded from stdin. Instead of a
 * temp file we move `moov` in front of `mdat` in memory and shift the chunk offsets, which
 * is what `qt-faststart` / `-movflags +faststart` do.
 */

interface Box {
  type: string;
  start: number;
  size: number;
  headerSize: number;
}

function readBoxes(buf: Uint8Array, start: number, end: number): Box[] | null {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const boxes: Box[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = view.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    let headerSize = 8;
    if (size === 1) {
      if (pos + 16 > end) return null;
      const big = view.getBigUint64(pos + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      size = Number(big);
      headerSize = 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < headerSize || pos + size > end) return null;
    boxes.push({ type, start: pos, size, headerSize });
    pos += size;
  }
  return pos === end ? boxes : null;
}

const TOP_LEVEL = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'uuid', 'pdin', 'meta', 'moof', 'mfra', 'styp', 'sidx']);

/** True when the buffer starts like an ISO-BMFF file (an `ftyp` box, or a known top-level box). */
export function isIsoBmff(buf: Uint8Array): boolean {
  if (buf.length < 8) return false;
  const type = String.fromCharCode(buf[4]!, buf[5]!, buf[6]!, buf[7]!);
  return TOP_LEVEL.has(type);
}

/** Boxes the offset rewrite walks at most, and how deep: past these a moov is not a clip's. */
const MAX_BOXES = 1_000_000;
const MAX_DEPTH = 32;

/**
 * How a clip can be fed to ffmpeg through a pipe. `fast-start`: as is, or with its moov moved
 * in front (`data`). `needs-file`: its moov follows the media but cannot be moved (a layout we
 * do not rewrite, boxes past the limits): ffmpeg must read it from a file it can seek in.
 */
export type PipeLayout = { kind: 'fast-start'; data: Buffer } | { kind: 'needs-file'; reason: string };

/**
 * Moves `moov` in front of the first `mdat`, adjusting `stco`/`co64` chunk offsets (what
 * `qt-faststart` does). Data that is not ISO-BMFF, or already fast-start, is returned as is.
 * Never throws: boxes are walked with an explicit stack, bounded in count and depth.
 */
export function pipeLayout(buf: Buffer): PipeLayout {
  if (!isIsoBmff(buf)) return { kind: 'fast-start', data: buf };
  const boxes = readBoxes(buf, 0, buf.length);
  // A truncated or odd top level: nothing to move that we can trust; ffmpeg says what is wrong.
  if (!boxes) return { kind: 'fast-start', data: buf };
  const moovIndex = boxes.findIndex((b) => b.type === 'moov');
  const mdatIndex = boxes.findIndex((b) => b.type === 'mdat');
  if (moovIndex < 0 || mdatIndex < 0 || moovIndex < mdatIndex) return { kind: 'fast-start', data: buf };
  if (boxes.filter((b) => b.type === 'moov').length !== 1) return { kind: 'needs-file', reason: 'it has several moov boxes' };

  const moov = boxes[moovIndex]!;
  const moovBytes = Buffer.from(buf.subarray(moov.start, moov.start + moov.size));
  // Everything from the first mdat up to the moov moves forward by the moov's size.
  const shiftFrom = boxes[mdatIndex]!.start;
  const shiftTo = moov.start;
  const problem = shiftOffsets(moovBytes, moov.headerSize, moov.size, moov.size, shiftFrom, shiftTo);
  if (problem) return { kind: 'needs-file', reason: problem };
  return {
    kind: 'fast-start',
    data: Buffer.concat([buf.subarray(0, shiftFrom), moovBytes, buf.subarray(shiftFrom, moov.start), buf.subarray(moov.start + moov.size)]),
  };
}

/**
 * `pipeLayout` for callers that only want bytes: the input unchanged when it cannot be
 * rewritten (ffmpeg then reports the real problem).
 */
export function toFastStart(buf: Buffer): Buffer {
  const layout = pipeLayout(buf);
  return layout.kind === 'fast-start' ? layout.data : buf;
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl']);

/** Shifts the chunk offsets inside a moov; returns why it cannot, or null when done. */
function shiftOffsets(moov: Buffer, start: number, end: number, delta: number, from: number, to: number): string | null {
  const stack: Array<[number, number, number]> = [[start, end, 1]];
  let visited = 0;
  while (stack.length > 0) {
    const [s, e, depth] = stack.pop()!;
    const boxes = readBoxes(moov, s, e);
    if (!boxes) return 'a box inside its moov runs past its parent';
    visited += boxes.length;
    if (visited > MAX_BOXES) return `its moov holds more than ${MAX_BOXES} boxes`;
    for (const box of boxes) {
      const body = box.start + box.headerSize;
      const boxEnd = box.start + box.size;
      if (CONTAINERS.has(box.type)) {
        if (depth >= MAX_DEPTH) return `its boxes nest deeper than ${MAX_DEPTH} levels`;
        stack.push([body, boxEnd, depth + 1]);
      } else if (box.type === 'stco' || box.type === 'co64') {
        const width = box.type === 'stco' ? 4 : 8;
        if (body + 8 > boxEnd) return `its ${box.type} box is cut short (${box.size} bytes)`;
        const count = moov.readUInt32BE(body + 4);
        if (body + 8 + count * width > boxEnd) return `its ${box.type} box lists ${count} offsets but holds fewer`;
        for (let i = 0; i < count; i++) {
          const at = body + 8 + i * width;
          if (width === 4) {
            const offset = moov.readUInt32BE(at);
            if (offset < from || offset >= to) continue;
            const moved = offset + delta;
            // Rewriting stco as co64 would change box sizes up the tree; such files are rare for clips.
            if (moved > 0xffffffff) return 'a chunk offset would not fit its stco after the move';
            moov.writeUInt32BE(moved, at);
          } else {
            const offset = moov.readBigUInt64BE(at);
            if (offset < BigInt(from) || offset >= BigInt(to)) continue;
            moov.writeBigUInt64BE(offset + BigInt(delta), at);
          }
        }
      }
    }
  }
  return null;
}

function findBox(buf: Uint8Array, start: number, end: number, type: string): Box | null {
  const boxes = readBoxes(buf, start, end);
  return boxes?.find((b) => b.type === type) ?? null;
}

/**
 * Frames of the first video track whose decode time falls in the first `windowSeconds`,
 * read from the `moov` index (mdhd timescale, stts durations, stsz count) without decoding.
 * A prediction only: callers must check it against what ffmpeg decoded. Null when the
 * buffer is not ISO-BMFF or has no readable video track (fragmented files, for instance).
 *
 * @example predictFrameCount(await readFile('a_0.mp4'), 10) // 250 for a 25 fps clip of 12 s
 */
export function predictFrameCount(buf: Uint8Array, windowSeconds: number): number | null {
  try {
    return predict(buf, windowSeconds);
  } catch {
    return null; // a box cut short: no prediction (the decode counts the frames instead)
  }
}

function predict(buf: Uint8Array, windowSeconds: number): number | null {
  if (!isIsoBmff(buf)) return null;
  const top = readBoxes(buf, 0, buf.length);
  const moov = top?.find((b) => b.type === 'moov');
  if (!moov) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const traks = readBoxes(buf, moov.start + moov.headerSize, moov.start + moov.size)?.filter((b) => b.type === 'trak') ?? [];
  for (const trak of traks) {
    const mdia = findBox(buf, trak.start + trak.headerSize, trak.start + trak.size, 'mdia');
    if (!mdia) continue;
    const mdiaBody = mdia.start + mdia.headerSize;
    const mdiaEnd = mdia.start + mdia.size;
    const hdlr = findBox(buf, mdiaBody, mdiaEnd, 'hdlr');
    if (!hdlr || String.fromCharCode(...buf.subarray(hdlr.start + hdlr.headerSize + 8, hdlr.start + hdlr.headerSize + 12)) !== 'vide') continue;
    const mdhd = findBox(buf, mdiaBody, mdiaEnd, 'mdhd');
    const minf = findBox(buf, mdiaBody, mdiaEnd, 'minf');
    if (!mdhd || !minf) return null;
    const stbl = findBox(buf, minf.start + minf.headerSize, minf.start + minf.size, 'stbl');
    if (!stbl) return null;
    const stts = findBox(buf, stbl.start + stbl.headerSize, stbl.start + stbl.size, 'stts');
    if (!stts) return null;
    const mdhdBody = mdhd.start + mdhd.headerSize;
    const timescale = view.getUint8(mdhdBody) === 1 ? view.getUint32(mdhdBody + 20) : view.getUint32(mdhdBody + 12);
    if (timescale === 0) return null;
    const limit = windowSeconds * timescale;
    const body = stts.start + stts.headerSize;
    const entries = view.getUint32(body + 4);
    if (body + 8 + entries * 8 > stts.start + stts.size) return null;
    let time = 0;
    let count = 0;
    for (let i = 0; i < entries; i++) {
      const n = view.getUint32(body + 8 + i * 8);
      const delta = view.getUint32(body + 12 + i * 8);
      if (delta === 0) {
        count += n;
        continue;
      }
      const fit = Math.max(0, Math.min(n, Math.ceil((limit - time) / delta)));
      count += fit;
      if (fit < n) return count;
      time += n * delta;
    }
    return count;
  }
  return null;
}
