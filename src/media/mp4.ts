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
 * read from the index without decoding: the `moov` sample table (mdhd timescale, stts
 * durations) and, in a fragmented file (`-movflags frag_keyframe+empty_moov`, CMAF, joined
 * DASH segments), every `moof`'s `trun` for that track. A prediction only: callers must check it
 * against what ffmpeg decoded. Null when the buffer is not ISO-BMFF, has no readable video
 * track, or its index lists no video sample (never 0 from an empty `moov`).
 *
 * @example predictFrameCount(await readFile('a_0.mp4'), 10) // 250 for a 25 fps clip of 12 s
 */
export function predictFrameCount(buf: Uint8Array, windowSeconds: number): number | null {
  const track = readVideoTimeline(buf);
  if (!track || track.samples === 0) return null;
  const limit = windowSeconds * track.timescale;
  let count = 0;
  for (const run of track.runs) {
    const time = run.start - track.origin;
    if (run.delta === 0) {
      if (time < limit) count += run.count;
      continue;
    }
    const fit = Math.max(0, Math.min(run.count, Math.ceil((limit - time) / run.delta)));
    count += fit;
  }
  return count;
}

/** What the index of an ISO-BMFF file says about its first video track. */
export interface Mp4VideoFacts {
  /** The file carries its samples in `moof` fragments (its `moov` may list none). */
  fragmented: boolean;
  /** Video samples listed in the `moov` and all fragments. */
  samples: number;
  /** Decode-time span of those samples in seconds (the last sample's duration included). */
  durationSeconds: number;
}

/**
 * The first video track's sample count and span from the index (fragments included). ffmpeg
 * reading a fragmented file through a pipe reports the first fragment's length as the
 * duration; this is the whole file's. Null when not ISO-BMFF or no video track is readable.
 */
export function mp4VideoFacts(buf: Uint8Array): Mp4VideoFacts | null {
  const track = readVideoTimeline(buf);
  if (!track) return null;
  let end = track.origin;
  for (const run of track.runs) end = Math.max(end, run.start + run.count * run.delta);
  return { fragmented: track.fragmented, samples: track.samples, durationSeconds: (end - track.origin) / track.timescale };
}

const IDENTITY = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000];

/** The 3×3 matrix of an `mvhd` or `tkhd` box (a, b, u, c, d, v, x, y, w: 16.16 fixed point, u/v/w 2.30), or null when cut short. */
function boxMatrix(view: DataView, box: Box, offsetV0: number, offsetV1: number): number[] | null {
  const body = box.start + box.headerSize;
  const at = body + (view.getUint8(body) === 1 ? offsetV1 : offsetV0);
  if (at + 36 > box.start + box.size) return null;
  return Array.from({ length: 9 }, (_, i) => view.getInt32(at + 4 * i));
}

/**
 * The display matrix ffmpeg's mov demuxer gives the first video track (AV_PKT_DATA_DISPLAYMATRIX):
 * its `tkhd` matrix times the `mvhd` one, in the same fixed-point arithmetic; null when that is
 * the identity (ffmpeg then sets none), or when the buffer is not ISO-BMFF or has no video track.
 *
 * @example mp4DisplayMatrix(phoneClip) // [0, 65536, 0, -65536, 0, 0, 0, 0, 1073741824]: a quarter turn clockwise
 */
