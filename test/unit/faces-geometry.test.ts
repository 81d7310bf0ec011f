import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { squareAndResize } from '../../src/faces/crops.js';
import { faces, type FacesReport } from '../../src/jobs/faces.js';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { HAS_PHOTOS, HAS_ULTRAFACE, PHOTOS_DIR, SHARED_MISSING, ULTRAFACE_DIR } from '../helpers/shared.js';

/**
 * faces in display geometry: a real photo as a PAL-style video (600×480 stored, SAR 16:15, so
 * displayed 640×480) and as the same picture in square pixels (640×480). The face clips of both
 * must show the same face with the same proportions, the metadata must give the displayed size,
 * and the clips must carry the source's colour tags. Also: x.mp4 beside x.mkv gives two videos
 * with their own clips.
 */
const PHOTO = 'ultraface-imgs-13.jpg';
const FRAMES = 30;
let dir: string;
let report: FacesReport;

function make(out: string, vf: string): void {
  const r = spawnSync(ffmpegPath(), [
    '-v',
    'error',
    '-y',
    '-loop',
    '1',
    '-framerate',
    '25',
    '-i',
    join(PHOTOS_DIR, PHOTO),
    '-vf',
    `${vf},format=yuv420p`,
    '-frames:v',
    String(FRAMES),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-crf',
    '12',
    '-colorspace',
    'bt709',
    '-color_primaries',
    'bt709',
    '-color_trc',
    'bt709',
    out,
  ]);
  if (r.status !== 0) throw new Error(`cannot make ${out}: ${String(r.stderr)}`);
}

function probe(path: string): Record<string, string> {
  const r = spawnSync(
    ffprobePath(),
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=width,height,sample_aspect_ratio,color_space,color_primaries,color_transfer',
      '-of',
      'json',
      path,
    ],
    { encoding: 'utf8' },
  );
  return (JSON.parse(r.stdout) as { streams: Record<string, string>[] }).streams[0]!;
}

/** The first frame of a clip, RGB, resized to width×height (area scaling, as the job decodes for detection). */
function firstFrame(path: string, width: number, height: number): Uint8Array {
  const r = spawnSync(
    ffmpegPath(),
    ['-v', 'error', '-i', path, '-frames:v', '1', '-vf', `scale=${width}:${height}:flags=area`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    { maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(String(r.stderr));
  expect(r.stdout.length).toBe(width * height * 3);
  return new Uint8Array(r.stdout);
}

const SIZE = 256;

describe.skipIf(!HAS_ULTRAFACE || !HAS_PHOTOS)('faces works in display geometry', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-faces-geometry-'));
    await mkdir(join(dir, 'in'));
    make(join(dir, 'in', 'square.mp4'), 'scale=640:480');
    make(join(dir, 'in', 'pal.mp4'), 'scale=600:480,setsar=16/15');
    // Same stem, another container: its own key and clips.
    await copyFile(join(dir, 'in', 'square.mp4'), join(dir, 'in', 'square.mov'));
    const model = join(ULTRAFACE_DIR, 'version-RFB-640.onnx');
    report = await faces({
      inputDir: join(dir, 'in'),
      outputDir: join(dir, 'out'),
      detector: model,
      scoreThreshold: 0.7,
      nmsThreshold: 0.3,
      minDetections: 4,
      size: SIZE,
      audio: 'none',
      parallelVideos: 1,
      intraOpThreads: 1,
      onWarning: () => {},
    });
  }, 600_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const rowsOf = (file: string) => report.rows.filter((r) => String(r.file_original).endsWith(file)).sort((a, b) => Number(a.crop_x) - Number(b.crop_x));

  it('records the displayed size (SAR applied), not the stored width', () => {
    const pal = rowsOf('pal.mp4');
    expect(pal.length).toBeGreaterThan(0);
    for (const r of pal) expect([r.original_width, r.original_height, r.original_resolution]).toEqual([640, 480, '640x480']);
  });

  it('crops the same face at the same place and size as the square-pixel video', () => {
    const pal = rowsOf('pal.mp4');
    const sq = rowsOf('square.mp4');
    expect(pal.length).toBe(sq.length);
    pal.forEach((p, i) => {
      const s = sq[i]!;
      const centre = (r: typeof p) => Number(r.crop_x) + Number(r.crop_size) / 2;
      expect(Math.abs(centre(p) - centre(s))).toBeLessThan(0.03 * 640);
      expect(Number(p.crop_size) / Number(s.crop_size)).toBeCloseTo(1, 1);
    });
  });

  it("each pal clip shows exactly the square region of the displayed picture its row names (the square video's pixels there)", async () => {
    // The square-pixel video displays the same picture: its pixels in the pal row's crop, resized as the job
    // resizes, are what the pal clip must show. A crop taken in stored pixels shows a region 16:15 too narrow.
    const full = firstFrame(join(dir, 'in', 'square.mp4'), 640, 480);
    for (const row of rowsOf('pal.mp4')) {
      const size = Number(row.crop_size);
      const x = Number(row.crop_x);
      const y = Number(row.crop_y);
      const ix = Math.max(0, x);
      const iy = Math.max(0, y);
      const ix2 = Math.min(640, x + size);
      const iy2 = Math.min(480, y + size);
      const inner = new Uint8Array((ix2 - ix) * (iy2 - iy) * 3);
      for (let r = iy; r < iy2; r++) inner.set(full.subarray((r * 640 + ix) * 3, (r * 640 + ix2) * 3), (r - iy) * (ix2 - ix) * 3);
      const crop = {
        x,
        y,
        size,
        inner: { x: ix, y: iy, width: ix2 - ix, height: iy2 - iy },
        pad: { left: ix - x, top: iy - y, right: x + size - ix2, bottom: y + size - iy2 },
      };
      const want = await squareAndResize(inner, crop, SIZE);
      const got = firstFrame(join(dir, 'out', String(row.file_relative)), SIZE, SIZE);
      let diff = 0;
      for (let i = 0; i < got.length; i++) diff += Math.abs(got[i]! - want[i]!);
      expect(diff / got.length, `${row.clip_key}: mean difference in levels`).toBeLessThan(8);
    }
  });

  it('face clips are square-pixel at their size and carry the source colour tags', () => {
    for (const r of [...rowsOf('pal.mp4'), ...rowsOf('square.mp4')]) {
      const p = probe(join(dir, 'out', String(r.file_relative)));
      expect([p.width, p.height]).toEqual([SIZE, SIZE]);
      expect(p.sample_aspect_ratio ?? '1:1').toBe('1:1');
      expect([p.color_space, p.color_primaries, p.color_transfer]).toEqual(['bt709', 'bt709', 'bt709']);
    }
  });

  it('square.mp4 and square.mov: two videos, each with its own clips', () => {
    const mp4 = rowsOf('square.mp4');
    const mov = rowsOf('square.mov');
    expect(mov.length).toBe(mp4.length);
    const keys = [...mp4, ...mov].map((r) => String(r.clip_key));
    expect(new Set(keys).size).toBe(keys.length);
    expect(report.videos.filter((v) => v.status === 'done')).toHaveLength(3);
  });
});

if (!HAS_ULTRAFACE || !HAS_PHOTOS) process.stderr.write(`faces-geometry: ${SHARED_MISSING}\n`);
