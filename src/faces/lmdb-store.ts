import { mkdir } from 'node:fs/promises';
import { open, type RootDatabase } from 'lmdb';
import sharp from 'sharp';
import { ClipstreamError } from '../errors.js';
import { writeLmdbV1, type LmdbV1Summary } from './lmdb-v1.js';

/** Key of frame `index` (from 0) of a clip: `{clip_key}/{index:06d}`, UTF-8. */
export const frameKey = (clipKey: string, index: number): string => `${clipKey}/${String(index).padStart(6, '0')}`;
/** Key of a clip's metadata entry (UTF-8 JSON): `{clip_key}/meta`. */
export const metaKey = (clipKey: string): string => `${clipKey}/meta`;

export type ImageFormat = 'jpeg' | 'png';

/** What `{clip_key}/meta` holds. */
export interface ClipMeta {
  clip_key: string;
  num_frames: number;
  width: number;
  height: number;
  fps: number;
  /** Encoding of every frame value: `jpeg` or `png`, always RGB (no BGR swap). */
  format: ImageFormat;
  [extra: string]: unknown;
}

/**
 * Encodes raw RGB frames as JPEG or PNG with sharp, in RGB channel order (decoders such as
 * PIL give RGB back; OpenCV's imdecode gives BGR, as it does for any JPEG).
 *
 * @example
 * const jpegs = await encodeFrames([rgb], 512, 512, 'jpeg', 95);
 */
export async function encodeFrames(frames: Uint8Array[], width: number, height: number, format: ImageFormat, quality = 95): Promise<Buffer[]> {
  return Promise.all(
    frames.map((f) => {
      const img = sharp(f, { raw: { width, height, channels: 3 } });
      return (format === 'jpeg' ? img.jpeg({ quality, chromaSubsampling: '4:4:4' }) : img.png({ compressionLevel: 6 })).toBuffer();
    }),
  );
}

/**
 * The staging store of face frames: an lmdb-js environment (transactional, so each clip is in
 * it whole or not at all, and a resumed run keeps what finished). Keys are plain UTF-8 strings,
 * values the encoded images or JSON. lmdb-js writes LMDB data format 2, which py-lmdb cannot
 * open, so `exportTo` writes the same entries as a format-1 environment that py-lmdb reads
 * with its defaults.
 *
 * @example
 * const store = await openFrameStore('out/.faces-staging.lmdb');
 * await store.putClip('video_000', jpegs, { clip_key: 'video_000', num_frames: 2, width: 512, height: 512, fps: 25, format: 'jpeg' });
 * await store.exportTo('out/faces.lmdb');
 * await store.close();
 */
