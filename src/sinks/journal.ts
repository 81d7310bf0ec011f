/**
 * The per-shard append-only journal that makes feature shards resumable.
 *
 * Layout: an 8-byte magic, then entries `u32le length | u32le crc32(payload) | payload`,
 * payload = `u32le metaLength | meta (JSON) | record bytes (msgpack, empty unless ok)`.
 * A run killed at any moment leaves at worst one torn entry at the end; the length and
 * crc make it detectable, and it is cut off (never trusted) when the journal is reopened.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { ClipstreamError } from '../errors.js';
import { asDiskFull, isDiskFull, writeAll } from '../util/disk.js';

const MAGIC = Buffer.from('CSJRNL1\n', 'latin1');
const HEADER = 8;
// A sanity bound so a garbage length is read as a torn tail, not as a 4 GiB allocation.
const MAX_PAYLOAD = 1 << 30;

export type EntryStatus = 'ok' | 'skipped' | 'failed';

export interface JournalMeta {
  index: number;
  key: string;
  filename: string;
  status: EntryStatus;
  stage?: string;
  reason?: string;
  code?: string;
  /** A failure of circumstance (a watchdog kill, an outside signal): the next run tries the clip again. Absent when false. */
  transient?: true;
}

/** An entry as found in the journal: its metadata and where its record bytes lie. */
export interface JournalEntry extends JournalMeta {
  recordOffset: number;
  recordLength: number;
}

export interface JournalScan {
  entries: JournalEntry[];
  /** Bytes up to the end of the last good entry (0 when even the magic is missing). */
  validLength: number;
  fileLength: number;
  /** Why scanning stopped before the end of the file, if it did. */
  problem?: string;
}

