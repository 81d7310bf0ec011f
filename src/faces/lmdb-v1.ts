/**
 * Writes an LMDB environment in LMDB 0.9's on-disk format (data version 1), the one py-lmdb
 * and most other LMDB bindings read. lmdb-js (which we use for transactional staging) writes
 * data version 2, which py-lmdb rejects with MDB_INVALID, so the final store is bulk-written
 * here from sorted entries: leaves and overflow pages streamed to disk in key order, then the
 * branch levels, then the two meta pages. Only one key per leaf page is kept in memory.
 *
 * Layout facts (mdb.c, 64-bit): page header 16 bytes (pgno u64, pad u16, flags u16,
 * lower u16, upper u16 — or overflow page count u32); node header 8 bytes (lo u16, hi u16,
 * flags u16, ksize u16) then key then data; nodes are laid from the page end downwards at even
 * sizes; values whose node would exceed `nodemax` go to overflow pages (F_BIGDATA, data = pgno).
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { tempPathFor } from '../util/atomic.js';

const PSIZE = 4096;
const PAGEHDRSZ = 16;
const NODESIZE = 8;
/** mdb.c: ((psize - PAGEHDRSZ) / MDB_MINKEYS) & -2) - sizeof(indx_t), with MDB_MINKEYS = 2. */
const NODEMAX = (((PSIZE - PAGEHDRSZ) / 2) & -2) - 2;
/** LMDB's default compile-time maximum key size. */
export const LMDB_MAX_KEY = 511;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const F_BIGDATA = 0x01;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 1;
const P_INVALID = 0xffffffffffffffffn;

const even = (n: number) => (n + 1) & ~1;

interface PageBuilder {
  nodes: Buffer[];
  lower: number;
  upper: number;
  firstKey: Buffer | null;
}

const newPage = (): PageBuilder => ({ nodes: [], lower: PAGEHDRSZ, upper: PSIZE, firstKey: null });

function pageBytes(pgno: number, flags: number, page: PageBuilder): Buffer {
  const buf = Buffer.alloc(PSIZE);
  buf.writeBigUInt64LE(BigInt(pgno), 0);
  buf.writeUInt16LE(flags, 10);
  buf.writeUInt16LE(page.lower, 12);
  buf.writeUInt16LE(page.upper, 14);
  let top = PSIZE;
  page.nodes.forEach((node, i) => {
    top -= node.length;
    node.copy(buf, top);
    buf.writeUInt16LE(top, PAGEHDRSZ + 2 * i);
  });
  return buf;
}

function fits(page: PageBuilder, nodeSize: number): boolean {
  return page.lower + 2 + nodeSize <= page.upper;
}

function add(page: PageBuilder, node: Buffer, key: Buffer): void {
  if (page.firstKey === null) page.firstKey = key;
  page.nodes.push(node);
  page.lower += 2;
  page.upper -= node.length;
}

function branchNode(key: Buffer, pgno: number): Buffer {
  const node = Buffer.alloc(even(NODESIZE + key.length));
  node.writeUInt16LE(pgno & 0xffff, 0);
  node.writeUInt16LE(Math.floor(pgno / 0x10000) & 0xffff, 2);
  node.writeUInt16LE(Math.floor(pgno / 0x100000000) & 0xffff, 4);
  node.writeUInt16LE(key.length, 6);
  key.copy(node, NODESIZE);
  return node;
}

/** The map size recorded for a store of `bytes`: 4× its size rounded up to a MiB, at least 1 GiB. */
export function mapSizeFor(bytes: number): number {
  return Math.max(1 << 30, Math.ceil((4 * bytes) / (1 << 20)) * (1 << 20));
}

export interface LmdbV1Summary {
  entries: number;
  depth: number;
  leafPages: number;
  branchPages: number;
  overflowPages: number;
  bytes: number;
}

/**
 * Writes `dir/data.mdb` from entries in strictly increasing byte order of keys (as LMDB's
 * default comparator: memcmp, shorter first on a tie). The file appears whole or not at all.
 *
 * @example
 * await writeLmdbV1('out/faces.lmdb', [[Buffer.from('a/000000'), jpeg], [Buffer.from('a/meta'), json]]);
 * // Python: lmdb.open('out/faces.lmdb', readonly=True, lock=False)
 */