export async function openFrameStore(path: string): Promise<FrameStore> {
  try {
    await mkdir(path, { recursive: true });
    // noSubdir false: a directory holding data.mdb, what py-lmdb's lmdb.open(path) expects.
    const db = open({ path, noSubdir: false, keyEncoding: 'binary', encoding: 'binary', compression: false });
    return new FrameStore(path, db);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `cannot open LMDB store ${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  }
}

const key = (k: string) => Buffer.from(k, 'utf8');

export class FrameStore {
  constructor(
    readonly path: string,
    private readonly db: RootDatabase,
  ) {}

  /** Writes (or replaces) a clip's frames and metadata in one transaction; resolves once on disk. */
  async putClip(clipKey: string, frames: Buffer[], meta: ClipMeta): Promise<void> {
    if (clipKey.includes('/'))
      throw new ClipstreamError('ERR_IO', `clip key '${clipKey}' must not contain '/' (it separates the clip key from the frame number)`);
    const key = (k: string) => Buffer.from(k, 'utf8');
    try {
      await this.db.transaction(() => {
        // A clip rewritten on resume with fewer frames must not keep stale ones.
        const old = this.db.get(key(metaKey(clipKey))) as Buffer | undefined;
        const oldCount = old ? Number((JSON.parse(old.toString('utf8')) as ClipMeta).num_frames) || 0 : 0;
        for (let i = frames.length; i < oldCount; i++) this.db.remove(key(frameKey(clipKey, i)));
        frames.forEach((f, i) => {
          this.db.put(key(frameKey(clipKey, i)), f);
        });
        this.db.put(key(metaKey(clipKey)), Buffer.from(JSON.stringify(meta), 'utf8'));
      });
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `cannot write clip ${clipKey} to LMDB store ${this.path}: ${(err as Error).message}`, {
        cause: err,
        where: { file: this.path, key: clipKey },
      });
    }
  }

  /**
   * Starts (or restarts) a clip written in parts: removes its meta entry and old frames, so
   * until `endClip` the clip is absent from exports. With putFrames/endClip, a long clip never
   * has all its encoded frames in memory at once.
   */
  async beginClip(clipKey: string): Promise<void> {
    this.checkKey(clipKey);
    await this.write(clipKey, () => {
      const old = this.db.get(key(metaKey(clipKey))) as Buffer | undefined;
      const oldCount = old ? Number((JSON.parse(old.toString('utf8')) as ClipMeta).num_frames) || 0 : 0;
      this.db.remove(key(metaKey(clipKey)));
      for (let i = 0; i < oldCount; i++) this.db.remove(key(frameKey(clipKey, i)));
    });
  }

  /** Writes frames `first`, `first + 1`, ... of a clip begun with beginClip. */
  async putFrames(clipKey: string, first: number, frames: Buffer[]): Promise<void> {
    await this.write(clipKey, () => {
      frames.forEach((f, i) => {
        this.db.put(key(frameKey(clipKey, first + i)), f);
      });
    });
  }

  /** Writes the clip's meta entry: from now on the clip is complete and exported. */
  async endClip(clipKey: string, meta: ClipMeta): Promise<void> {
    await this.write(clipKey, () => this.db.put(key(metaKey(clipKey)), Buffer.from(JSON.stringify(meta), 'utf8')));
  }

  /** True when the clip's meta entry is there (the clip was completed). */
  hasClip(clipKey: string): boolean {
    return this.db.get(key(metaKey(clipKey))) !== undefined;
  }

  private checkKey(clipKey: string): void {
    if (clipKey.includes('/'))
      throw new ClipstreamError('ERR_IO', `clip key '${clipKey}' must not contain '/' (it separates the clip key from the frame number)`);
  }

  private async write(clipKey: string, fn: () => void): Promise<void> {
    try {
      await this.db.transaction(fn);
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `cannot write clip ${clipKey} to LMDB store ${this.path}: ${(err as Error).message}`, {
        cause: err,
        where: { file: this.path, key: clipKey },
      });
    }
  }

  /**
   * Writes every entry, in key order, as a py-lmdb-readable environment `dir/data.mdb`. Frames
   * of a clip without its meta entry (begun, never ended: an interrupted run) are left out.
   */
  async exportTo(dir: string): Promise<LmdbV1Summary> {
    try {
      return await writeLmdbV1(dir, this.entries());
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `cannot export LMDB store ${this.path} to ${dir}: ${(err as Error).message}`, { cause: err, where: { file: dir } });
    }
  }

  /** Every entry in key order, leaving out the frames of clips without their meta entry (begun, never ended). */
  *entries(): Generator<[Buffer, Buffer]> {
    const db = this.db;
    let clip = '';
    let complete = false;
    for (const { key: k, value } of db.getRange({})) {
      const name = Buffer.from(k as Uint8Array);
      const text = name.toString('utf8');
      const slash = text.lastIndexOf('/');
      const prefix = slash < 0 ? text : text.slice(0, slash);
      if (prefix !== clip) {
        clip = prefix;
        complete = slash < 0 || db.get(key(metaKey(prefix))) !== undefined;
      }
      if (complete) yield [name, Buffer.from(value as Uint8Array)];
    }
  }

  /** Reads one value back (tests, tools); undefined when absent. */
  get(key: string): Buffer | undefined {
    return this.db.get(Buffer.from(key, 'utf8')) as Buffer | undefined;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
