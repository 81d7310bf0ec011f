import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Detection } from '../../src/faces/boxes.js';
import { loadFaceDetector, type FaceDetector } from '../../src/faces/detector.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { REPO, runCliAsync } from '../helpers/run-cli.js';
import { decodeImage, HAS_PHOTOS, HAS_ULTRAFACE, PHOTOS, PHOTOS_DIR, SHARED_MISSING, ULTRAFACE_DIR } from '../helpers/shared.js';

/**
 * `clipstream faces` with the published UltraFace RFB-640 on short videos made from the photos
 * of real faces (a slow pan with ffmpeg): every face a person counts becomes a track, its crop
 * is centred on the face, and the LMDB store read from Python (py-lmdb + PIL) holds real faces
 * (the same detector finds one, centred, in the stored frames). Also: with no model cache and no
 * --detector (a fresh clone), the shipped UltraFace finds the five faces of a pan; a cached registry
 * detector is the default when there is one; the synthetic detector, asked for, says when it finds nothing.
 */
const PY = '/usr/bin/python3';
const HAS_LMDB = existsSync(PY) && spawnSync(PY, ['-c', 'import lmdb, PIL'], { encoding: 'utf8' }).status === 0;
const FPS = 25;
const FRAMES = 60; // 2.4 s
const PAN = 0.04; // the crop window slides over 4 % of the photo's width

const even = (n: number) => 2 * Math.floor(n / 2);

/** The pan as ffmpeg's crop applies it: window size and left edge at frame n. */
function panGeometry(width: number, height: number) {
  const w = even(width * (1 - PAN));
  const h = even(height);
  return { w, h, x: (n: number) => Math.floor(((width - w) * n) / (FRAMES - 1)) };
}