export function mp4DisplayMatrix(buf: Uint8Array): number[] | null {
  try {
    if (!isIsoBmff(buf)) return null;
    const moov = readBoxes(buf, 0, buf.length)?.find((b) => b.type === 'moov');
    if (!moov) return null;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const boxes = readBoxes(buf, moov.start + moov.headerSize, moov.start + moov.size) ?? [];
    const mvhd = boxes.find((b) => b.type === 'mvhd');
    const movie = (mvhd && boxMatrix(view, mvhd, 36, 48)) ?? IDENTITY;
    const video = firstVideoTrak(buf, boxes);
    if (!video) return null;
    const track = boxMatrix(view, video.tkhd, 40, 52);
    if (!track) return null;
    // res[i][j] = Σe track[i][e] · movie[e][j] >> (16, 16, 30 by e), as mov_read_tkhd computes it.
    const shift = [16n, 16n, 30n];
    const res = Array.from({ length: 9 }, (_, k) => {
      const [i, j] = [Math.floor(k / 3), k % 3];
      let sum = 0n;
      for (let e = 0; e < 3; e++) sum += (BigInt(track[i * 3 + e]!) * BigInt(movie[e * 3 + j]!)) >> shift[e]!;
      return Number(BigInt.asIntN(32, sum));
    });
    return res.every((v, k) => v === IDENTITY[k]) ? null : res;
  } catch {
    return null; // a box cut short: ffmpeg's own autorotation decides
  }
}

/** Consecutive samples of equal duration starting at decode time `start` (track timescale). */
interface SampleRun {
  start: number;
  count: number;
  delta: number;
}

interface VideoTimeline {
  timescale: number;
  /** Decode time of the first sample (a DASH segment's tfdt need not start at 0). */
  origin: number;
  runs: SampleRun[];
  samples: number;
  fragmented: boolean;
}

function readVideoTimeline(buf: Uint8Array): VideoTimeline | null {
  try {
    return videoTimeline(buf);
  } catch {
    return null; // a box cut short: no prediction (the decode counts the frames instead)
  }
}

/** The video track of a moov: its id, timescale, stts runs and its trex default duration. */
/** The `tkhd` and `mdia` of a moov's first video track (the first `trak` whose handler is `vide`). */
function firstVideoTrak(buf: Uint8Array, moovBoxes: readonly Box[]): { tkhd: Box; mdia: Box } | null {
  for (const trak of moovBoxes.filter((b) => b.type === 'trak')) {
    const mdia = findBox(buf, trak.start + trak.headerSize, trak.start + trak.size, 'mdia');
    const tkhd = findBox(buf, trak.start + trak.headerSize, trak.start + trak.size, 'tkhd');
    if (!mdia || !tkhd) continue;
    const hdlr = findBox(buf, mdia.start + mdia.headerSize, mdia.start + mdia.size, 'hdlr');
    if (hdlr && String.fromCharCode(...buf.subarray(hdlr.start + hdlr.headerSize + 8, hdlr.start + hdlr.headerSize + 12)) === 'vide') return { tkhd, mdia };
  }
  return null;
}

function videoTrack(buf: Uint8Array, view: DataView, moov: Box): { id: number; timescale: number; runs: SampleRun[]; defaultDuration: number } | null {
  const moovBoxes = readBoxes(buf, moov.start + moov.headerSize, moov.start + moov.size) ?? [];
  const video = firstVideoTrak(buf, moovBoxes);
  if (!video) return null;
  const { tkhd, mdia } = video;
  const mdiaBody = mdia.start + mdia.headerSize;
  const mdiaEnd = mdia.start + mdia.size;
  const mdhd = findBox(buf, mdiaBody, mdiaEnd, 'mdhd');
  const minf = findBox(buf, mdiaBody, mdiaEnd, 'minf');
  if (!mdhd || !minf) return null;
  const stbl = findBox(buf, minf.start + minf.headerSize, minf.start + minf.size, 'stbl');
  if (!stbl) return null;
  const stts = findBox(buf, stbl.start + stbl.headerSize, stbl.start + stbl.size, 'stts');
  if (!stts) return null;
  const tkhdBody = tkhd.start + tkhd.headerSize;
  const id = view.getUint32(tkhdBody + (view.getUint8(tkhdBody) === 1 ? 20 : 12));
  const mdhdBody = mdhd.start + mdhd.headerSize;
  const timescale = view.getUint8(mdhdBody) === 1 ? view.getUint32(mdhdBody + 20) : view.getUint32(mdhdBody + 12);
  if (timescale === 0) return null;
  const body = stts.start + stts.headerSize;
  const entries = view.getUint32(body + 4);
  if (body + 8 + entries * 8 > stts.start + stts.size) return null;
  const runs: SampleRun[] = [];
  let time = 0;
  for (let i = 0; i < entries; i++) {
    const count = view.getUint32(body + 8 + i * 8);
    const delta = view.getUint32(body + 12 + i * 8);
    runs.push({ start: time, count, delta });
    time += count * delta;
  }
  let defaultDuration = 0;
  const mvex = moovBoxes.find((b) => b.type === 'mvex');
  for (const trex of mvex ? (readBoxes(buf, mvex.start + mvex.headerSize, mvex.start + mvex.size) ?? []) : []) {
    const b = trex.start + trex.headerSize;
    if (trex.type === 'trex' && trex.size >= trex.headerSize + 20 && view.getUint32(b + 4) === id) defaultDuration = view.getUint32(b + 12);
  }
  return { id, timescale, runs, defaultDuration };
}

