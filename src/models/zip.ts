import { inflateRawSync } from 'node:zlib';
import { weightsFileError as fail } from './pickle.js';

/** One member of a zip archive, read on demand. */
export interface ZipMember {
  name: string;
  size: number;
  read(): Uint8Array;
}

/**
 * Lists the members of a zip archive held in memory (what `torch.save` writes: stored members,
 * zip64 records for big files). Only stored and deflated members are read; CRCs are not checked,
 * the file's sha256 is.
 *
 * @example
 * const members = readZip(await readFile('vggish.pth'), 'vggish.pth');
 * members.get('archive/data.pkl')!.read();
 */
export function readZip(bytes: Uint8Array, where: string): Map<string, ZipMember> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail(where, 'not a readable zip archive: no end-of-central-directory record (truncated download?)');
  let count = view.getUint16(eocd + 10, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = Number(view.getBigUint64(eocd - 12, true));
    if (z64 + 56 > bytes.byteLength || view.getUint32(z64, true) !== 0x06064b50) throw fail(where, 'corrupt zip64 end-of-central-directory record');
    count = Number(view.getBigUint64(z64 + 32, true));
    cdOffset = Number(view.getBigUint64(z64 + 48, true));
  }
  const utf8 = new TextDecoder();
  const members = new Map<string, ZipMember>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.byteLength || view.getUint32(p, true) !== 0x02014b50) throw fail(where, `corrupt zip central directory at byte ${p}`);
    const method = view.getUint16(p + 10, true);
    let compressed = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let local = view.getUint32(p + 42, true);
    const name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extra field: the 64-bit values present are those whose 32-bit fields are 0xffffffff, in this order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) {
          size = Number(view.getBigUint64(q, true));
          q += 8;
        }
        if (compressed === 0xffffffff) {
          compressed = Number(view.getBigUint64(q, true));
          q += 8;
        }
        if (local === 0xffffffff) local = Number(view.getBigUint64(q, true));
      }
      e += 4 + len;
    }
    p += 46 + nameLen + extraLen + commentLen;
    const member: ZipMember = {
      name,
      size,
      read() {
        if (local + 30 > bytes.byteLength || view.getUint32(local, true) !== 0x04034b50) throw fail(where, `corrupt zip: no local header for ${name}`);
        const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
        if (start + compressed > bytes.byteLength)
          throw fail(where, `truncated zip: member ${name} needs ${compressed} bytes at ${start}, the file has ${bytes.byteLength}`);
        const raw = bytes.subarray(start, start + compressed);
        if (method === 0) return raw;
        if (method === 8) return inflateRawSync(raw);
        throw fail(where, `zip member ${name} uses compression method ${method}; only stored (0) and deflate (8) are read`);
      },
    };
    members.set(name, member);
  }
  return members;
}
