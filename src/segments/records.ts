/**
 * Resume state of one video, kept in its work folder: one record per segment
 * (`records/seg_NNNNNN.json`: status, frames, output files with their sha256, the state the
 * segment started from and the state it ended with), the saved recurrent states
 * (`states/seg_NNNNNN.state`), the seed's `processed.json` (`{segment_path: true|false}`), and
 * `done.json` once the whole video is finished (what a rerun checks to skip it).
 * Every file is written atomically, so a kill at any moment leaves either the old or the new
 * record, never half of one; a record is written only after its outputs are final.
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonRecords, UnitRecords } from '../sinks/unit-records.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { RecurrentState, Tensor32 } from './model.js';

/** What `done.json` holds: the video finished with the whole job, and what it was finished with. */
export interface DoneMarker {
  key: string;
  segments: number;
  frames: number;
  /** Size and mtime of the final mp4 (null for PNG output, whose files the records cover). */
  output: { size: number; mtimeMs: number } | null;
}

export interface SegmentRecord {
  index: number;
  status: 'done' | 'failed';
  startFrame: number;
  endFrame: number;
  frames: number;
  /** Output files relative to the work folder, with their sha256. */
  outputs: { file: string; sha256: string }[];
  /** sha256 of the state the segment started from ('zeros' for RVM's initial state). */
  stateIn: string;
  /** Saved end state (relative path) and its sha256; null for stateless models and failures. */
  stateOut: { file: string; sha256: string } | null;
  error?: string;
  /** The failure was one of circumstance (its ffmpeg killed or stalled): the rerun retries it like any failed segment. Absent when false. */
  transient?: true;
  attempts: number;
}

export const segmentName = (index: number) => `seg_${String(index).padStart(6, '0')}`;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function fileSha256(path: string): Promise<string | null> {
  try {
    return sha256(await readFile(path));
  } catch {
    return null;
  }
}

/** Serialises states: a JSON header line (names, dims) then little-endian float32 data. */
export function encodeState(state: RecurrentState): Buffer {
  if (!state) return Buffer.from('{"zeros":true}\n');
  const names = Object.keys(state);
  const header = JSON.stringify({ tensors: names.map((n) => ({ name: n, dims: state[n]!.dims })) });
  const parts: Buffer[] = [Buffer.from(`${header}\n`)];
  for (const n of names) {
    const d = state[n]!.data;
    const b = Buffer.alloc(d.length * 4);
    for (let i = 0; i < d.length; i++) b.writeFloatLE(d[i]!, i * 4);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

export function decodeState(buf: Buffer): RecurrentState {
  const nl = buf.indexOf(10);
  const header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { zeros?: boolean; tensors?: { name: string; dims: number[] }[] };
  if (header.zeros) return null;
  const out: Record<string, Tensor32> = {};
  let off = nl + 1;
  for (const t of header.tensors ?? []) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(off + i * 4);
    off += n * 4;
    out[t.name] = { data, dims: t.dims };
  }
  return out;
}

/** The hash a record keeps for a state (the initial zeros have a fixed name). */
export const stateHash = (state: RecurrentState) => (state ? sha256(encodeState(state)) : 'zeros');

/**
 * Reads and writes the records of one work folder, on the record store
 * (src/sinks/unit-records.ts): the segments' records (`records/seg_NNNNNN.json`) and the
 * video's own, its done marker (`done.json`).
 */
export class RecordStore {
  readonly #segments: UnitRecords<SegmentRecord>;
  readonly #video: UnitRecords<DoneMarker>;

  constructor(readonly workDir: string) {
    this.#segments = new UnitRecords(join(workDir, 'records'), jsonRecords<SegmentRecord>({ indent: 1 }));
    this.#video = new UnitRecords(workDir, jsonRecords<DoneMarker>({ indent: 1 }));
  }

  recordPath(index: number): string {
    return this.#segments.path(segmentName(index));
  }

  /** A segment's record, or null when it has none (or its file holds none: the segment is redone). */
  read(index: number): Promise<SegmentRecord | null> {
    return this.#segments.read(segmentName(index));
  }

  write(rec: SegmentRecord): Promise<void> {
    return this.#segments.write(segmentName(rec.index), rec);
  }

  /**
   * True when a done record's outputs (and saved state) are all there with the recorded
   * checksums; a truncated or replaced file makes the segment run again.
   */
  async verified(rec: SegmentRecord | null): Promise<boolean> {
    if (rec?.status !== 'done') return false;
    for (const o of rec.outputs) if ((await fileSha256(join(this.workDir, o.file))) !== o.sha256) return false;
    if (rec.stateOut && (await fileSha256(join(this.workDir, rec.stateOut.file))) !== rec.stateOut.sha256) return false;
    return true;
  }

  /** Saves a segment's end state; returns its record entry. */
  async saveState(index: number, state: RecurrentState): Promise<{ file: string; sha256: string }> {
    const file = join('states', `${segmentName(index)}.state`);
    const bytes = encodeState(state);
    await writeFileAtomic(join(this.workDir, file), bytes);
    return { file, sha256: sha256(bytes) };
  }

  async loadState(rec: SegmentRecord): Promise<RecurrentState> {
    return decodeState(await readFile(join(this.workDir, rec.stateOut!.file)));
  }

  /** Drops every record and state (the settings changed, so none of them applies). */
  async clear(): Promise<void> {
    await this.#segments.clear();
    await rm(join(this.workDir, 'states'), { recursive: true, force: true });
  }

  /** Writes the seed's `processed.json`: every segment output path → finished or not. */
  async writeProcessed(entries: { file: string; done: boolean }[]): Promise<void> {
    const obj = Object.fromEntries(entries.map((e) => [e.file, e.done]));
    await writeFileAtomic(join(this.workDir, 'processed.json'), `${JSON.stringify(obj, null, 2)}\n`);
  }

  /** The settings fingerprint the records were made with, or null. */
  async readSettings(): Promise<string | null> {
    try {
      return await readFile(join(this.workDir, 'settings.json'), 'utf8');
    } catch {
      return null;
    }
  }

  writeSettings(json: string): Promise<void> {
    return writeFileAtomic(join(this.workDir, 'settings.json'), json);
  }

  /** The marker of a video finished with the whole job (`done.json`), or null. */
  readDone(): Promise<DoneMarker | null> {
    return this.#video.read('done');
  }

  writeDone(marker: DoneMarker): Promise<void> {
    return this.#video.write('done', marker);
  }

  /** Removes the done marker before a video is worked on again. */
  clearDone(): Promise<void> {
    return this.#video.remove('done');
  }
}
