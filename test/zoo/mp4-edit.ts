/**
 * In-place edits of ffmpeg-written mp4 files for the zoo: what phones, editors and broken muxers
 * put in real files but ffmpeg cannot be asked to write (display matrices, edit lists that delay
 * or skip, lying durations, 64-bit box headers). Files must have moov after mdat (ffmpeg's
 * default) where a box grows, so no chunk offset moves unless this code moves it.
 */
import { readFile, writeFile } from 'node:fs/promises';

interface Range {
  /** Box header start. */
  at: number;
  /** Payload start and end. */
  start: number;
  end: number;
}

/** The boxes at `path` below [start, end); 32-bit and 64-bit sizes. */
export function boxes(buf: Buffer, start: number, end: number, path: string[]): Range[] {
  const found: Range[] = [];
  for (let p = start; p + 8 <= end; ) {
    let size = buf.readUInt32BE(p);
    let head = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(p + 8));
      head = 16;
    } else if (size === 0) size = end - p;
    if (size < head) break;
    if (buf.toString('latin1', p + 4, p + 8) === path[0]) {
      if (path.length === 1) found.push({ at: p, start: p + head, end: p + size });
      else found.push(...boxes(buf, p + head, p + size, path.slice(1)));
    }
    p += size;
  }
  return found;
}

function moovOf(buf: Buffer, file: string): Range {
  const moov = boxes(buf, 0, buf.length, ['moov'])[0];
  if (!moov) throw new Error(`zoo: ${file} has no moov`);
  return moov;
}

function trackOf(buf: Buffer, file: string, handler: 'vide' | 'soun'): Range {
  const moov = moovOf(buf, file);
  const trak = boxes(buf, moov.start, moov.end, ['trak']).find((t) => {
    const h = boxes(buf, t.start, t.end, ['mdia', 'hdlr'])[0];
    return h && buf.toString('latin1', h.start + 8, h.start + 12) === handler;
  });
  if (!trak) throw new Error(`zoo: ${file} has no ${handler} track`);
  return trak;
}

/** A full box's version-dependent field: offset of a u32/u64 after version+flags. */
function readTimed(buf: Buffer, box: Range, v0: number, v1: number): number {
  return buf[box.start] === 1 ? Number(buf.readBigUInt64BE(box.start + v1)) : buf.readUInt32BE(box.start + v0);
}
function writeTimed(buf: Buffer, box: Range, v0: number, v1: number, value: number): void {
  if (buf[box.start] === 1) buf.writeBigUInt64BE(BigInt(value), box.start + v1);
  else buf.writeUInt32BE(value, box.start + v0);
}

/**
 * Sets the display matrix of the video track (tkhd) as phones do: `rotation` is the clockwise
 * turn a player applies (the old `rotate` tag; ffprobe's side data says minus this).
 */
export async function setMp4Rotation(file: string, rotation: 90 | 180 | 270, coded: { width: number; height: number }): Promise<void> {
  const buf = await readFile(file);
  const one = 0x10000;
  const [a, b, c, d, x, y] =
    rotation === 90
      ? [0, one, -one, 0, coded.height * one, 0]
      : rotation === 180
        ? [-one, 0, 0, -one, coded.width * one, coded.height * one]
        : [0, -one, one, 0, 0, coded.width * one];
  const trak = trackOf(buf, file, 'vide');
  const tkhd = boxes(buf, trak.start, trak.end, ['tkhd'])[0]!;
  const at = tkhd.start + (buf[tkhd.start] === 1 ? 52 : 40);
  [a, b, 0, c, d, 0, x, y, 0x40000000].forEach((m, i) => buf.writeInt32BE(m, at + 4 * i));
  await writeFile(file, buf);
}

export interface Edit {
  /** Segment length in the movie timescale. */
  duration: number;
  /** Start in the track's media timescale; -1 for an empty edit (a delay). */
  mediaTime: number;
  rate: number;
}

/**
 * Rewrites one track's edit list (elst) through `change`, which gets the current entries and
 * the movie and media timescales.
 */
export async function rewriteEditList(
  file: string,
  handler: 'vide' | 'soun',
  change: (edits: Edit[], timescale: { movie: number; media: number }) => Edit[],
): Promise<void> {
  const buf = await readFile(file);
  const moov = moovOf(buf, file);
  if (boxes(buf, moov.end, buf.length, ['mdat']).length) throw new Error(`zoo: ${file} has moov before mdat`);
  const mvhd = boxes(buf, moov.start, moov.end, ['mvhd'])[0]!;
  const trak = trackOf(buf, file, handler);
  const mdhd = boxes(buf, trak.start, trak.end, ['mdia', 'mdhd'])[0]!;
  const timescale = { movie: readTimed(buf, mvhd, 12, 20), media: readTimed(buf, mdhd, 12, 20) };
  const edits: Edit[] = [];
  const edts = boxes(buf, trak.start, trak.end, ['edts'])[0];
  let cut = { from: boxes(buf, trak.start, trak.end, ['tkhd'])[0]!.end, to: 0 };
  cut.to = cut.from;
  if (edts) {
    cut = { from: edts.at, to: edts.end };
    const elst = boxes(buf, edts.start, edts.end, ['elst'])[0]!;
    const v1 = buf[elst.start] === 1;
    for (let i = 0, n = buf.readUInt32BE(elst.start + 4), p = elst.start + 8; i < n; i++, p += v1 ? 20 : 12) {
      edits.push(
        v1
          ? { duration: Number(buf.readBigUInt64BE(p)), mediaTime: Number(buf.readBigInt64BE(p + 8)), rate: buf.readInt32BE(p + 16) }
          : { duration: buf.readUInt32BE(p), mediaTime: buf.readInt32BE(p + 4), rate: buf.readInt32BE(p + 8) },
      );
    }
  }
  const next = change(edits, timescale);
  const elst = Buffer.alloc(16 + 12 * next.length);
  elst.writeUInt32BE(elst.length, 0);
  elst.write('elst', 4, 'latin1');
  elst.writeUInt32BE(next.length, 12);
  next.forEach((e, i) => {
    elst.writeUInt32BE(e.duration, 16 + 12 * i);
    elst.writeInt32BE(e.mediaTime, 20 + 12 * i);
    elst.writeInt32BE(e.rate, 24 + 12 * i);
  });
  const box = Buffer.concat([Buffer.alloc(8), elst]);
  box.writeUInt32BE(box.length, 0);
  box.write('edts', 4, 'latin1');
  const delta = box.length - (cut.to - cut.from);
  const out = Buffer.concat([buf.subarray(0, cut.from), box, buf.subarray(cut.to)]);
  for (const parent of [trak, moov]) {
    if (buf.readUInt32BE(parent.at) === 1) throw new Error(`zoo: ${file} has a 64-bit ${parent === moov ? 'moov' : 'trak'}`);
    out.writeUInt32BE(buf.readUInt32BE(parent.at) + delta, parent.at);
  }
  await writeFile(file, out);
}

