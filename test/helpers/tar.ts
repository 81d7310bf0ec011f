import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface MemberSpec {
  name: string;
  data?: Buffer | string;
  type?: tar.Header['type'];
  linkname?: string;
}

/** Writes a real tar with tar-stream's pack; lets tests craft members no sane tool would make. */
export async function makeTar(path: string, members: MemberSpec[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const m of members) {
    const type = m.type ?? 'file';
    const data = type === 'file' ? Buffer.from(m.data ?? `data of ${m.name}`) : undefined;
    await new Promise<void>((resolve, reject) => {
      const header = { name: m.name, type, linkname: m.linkname, mtime: new Date(0), mode: type === 'directory' ? 0o755 : 0o644 };
      if (data) pack.entry({ ...header, size: data.length }, data, (err) => (err ? reject(err) : resolve()));
      else pack.entry({ ...header, size: 0 }, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
}

/** Start offset of each member's header and its data size, read from a ustar file (no pax/gnu headers). */
export function memberOffsets(buf: Buffer): { name: string; header: number; size: number }[] {
  const out: { name: string; header: number; size: number }[] = [];
  let off = 0;
  while (off + 512 <= buf.length && buf[off] !== 0) {
    const name = buf.toString('utf8', off, off + 100).replace(/\0.*$/s, '');
    const size = parseInt(
      buf
        .toString('ascii', off + 124, off + 136)
        .replace(/\0.*$/s, '')
        .trim(),
      8,
    );
    out.push({ name, header: off, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export async function withTmpDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-shards-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A ustar header written by hand (so tests can make what tar-stream's pack refuses to). */
export function ustarHeader(name: string, size: number, typeflag: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write(typeflag, 156, 'ascii');
  h.write('ustar\x0000', 257, 'latin1');
  setChecksum(h);
  return h;
}

export function setChecksum(h: Buffer, at = 0): void {
  h.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'ascii');
}

export function member(name: string, data: Buffer, typeflag = '0'): Buffer {
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([ustarHeader(name, data.length, typeflag), data, pad]);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);