describe.skipIf(!HAS_ULTRAFACE || !HAS_PHOTOS)('clipstream faces with a real detector on real faces', () => {
  let work = '';
  let home = '';
  let detector: FaceDetector;
  const faces = new Map<string, { width: number; height: number; found: Detection[] }>();
  let rows: Array<Record<string, string | number>> = [];
  let stderr = '';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'faces-real-'));
    home = join(work, 'cache');
    detector = await loadFaceDetector(join(ULTRAFACE_DIR, 'version-RFB-640.onnx'), { scoreThreshold: 0.7, nmsThreshold: 0.3, intraOpThreads: 2 });
    await mkdir(join(work, 'videos'));
    for (const [file] of PHOTOS) {
      const src = decodeImage(join(PHOTOS_DIR, file));
      const fit = detector.fit(src.width, src.height);
      const [found] = await detector.detect([
        { ...decodeImage(join(PHOTOS_DIR, file), fit), scale: fit.scale, sourceWidth: src.width, sourceHeight: src.height },
      ]);
      faces.set(file, { width: src.width, height: src.height, found: found! });
      const g = panGeometry(src.width, src.height);
      const vf = `crop=${g.w}:${g.h}:'floor((iw-${g.w})*n/${FRAMES - 1})':0,format=yuv420p`;
      const out = join(work, 'videos', file.replace(/\.jpg$/, '.mp4'));
      const r = spawnSync(ffmpegPath(), [
        '-v',
        'error',
        '-loop',
        '1',
        '-framerate',
        String(FPS),
        '-i',
        join(PHOTOS_DIR, file),
        '-vf',
        vf,
        '-frames:v',
        String(FRAMES),
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-crf',
        '12',
        out,
      ]);
      expect(r.status, String(r.stderr)).toBe(0);
    }
    // The registry name resolves from the cache; fill it offline from ../shared (checked like a download).
    const f = await runCliAsync(['models', 'fetch', 'ultraface-rfb-640', `--from=${ULTRAFACE_DIR}`], { env: { CLIPSTREAM_HOME: home } });
    expect(f.code, f.stderr).toBe(0);
    const r = await runCliAsync(
      [
        'faces',
        `--input_dir=${join(work, 'videos')}`,
        `--output_dir=${join(work, 'out')}`,
        '--detector=ultraface-rfb-640',
        '--make_lmdb',
        '--size=128',
        '--audio=none',
        '--score_threshold=0.7',
        '--nms_threshold=0.3',
        '--quiet',
      ],
      { env: { CLIPSTREAM_HOME: home } },
    );
    stderr = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    rows = new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(await readFile(join(work, 'out', 'metadata.msgpack'))) as typeof rows;
  }, 240_000);
  afterAll(async () => {
    await detector?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** Each of the `count` faces of the photo is a track whose crop is centred on it, and nothing else is. */
  function expectFaceTracks(file: string, count: number, all: typeof rows) {
    const photo = faces.get(file)!;
    expect(photo.found).toHaveLength(count);
    const mine = all.filter((r) => String(r.file_original).endsWith(file.replace(/\.jpg$/, '.mp4')));
    const g = panGeometry(photo.width, photo.height);
    const matched = new Set<number>();
    for (const row of mine) {
      const mid = Math.round((Number(row.start_frame) + Number(row.end_frame)) / 2);
      const size = Number(row.crop_size);
      const cx = Number(row.crop_x) + size / 2;
      const cy = Number(row.crop_y) + size / 2;
      // The face under this crop: the photo's face whose centre, shifted by the pan, is nearest.
      const dist = photo.found.map((d) => Math.hypot((d.x1 + d.x2) / 2 - g.x(mid) - cx, (d.y1 + d.y2) / 2 - cy));
      const k = dist.indexOf(Math.min(...dist));
      const face = photo.found[k]!;
      expect(dist[k]!, `${row.clip_key}: crop centre ${cx.toFixed(1)},${cy.toFixed(1)} is off the face`).toBeLessThan(0.12 * size);
      // enlarge 1.4 around the face's longer side (union of a slowly moving box: a bit more).
      const side = Math.max(face.x2 - face.x1, face.y2 - face.y1);
      expect(size / side, `${row.clip_key}: crop size ${size} for a face of ${side.toFixed(1)} px`).toBeGreaterThan(1.2);
      expect(size / side, `${row.clip_key}: crop size ${size} for a face of ${side.toFixed(1)} px`).toBeLessThan(2.0);
      expect(Number(row.num_frames)).toBeGreaterThan(20);
      matched.add(k);
    }
    expect(matched.size, `${file}: faces found as tracks`).toBe(count);
  }

  it.each(PHOTOS)('%s: each of the %i faces is a track with a crop centred on it, and nothing else is', (file, count) => {
    expectFaceTracks(file, count, rows);
  });

  it('on a fresh clone (empty model cache, no fetch, no --detector) faces finds the five faces of the photo pan with the shipped UltraFace', async () => {
    const five = join(work, 'five');
    await mkdir(five);
    spawnSync('cp', [join(work, 'videos', 'ultraface-imgs-19.mp4'), five]);
    const out = join(work, 'out-fresh');
    const r = await runCliAsync(['faces', `--input_dir=${five}`, `--output_dir=${out}`, '--size=64', '--audio=none', '--quiet'], {
      env: { CLIPSTREAM_HOME: join(work, 'fresh-cache') },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(work, 'fresh-cache'))).toBe(false);
    expect(r.stderr).not.toContain('model cache');
    expect(r.stderr).not.toContain('synthetic');
    const fresh = new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(await readFile(join(out, 'metadata.msgpack'))) as typeof rows;
    expect(fresh).toHaveLength(5);
    expectFaceTracks('ultraface-imgs-19.jpg', 5, fresh);
  });

  it.skipIf(!HAS_LMDB)(
    'the LMDB store, read from Python with py-lmdb and PIL, holds real faces: the detector finds one centred in every dumped frame',
    async () => {
      const dump = join(work, 'dump');
      const r = spawnSync(PY, [join(REPO, 'scripts', 'lmdb_frames.py'), join(work, 'out', 'faces.lmdb'), dump], { encoding: 'utf8', maxBuffer: 1 << 26 });
      expect(r.status, r.stderr).toBe(0);
      const store = JSON.parse(r.stdout) as Record<
        string,
        {
          meta: { num_frames: number; width: number };
          frames: Array<{ index: number; file: string; width: number; height: number; mode: string }>;
          keys: number;
        }
      >;
      expect(Object.keys(store).sort()).toEqual(rows.map((x) => String(x.clip_key)).sort());
      for (const [clip, entry] of Object.entries(store)) {
        expect(entry.keys, clip).toBe(entry.meta.num_frames + 1);
        for (const f of entry.frames) {
          expect([f.width, f.height, f.mode]).toEqual([128, 128, 'RGB']);
          const rgb = new Uint8Array(await readFile(f.file));
          // As stored (128 px, not enlarged: UltraFace's largest anchors are 256 px), top-left in the model input.
          const [found] = await detector.detect([{ rgb, width: 128, height: 128, scale: 1, sourceWidth: 128, sourceHeight: 128 }]);
          expect(found!.length, `${clip} frame ${f.index}: a face`).toBeGreaterThanOrEqual(1);
          const best = found![0]!;
          // One crop per block (seed 002): the face drifts with the pan inside it, centred at the middle of the block.
          const mid = f.index === Math.floor(entry.meta.num_frames / 2);
          expect(Math.hypot((best.x1 + best.x2) / 2 - 64, (best.y1 + best.y2) / 2 - 64), `${clip} frame ${f.index}: centred`).toBeLessThan(
            (mid ? 0.12 : 0.25) * 128,
          );
        }
      }
    },
  );

  it('with the registry detector in the cache, faces uses it by default', async () => {
    const one = join(work, 'one');
    await mkdir(one);
    spawnSync('cp', [join(work, 'videos', 'ultraface-imgs-13.mp4'), one]);
    const r = await runCliAsync(['faces', `--input_dir=${one}`, `--output_dir=${join(work, 'out-default')}`, '--size=64', '--audio=none', '--quiet'], {
      env: { CLIPSTREAM_HOME: home },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`face detector ultraface-rfb-640 from the model cache (${join(home, 'ultraface-rfb-640', 'version-RFB-640.onnx')})`);
    expect(r.stderr).toMatch(/[1-9]\d* face clip\(s\) in total/);
    expect(r.stderr).not.toContain('synthetic detector');
    // The synthetic detector, asked for, says where it finds nothing at all (a video without its template) that it only knows the fixture face.
    const empty = join(work, 'empty-cache');
    const plain = join(work, 'plain');
    await mkdir(plain);
    const g = spawnSync(ffmpegPath(), [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'color=c=0x807060:s=320x240:d=2:r=25',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      join(plain, 'wall.mp4'),
    ]);
    expect(g.status, String(g.stderr)).toBe(0);
    const n = await runCliAsync(
      ['faces', `--input_dir=${plain}`, `--output_dir=${join(work, 'out-plain')}`, '--detector=synthetic', '--size=64', '--audio=none', '--quiet'],
      { env: { CLIPSTREAM_HOME: empty } },
    );
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toContain('0 face clip(s) in total');
    expect(n.stderr).toContain(
      'no face found: the synthetic detector (--detector=synthetic) finds only the synthetic fixture face, not real ones. For real footage leave --detector out',
    );
    expect(stderr).not.toContain('synthetic detector');
  });
});

if (!HAS_ULTRAFACE || !HAS_PHOTOS) console.warn(`faces-real.test.ts: ${SHARED_MISSING}`);
