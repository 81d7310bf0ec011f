import { createHash } from 'node:crypto';
import { extname } from 'node:path';

/** The longest name (one path component) file systems take, in bytes of UTF-8: ext4, xfs, btrfs, tmpfs, APFS. */
export const NAME_MAX = 255;

/**
 * Bytes kept free for what the jobs add to a name taken from a source: an extension, a clip's
 * `_<start>_<end>`, `.video.mp4`, `.lock`, a temp file's `.<name>.tmp-<pid>-<hex>`, a lock's
 * `.break` marker and its temp.
 */
const RESERVED = 96;

/**
 * A name taken from a source (a video's file name or stem, an id) made short enough for every
 * file derived from it (outputs, records, locks, temps) to stay within NAME_MAX: a name that
 * fits is returned unchanged; a longer one keeps its head (cut at a character boundary) and its
 * extension, and its tail is replaced by `~` and a hash of the whole name, so two long names
 * sharing a head still differ. Every job derives its file names through this one function.
 *
 * @example fitName('a'.repeat(246) + '.mp4') // 'aaaa…aaa~3f1c0d9e8a7b6c5d.mp4' (159 bytes)
 */
export function fitName(name: string, reserve = RESERVED): string {
  const max = NAME_MAX - reserve;
  if (Buffer.byteLength(name, 'utf8') <= max) return name;
  const ext = extname(name);
  const keep = ext.length > 1 && Buffer.byteLength(ext, 'utf8') <= 16 ? ext : '';
  const tail = `~${createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16)}${keep}`;
  const head = Buffer.from(name.slice(0, name.length - keep.length), 'utf8');
  let cut = max - Buffer.byteLength(tail, 'utf8');
  // Never split a UTF-8 sequence: back up to the first byte of the character at the cut.
  while (cut > 0 && (head[cut]! & 0xc0) === 0x80) cut--;
  return `${head.subarray(0, cut).toString('utf8')}${tail}`;
}
