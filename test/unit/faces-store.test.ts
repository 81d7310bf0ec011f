import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Unpackr } from 'msgpackr';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrames, frameKey, metaKey, openFrameStore, type ImageFormat } from '../../src/faces/lmdb-store.js';
import { writeLmdbV1 } from '../../src/faces/lmdb-v1.js';
import { createHash } from 'node:crypto';
import { toCsv, writeMetadata } from '../../src/faces/metadata.js';

const PY = '/usr/bin/python3';
const pyLmdb = spawnSync(PY, ['-c', 'import lmdb'], { encoding: 'utf8' });
const hasPyLmdb = pyLmdb.status === 0;
if (!hasPyLmdb)
  console.log(
    `skipping the py-lmdb checks: ${PY} cannot import lmdb (${(pyLmdb.stderr || String(pyLmdb.error)).trim().split('\n').pop()}); install python3-lmdb`,
  );
const hasPil = hasPyLmdb && spawnSync(PY, ['-c', 'import PIL'], { encoding: 'utf8' }).status === 0;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-store-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 16×16 frames: left half pure-ish red, right half blue, plus a per-frame green level. */
function frames(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, k) => {
    const f = new Uint8Array(16 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) f.set(x < 8 ? [220, 10 * k, 20] : [20, 10 * k, 220], (y * 16 + x) * 3);
    return f;
  });
}

describe.each(['jpeg', 'png'] as ImageFormat[])('LMDB frame store (%s)', (format) => {
  it('writes frames under {clip_key}/{frame:06d} plus {clip_key}/meta, and reads them back in RGB order', async () => {
    const path = join(dir, `${format}.staging`);
    const store = await openFrameStore(path);
    const encoded = await encodeFrames(frames(3), 16, 16, format);
    await store.putClip('vid_a_000', encoded, { clip_key: 'vid_a_000', num_frames: 3, width: 16, height: 16, fps: 25, format });
    // Rewriting with fewer frames (a resumed run) removes the stale ones.
    await store.putClip('vid_b_001', encoded, { clip_key: 'vid_b_001', num_frames: 3, width: 16, height: 16, fps: 25, format });
    await store.putClip('vid_b_001', encoded.slice(0, 2), { clip_key: 'vid_b_001', num_frames: 2, width: 16, height: 16, fps: 25, format });
    expect(frameKey('vid_a_000', 2)).toBe('vid_a_000/000002');
    const back = store.get('vid_a_000/000001')!;
    expect(back.subarray(0, 2).toString('hex')).toBe(format === 'jpeg' ? 'ffd8' : '8950');
    const { data } = await sharp(back).raw().toBuffer({ resolveWithObject: true });
    expect(data[0]).toBeGreaterThan(180); // red stays red
    expect(data[2]).toBeLessThan(60);
    expect(store.get('vid_b_001/000002')).toBeUndefined();
    expect(JSON.parse(store.get(metaKey('vid_b_001'))!.toString('utf8'))).toMatchObject({ num_frames: 2, format });
    await expect(store.putClip('a/b', encoded, { clip_key: 'a/b', num_frames: 3, width: 16, height: 16, fps: 25, format })).rejects.toThrow(
      "clip key 'a/b' must not contain '/'",
    );
    const summary = await store.exportTo(join(dir, `${format}.lmdb`));
    expect(summary).toMatchObject({ entries: 7, depth: 1, leafPages: 1 });
    await store.close();
  });

  it.skipIf(!hasPyLmdb)('is readable with py-lmdb defaults, with red and blue where they were drawn', () => {
    const path = join(dir, `${format}.lmdb`);
    const script = `
import json, lmdb, sys, io
env = lmdb.open(sys.argv[1], readonly=True, lock=False)
out = {}
with env.begin() as txn:
    out['keys'] = [k.decode('utf-8') for k, _ in txn.cursor()]
    out['meta'] = json.loads(txn.get(b'vid_a_000/meta').decode('utf-8'))
    if ${hasPil ? 'True' : 'False'}:
        from PIL import Image
        import numpy as np
        img = np.asarray(Image.open(io.BytesIO(txn.get(b'vid_a_000/000002'))).convert('RGB'))
        out['left'] = img[8, 2].tolist()
        out['right'] = img[8, 13].tolist()
print(json.dumps(out))
`;
    const result = JSON.parse(execFileSync(PY, ['-c', script, path], { encoding: 'utf8' })) as {
      keys: string[];
      meta: { num_frames: number };
      left?: number[];
      right?: number[];
    };
    expect(result.keys).toEqual([
      'vid_a_000/000000',
      'vid_a_000/000001',
      'vid_a_000/000002',
      'vid_a_000/meta',
      'vid_b_001/000000',
      'vid_b_001/000001',
      'vid_b_001/meta',
    ]);
    expect(result.meta.num_frames).toBe(3);
    if (hasPil) {
      expect(result.left![0]).toBeGreaterThan(180);
      expect(result.left![2]).toBeLessThan(60);
      expect(result.right![2]).toBeGreaterThan(180);
      expect(result.right![0]).toBeLessThan(60);
      expect(Math.abs(result.left![1]! - 20)).toBeLessThan(15);
    } else console.log('PIL not importable: colour check from Python skipped');
  });
});