function encodeEntry(meta: JournalMeta, record: Uint8Array): Buffer {
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const payload = Buffer.alloc(4 + metaBytes.length + record.byteLength);
  payload.writeUInt32LE(metaBytes.length, 0);
  metaBytes.copy(payload, 4);
  payload.set(record, 4 + metaBytes.length);
  const head = Buffer.alloc(HEADER);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

function parseMeta(payload: Buffer): JournalMeta | undefined {
  if (payload.length < 4) return undefined;
  const metaLength = payload.readUInt32LE(0);
  if (4 + metaLength > payload.length) return undefined;
  try {
    const m = JSON.parse(payload.subarray(4, 4 + metaLength).toString('utf8')) as JournalMeta;
    if (!Number.isInteger(m.index) || typeof m.key !== 'string' || !['ok', 'skipped', 'failed'].includes(m.status)) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

/** Reads every intact entry, one payload in memory at a time; stops at the first bad one. */
export async function scanJournal(fh: FileHandle): Promise<JournalScan> {
  const fileLength = (await fh.stat()).size;
  const entries: JournalEntry[] = [];
  const magic = Buffer.alloc(MAGIC.length);
  const { bytesRead } = await fh.read(magic, 0, MAGIC.length, 0);
  if (bytesRead < MAGIC.length || !magic.equals(MAGIC)) {
    // A run killed while creating the journal leaves a prefix of the magic: nothing lost.
    const prefix = magic.subarray(0, bytesRead).equals(MAGIC.subarray(0, bytesRead));
    return { entries, validLength: 0, fileLength, problem: fileLength === 0 || prefix ? undefined : 'not a clipstream journal (bad magic)' };
  }
  let pos = MAGIC.length;
  const head = Buffer.alloc(HEADER);
  while (pos < fileLength) {
    if (pos + HEADER > fileLength) return { entries, validLength: pos, fileLength, problem: 'torn entry header' };
    await fh.read(head, 0, HEADER, pos);
    const length = head.readUInt32LE(0);
    const sum = head.readUInt32LE(4);
    if (length > MAX_PAYLOAD || pos + HEADER + length > fileLength) {
      return { entries, validLength: pos, fileLength, problem: 'torn entry (length runs past the end)' };
    }
    const payload = Buffer.alloc(length);
    await fh.read(payload, 0, length, pos + HEADER);
    const meta = crc32(payload) === sum ? parseMeta(payload) : undefined;
    if (!meta) return { entries, validLength: pos, fileLength, problem: 'corrupt entry (checksum mismatch)' };
    const metaLength = payload.readUInt32LE(0);
    entries.push({
      ...meta,
      recordOffset: pos + HEADER + 4 + metaLength,
      recordLength: length - 4 - metaLength,
    });
    pos += HEADER + length;
  }
  return { entries, validLength: pos, fileLength };
}

/**
 * An open journal: earlier entries (from a killed run) plus appends. fsyncs are batched:
 * once `write()` has returned, the bytes are in the OS page cache and survive a killed
 * process (SIGKILL, OOM); only an OS crash or power loss can drop the unsynced tail, and
 * that tail is then detected by the crc and redone. Syncing every entry would cost a disk
 * flush per clip for protection against the rare case, so we sync every `syncEvery`
 * entries or `syncMs` milliseconds, and always before the shard is finalised.
 */
export class Journal {
  private appendsSinceSync = 0;
  private lastSync = Date.now();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private size: number,
    readonly entries: JournalEntry[],
    private readonly syncEvery: number,
    private readonly syncMs: number,
  ) {}

  /**
   * Opens (creating if needed) the journal at `path`, cutting away a torn or corrupt tail.
   * `onDropped` hears about what was cut, so the caller can warn.
   */
  static async open(
    path: string,
    opts: { syncEvery?: number; syncMs?: number; onDropped?: (problem: string, bytes: number, kept: number) => void } = {},
  ): Promise<Journal> {
    // a+: reads at any position, writes always append.
    const fh = await open(path, 'a+');
    try {
      const scan = await scanJournal(fh);
      if (scan.validLength < scan.fileLength) {
        if (scan.problem) opts.onDropped?.(scan.problem, scan.fileLength - scan.validLength, scan.entries.length);
        await fh.truncate(scan.validLength);
      }
      let size = scan.validLength;
      if (size === 0) {
        await fh.write(MAGIC);
        size = MAGIC.length;
      }
      await fh.sync();
      return new Journal(path, fh, size, scan.entries, opts.syncEvery ?? 64, opts.syncMs ?? 1000);
    } catch (err) {
      await fh.close().catch(() => {});
      if (isDiskFull(err)) throw asDiskFull(err, path);
      throw new ClipstreamError('ERR_IO', `journal ${path}: cannot open (${(err as Error).message})`, { cause: err, where: { file: path } });
    }
  }

  /** Appends one entry; the record bytes are kept as given (already-encoded msgpack). */
  async append(meta: JournalMeta, record: Uint8Array = new Uint8Array(0)): Promise<JournalEntry> {
    const bytes = encodeEntry(meta, record);
    // One write call per entry, so a kill leaves at most this entry torn (and the next open cuts it off).
    await writeAll(this.fh, bytes, this.path);
    const entry: JournalEntry = { ...meta, recordOffset: this.size + bytes.length - record.byteLength, recordLength: record.byteLength };
    this.size += bytes.length;
    this.entries.push(entry);
    if (++this.appendsSinceSync >= this.syncEvery || Date.now() - this.lastSync >= this.syncMs) await this.sync();
    return entry;
  }

  async sync(): Promise<void> {
    await this.fh.sync().catch((err: unknown) => {
      throw asDiskFull(err, this.path);
    });
    this.appendsSinceSync = 0;
    this.lastSync = Date.now();
  }

  /** The record bytes of one entry, read back from disk (memory stays at one record). */
  async readRecord(entry: JournalEntry): Promise<Buffer> {
    const buf = Buffer.alloc(entry.recordLength);
    const { bytesRead } = await this.fh.read(buf, 0, entry.recordLength, entry.recordOffset);
    if (bytesRead !== entry.recordLength) {
      throw new ClipstreamError('ERR_IO', `journal ${this.path}: short read of the record for key ${entry.key}`, {
        where: { file: this.path, key: entry.key },
      });
    }
    return buf;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Tar positions (`index`) of the intact, final entries of the journal at `path` (transient failures are to be redone); empty when absent. */
export async function journalIndices(path: string): Promise<Set<number>> {
  return new Set((await journalEntries(path)).filter((e) => !e.transient).map((e) => e.index));
}

/** Keys of the intact, final entries of the journal at `path`, without changing the file; empty when absent. */
export async function journalKeys(path: string): Promise<Set<string>> {
  return new Set((await journalEntries(path)).filter((e) => !e.transient).map((e) => e.key));
}

async function journalEntries(path: string): Promise<JournalEntry[]> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ClipstreamError('ERR_IO', `journal ${path}: cannot read (${(err as Error).message})`, { cause: err, where: { file: path } });
  }
  try {
    return (await scanJournal(fh)).entries;
  } finally {
    await fh.close();
  }
}