function videoTimeline(buf: Uint8Array): VideoTimeline | null {
  if (!isIsoBmff(buf)) return null;
  const top = readBoxes(buf, 0, buf.length);
  const moov = top?.find((b) => b.type === 'moov');
  if (!top || !moov) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const track = videoTrack(buf, view, moov);
  if (!track) return null;
  const runs = track.runs;
  let time = runs.reduce((t, r) => Math.max(t, r.start + r.count * r.delta), 0);
  let fragmented = false;
  for (const moof of top.filter((b) => b.type === 'moof')) {
    fragmented = true;
    for (const traf of readBoxes(buf, moof.start + moof.headerSize, moof.start + moof.size) ?? []) {
      if (traf.type !== 'traf') continue;
      const parts = readBoxes(buf, traf.start + traf.headerSize, traf.start + traf.size) ?? [];
      const tfhd = parts.find((b) => b.type === 'tfhd');
      if (!tfhd) continue;
      const h = tfhd.start + tfhd.headerSize;
      const hFlags = view.getUint32(h) & 0xffffff;
      if (view.getUint32(h + 4) !== track.id) continue;
      // tfhd's optional fields, in order: base data offset (8), sample description index (4), default duration (4).
      let at = h + 8 + (hFlags & 0x1 ? 8 : 0) + (hFlags & 0x2 ? 4 : 0);
      const defaultDuration = hFlags & 0x8 ? view.getUint32(at) : track.defaultDuration;
      const tfdt = parts.find((b) => b.type === 'tfdt');
      if (tfdt) {
        const t = tfdt.start + tfdt.headerSize;
        time = view.getUint8(t) === 1 ? Number(view.getBigUint64(t + 4)) : view.getUint32(t + 4);
      }
      for (const trun of parts.filter((b) => b.type === 'trun')) {
        const r = trun.start + trun.headerSize;
        const flags = view.getUint32(r) & 0xffffff;
        const count = view.getUint32(r + 4);
        at = r + 8 + (flags & 0x1 ? 4 : 0) + (flags & 0x4 ? 4 : 0);
        if (!(flags & 0x100)) {
          runs.push({ start: time, count, delta: defaultDuration });
          time += count * defaultDuration;
          continue;
        }
        // Per-sample records: duration, size, flags, composition offset, each present per its flag.
        const stride = 4 * [0x100, 0x200, 0x400, 0x800].filter((f) => flags & f).length;
        if (at + count * stride > trun.start + trun.size) return null;
        for (let i = 0; i < count; i++, at += stride) {
          const delta = view.getUint32(at);
          const last = runs[runs.length - 1];
          if (last && last.delta === delta && last.start + last.count * last.delta === time) last.count++;
          else runs.push({ start: time, count: 1, delta });
          time += delta;
        }
      }
    }
  }
  const listed = runs.filter((r) => r.count > 0);
  const samples = listed.reduce((n, r) => n + r.count, 0);
  const origin = listed.reduce((t, r) => Math.min(t, r.start), listed[0]?.start ?? 0);
  return { timescale: track.timescale, origin, runs: listed, samples, fragmented };
}