export async function writeLmdbV1(dir: string, entries: Iterable<[Buffer, Buffer]> | AsyncIterable<[Buffer, Buffer]>): Promise<LmdbV1Summary> {
  await mkdir(dir, { recursive: true });
  const finalPath = join(dir, 'data.mdb');
  const tmp = tempPathFor(finalPath);
  const fh = await open(tmp, 'w');
  let nextPg = 2;
  const summary: LmdbV1Summary = { entries: 0, depth: 0, leafPages: 0, branchPages: 0, overflowPages: 0, bytes: 0 };
  const write = (buf: Buffer, pgno: number) => fh.write(buf, 0, buf.length, pgno * PSIZE);
  try {
    let level: Array<{ key: Buffer; pgno: number }> = [];
    let leaf = newPage();
    let previous: Buffer | null = null;
    const flushLeaf = async () => {
      if (leaf.nodes.length === 0) return;
      const pgno = nextPg++;
      await write(pageBytes(pgno, P_LEAF, leaf), pgno);
      level.push({ key: leaf.firstKey!, pgno });
      summary.leafPages++;
      leaf = newPage();
    };
    for await (const [key, value] of entries) {
      if (key.length === 0 || key.length > LMDB_MAX_KEY) {
        throw new ClipstreamError('ERR_IO', `LMDB key '${key.toString('utf8').slice(0, 80)}' is ${key.length} bytes; keys must be 1 to ${LMDB_MAX_KEY} bytes`, {
          where: { file: finalPath },
        });
      }
      if (previous && Buffer.compare(previous, key) >= 0) {
        throw new ClipstreamError(
          'ERR_IO',
          `LMDB keys must be written in increasing order: '${key.toString('utf8')}' came after '${previous.toString('utf8')}'`,
          { where: { file: finalPath } },
        );
      }
      previous = key;
      const big = NODESIZE + key.length + value.length > NODEMAX;
      const node = Buffer.alloc(even(NODESIZE + key.length + (big ? 8 : value.length)));
      node.writeUInt16LE(value.length & 0xffff, 0);
      node.writeUInt16LE(value.length >>> 16, 2);
      node.writeUInt16LE(big ? F_BIGDATA : 0, 4);
      node.writeUInt16LE(key.length, 6);
      key.copy(node, NODESIZE);
      if (big) {
        const pages = Math.floor((PAGEHDRSZ - 1 + value.length) / PSIZE) + 1;
        const pgno = nextPg;
        nextPg += pages;
        const ov = Buffer.alloc(pages * PSIZE);
        ov.writeBigUInt64LE(BigInt(pgno), 0);
        ov.writeUInt16LE(P_OVERFLOW, 10);
        ov.writeUInt32LE(pages, 12);
        value.copy(ov, PAGEHDRSZ);
        await write(ov, pgno);
        summary.overflowPages += pages;
        node.writeBigUInt64LE(BigInt(pgno), NODESIZE + key.length);
      } else {
        value.copy(node, NODESIZE + key.length);
      }
      if (!fits(leaf, node.length)) await flushLeaf();
      add(leaf, node, key);
      summary.entries++;
    }
    await flushLeaf();

    let root: bigint = P_INVALID;
    if (level.length > 0) {
      summary.depth = 1;
      while (level.length > 1) {
        const up: typeof level = [];
        let page = newPage();
        const flush = async () => {
          const pgno = nextPg++;
          await write(pageBytes(pgno, P_BRANCH, page), pgno);
          up.push({ key: page.firstKey!, pgno });
          summary.branchPages++;
          page = newPage();
        };
        for (const item of level) {
          // The first key of a branch page is implicit (LMDB searches from index 1), so it is stored empty.
          let node = branchNode(page.nodes.length === 0 ? Buffer.alloc(0) : item.key, item.pgno);
          if (!fits(page, node.length)) {
            await flush();
            node = branchNode(Buffer.alloc(0), item.pgno);
          }
          add(page, node, item.key);
        }
        await flush();
        level = up;
        summary.depth++;
      }
      root = BigInt(level[0]!.pgno);
    }

    const lastPg = nextPg - 1;
    // Generous: tools that rebuild the store by inserts (mdb_dump | mdb_load, a writer opening it
    // with py-lmdb) need room for half-full pages and copy-on-write, and read the map size from
    // here. It is address space, not disk: the file stays its own size.
    const mapsize = mapSizeFor(nextPg * PSIZE);
    for (const pgno of [0, 1]) {
      const meta = Buffer.alloc(PSIZE);
      meta.writeBigUInt64LE(BigInt(pgno), 0);
      meta.writeUInt16LE(P_META, 10);
      const m = PAGEHDRSZ;
      meta.writeUInt32LE(MDB_MAGIC, m);
      meta.writeUInt32LE(MDB_DATA_VERSION, m + 4);
      meta.writeBigUInt64LE(0n, m + 8); // mm_address
      meta.writeBigUInt64LE(BigInt(mapsize), m + 16);
      // FREE_DBI: md_pad holds the page size; empty tree.
      const free = m + 24;
      meta.writeUInt32LE(PSIZE, free);
      meta.writeBigUInt64LE(P_INVALID, free + 40);
      // MAIN_DBI.
      const main = m + 72;
      meta.writeUInt16LE(summary.depth, main + 6);
      meta.writeBigUInt64LE(BigInt(summary.branchPages), main + 8);
      meta.writeBigUInt64LE(BigInt(summary.leafPages), main + 16);
      meta.writeBigUInt64LE(BigInt(summary.overflowPages), main + 24);
      meta.writeBigUInt64LE(BigInt(summary.entries), main + 32);
      meta.writeBigUInt64LE(root, main + 40);
      meta.writeBigUInt64LE(BigInt(lastPg), m + 120);
      meta.writeBigUInt64LE(1n, m + 128); // mm_txnid
      await write(meta, pgno);
    }
    await fh.sync();
    await fh.close();
    summary.bytes = nextPg * PSIZE;
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  // A lock file left by an earlier reader describes the old file; LMDB recreates it.
  await rm(join(dir, 'lock.mdb'), { force: true });
  await rename(tmp, finalPath);
  return summary;
}