describe('writeLmdbV1', () => {
  it('rejects keys out of order', async () => {
    await expect(
      writeLmdbV1(join(dir, 'bad'), [
        [Buffer.from('b'), Buffer.alloc(1)],
        [Buffer.from('a'), Buffer.alloc(1)],
      ]),
    ).rejects.toThrow("LMDB keys must be written in increasing order: 'a' came after 'b'");
  });

  it.skipIf(!hasPyLmdb)('writes a multi-level tree with overflow values that py-lmdb reads entry for entry', async () => {
    const entries: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < 3000; i++) {
      // Small values, values just over the node limit, and values spanning several overflow pages.
      const size = i % 97 === 0 ? 20_000 + i : i % 13 === 0 ? 2100 : 20 + (i % 50);
      const v = Buffer.alloc(size);
      for (let j = 0; j < size; j++) v[j] = (i * 31 + j * 7) & 0xff;
      entries.push([Buffer.from(`clip_${String(Math.floor(i / 100)).padStart(3, '0')}/${String(i % 100).padStart(6, '0')}`, 'utf8'), v]);
    }
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    const path = join(dir, 'big.lmdb');
    const summary = await writeLmdbV1(path, entries);
    expect(summary.depth).toBeGreaterThanOrEqual(2);
    expect(summary.overflowPages).toBeGreaterThan(0);
    const script = `
import lmdb, sys, hashlib, json
env = lmdb.open(sys.argv[1], readonly=True, lock=False)
h = hashlib.sha256()
n = 0
with env.begin() as txn:
    for k, v in txn.cursor():
        h.update(k); h.update(v); n += 1
    probe = txn.get(b'clip_012/000034')
print(json.dumps({'n': n, 'sha': h.hexdigest(), 'probe': len(probe), 'stat': env.stat()['depth']}))
`;
    const out = JSON.parse(execFileSync(PY, ['-c', script, path], { encoding: 'utf8' })) as { n: number; sha: string; probe: number; stat: number };
    const h = createHash('sha256');
    for (const [k, v] of entries) h.update(k).update(v);
    expect(out).toEqual({ n: 3000, sha: h.digest('hex'), probe: entries.find(([k]) => k.toString() === 'clip_012/000034')![1].length, stat: summary.depth });
  });
});

describe('LMDB map size', () => {
  const hasLmdbUtils = spawnSync('mdb_dump', ['-V'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!hasLmdbUtils || !hasPyLmdb)('records a map size that mdb_dump | mdb_load can load into, and py-lmdb still opens both', async () => {
    // ~12 MB of incompressible JPEG-sized values: mdb_load rebuilds the tree by inserts, which
    // needs more pages than the bulk-written file, so a map size fitted to the file is full.
    const entries: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < 400; i++) {
      const v = Buffer.alloc(30_000 + (i % 7) * 1000);
      for (let j = 0; j < v.length; j++) v[j] = (i * 131 + j * 17 + (j >> 5)) & 0xff;
      entries.push([Buffer.from(`clip_${String(i >> 6).padStart(3, '0')}/${String(i & 63).padStart(6, '0')}`), v]);
    }
    const src = join(dir, 'dump-src.lmdb');
    const MiB = 1 << 20;
    const first = await writeLmdbV1(src, entries);
    // One more value fills the file to two pages short of a MiB boundary: the old rounding left no room at all.
    entries.push([Buffer.from('zz_pad'), Buffer.alloc(Math.max(0, ((MiB - (first.bytes % MiB)) % MiB) - 2 * 4096 - 16), 7)]);
    const summary = await writeLmdbV1(src, entries);
    expect(summary.bytes).toBeGreaterThan(10 * MiB);
    const dst = join(dir, 'dump-dst.lmdb');
    await mkdir(dst, { recursive: true });
    const dump = spawnSync('mdb_dump', [src], { maxBuffer: 1 << 28 });
    expect(dump.status).toBe(0);
    const load = spawnSync('mdb_load', [dst], { input: dump.stdout, encoding: 'utf8' });
    expect({ status: load.status, stderr: load.stderr.replace(/.*unrecognized keyword ignored: db_pagesize\n/, '') }).toEqual({ status: 0, stderr: '' });
    const script = 'import lmdb, sys, json\nprint(json.dumps([lmdb.open(p, readonly=True, lock=False).stat()["entries"] for p in sys.argv[1:]]))';
    expect(JSON.parse(execFileSync(PY, ['-c', script, src, dst], { encoding: 'utf8' }))).toEqual([401, 401]);
  });
});

describe('metadata files', () => {
  it('writes CSV with the base columns first and msgpack as plain maps', async () => {
    const rows = [{ file_original: 'a, "b".mp4', clip_key: 'a_000', num_frames: 10, sharpness: 12.3456789, clip_score: 0.5 }];
    const csv = toCsv(rows);
    const [header, line] = csv.trim().split('\n');
    expect(header!.startsWith('file_original,file_relative,lmdb_file,audio_file,clip_key')).toBe(true);
    expect(header!.endsWith(',clip_score')).toBe(true);
    expect(line!.startsWith('"a, ""b"".mp4",,,,a_000')).toBe(true);
    expect(line).toContain(',12.34568,');
    await writeMetadata(dir, rows);
    const back = new Unpackr({ mapsAsObjects: true }).unpack(await readFile(join(dir, 'metadata.msgpack')));
    expect(back).toEqual(rows);
    if (hasPyLmdb) {
      const py = spawnSync(
        PY,
        ['-c', 'import msgpack,sys,json; print(json.dumps(msgpack.unpackb(open(sys.argv[1],"rb").read())))', join(dir, 'metadata.msgpack')],
        { encoding: 'utf8' },
      );
      if (py.status === 0) expect(JSON.parse(py.stdout)).toEqual(rows);
      else console.log(`python msgpack not importable; msgpack read-back from Python skipped`);
    }
  });
});