/** Delays one track by `seconds` with an empty edit before its own, as editors write it. */
export function delayMp4Track(file: string, handler: 'vide' | 'soun', seconds: number): Promise<void> {
  return rewriteEditList(file, handler, (edits, ts) => [{ duration: Math.round(seconds * ts.movie), mediaTime: -1, rate: 0x10000 }, ...edits]);
}

/** Makes the edit list skip the first `seconds` of one track's media (the track's own start stays at 0). */
export function skipMp4Media(file: string, handler: 'vide' | 'soun', seconds: number): Promise<void> {
  return rewriteEditList(file, handler, (edits, ts) => {
    if (edits.length !== 1) throw new Error(`zoo: ${file} ${handler} has ${edits.length} edits, expected 1`);
    const e = edits[0]!;
    return [{ duration: e.duration - Math.round(seconds * ts.movie), mediaTime: e.mediaTime + Math.round(seconds * ts.media), rate: e.rate }];
  });
}

/** Multiplies the durations in mvhd and in every track's tkhd and mdhd (the sample tables stay true). */
export async function inflateMp4Durations(file: string, factor: number): Promise<void> {
  const buf = await readFile(file);
  const moov = moovOf(buf, file);
  const mvhd = boxes(buf, moov.start, moov.end, ['mvhd'])[0]!;
  writeTimed(buf, mvhd, 16, 24, readTimed(buf, mvhd, 16, 24) * factor);
  for (const trak of boxes(buf, moov.start, moov.end, ['trak'])) {
    const tkhd = boxes(buf, trak.start, trak.end, ['tkhd'])[0]!;
    writeTimed(buf, tkhd, 20, 28, readTimed(buf, tkhd, 20, 28) * factor);
    const mdhd = boxes(buf, trak.start, trak.end, ['mdia', 'mdhd'])[0]!;
    writeTimed(buf, mdhd, 16, 24, readTimed(buf, mdhd, 16, 24) * factor);
    for (const edts of boxes(buf, trak.start, trak.end, ['edts', 'elst'])) {
      const v1 = buf[edts.start] === 1;
      for (let i = 0, n = buf.readUInt32BE(edts.start + 4), p = edts.start + 8; i < n; i++, p += v1 ? 20 : 12) {
        if (v1) buf.writeBigUInt64BE(buf.readBigUInt64BE(p) * BigInt(factor), p);
        else buf.writeUInt32BE(buf.readUInt32BE(p) * factor, p);
      }
    }
  }
  await writeFile(file, buf);
}

/**
 * Rewrites the mdat header with a 64-bit size (size field 1, then a u64), as muxers do for
 * files over 4 GiB, shifting the media by 8 bytes and every chunk offset (stco/co64) with it.
 */
export async function largeMdatHeader(file: string): Promise<void> {
  const buf = await readFile(file);
  const mdat = boxes(buf, 0, buf.length, ['mdat'])[0];
  if (!mdat || mdat.start - mdat.at !== 8) throw new Error(`zoo: ${file} has no 32-bit mdat`);
  const moov = moovOf(buf, file);
  if (moov.at < mdat.at) throw new Error(`zoo: ${file} has moov before mdat`);
  const head = Buffer.alloc(16);
  head.writeUInt32BE(1, 0);
  head.write('mdat', 4, 'latin1');
  head.writeBigUInt64BE(BigInt(mdat.end - mdat.at + 8), 8);
  const out = Buffer.concat([buf.subarray(0, mdat.at), head, buf.subarray(mdat.start)]);
  const shifted = moov.at + 8;
  const newMoov = boxes(out, shifted, out.length, ['moov'])[0]!;
  for (const trak of boxes(out, newMoov.start, newMoov.end, ['trak'])) {
    for (const stco of boxes(out, trak.start, trak.end, ['mdia', 'minf', 'stbl', 'stco'])) {
      for (let i = 0, n = out.readUInt32BE(stco.start + 4); i < n; i++) out.writeUInt32BE(out.readUInt32BE(stco.start + 8 + 4 * i) + 8, stco.start + 8 + 4 * i);
    }
    for (const co64 of boxes(out, trak.start, trak.end, ['mdia', 'minf', 'stbl', 'co64'])) {
      for (let i = 0, n = out.readUInt32BE(co64.start + 4); i < n; i++)
        out.writeBigUInt64BE(out.readBigUInt64BE(co64.start + 8 + 8 * i) + 8n, co64.start + 8 + 8 * i);
    }
  }
  await writeFile(file, out);
}
