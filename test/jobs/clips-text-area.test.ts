/**
 * The clips job's `text_area` with the real PP-OCRv4 detector (`--scores=all`), and the
 * fingerprint every scored clip carries into clips.csv for `clipstream dedup`. Truth from the
 * recipe: the first half of the source has a burned-in subtitle (drawtext), the second none.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dedup } from '../../src/jobs/dedup.js';
import { clips } from '../../src/jobs/clips.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { parseCsv } from '../../src/util/csv.js';

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-text-'));
  await mkdir(join(dir, 'in'));
  // 4 s of mandelbrot at 640x360, 10 fps; a white subtitle at the bottom during the first 2 s only.
  const sub = `drawtext=fontfile=${FONT}:text='A subtitle burned into the picture':fontsize=28:fontcolor=white:borderw=2:x=(w-text_w)/2:y=h-60:enable='lt(t,2)'`;
  execFileSync(ffmpegPath(), [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'mandelbrot=s=640x360:r=10',
    '-t',
    '4',
    '-vf',
    sub,
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    '-y',
    join(dir, 'in', 'movie.mp4'),
  ]);
  await writeFile(join(dir, 'spans.csv'), 'video_id,start_frame,end_frame\nmovie,0,20\nmovie,20,40\n');
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('clips --scores=all', () => {
  it('text_area is high on the subtitled clip and about 0 on the clean one; every clip has a fingerprint dedup reads', async () => {
    const out = join(dir, 'out');
    const r = await clips({ sources: join(dir, 'in'), spans: join(dir, 'spans.csv'), outputDir: out, scores: 'all', onWarning: () => {}, tablesEveryS: 0 });
    expect(r.clipsMade).toBe(2);
    const rows = new Map(parseCsv(await readFile(join(out, 'clips.csv'), 'utf8')).map((row) => [row.clip_id!, row]));
    const subtitled = Number(rows.get('movie_0_20')!.text_area);
    const clean = Number(rows.get('movie_20_40')!.text_area);
    // The subtitle is about 440x34 px of 640x360 (6.5 %); boxes grow it a little (unclip).
    expect(subtitled).toBeGreaterThan(0.03);
    expect(subtitled).toBeLessThan(0.2);
    expect(clean).toBeLessThan(0.005);
    for (const row of rows.values()) expect(row.fingerprint).toMatch(/^[0-9a-f]{128}$/);
    // dedup takes the stored fingerprints: two different halves are not duplicates.
    const d = await dedup({ input: out, outputDir: join(dir, 'dedup'), onWarning: () => {} });
    const dups = parseCsv(await readFile(join(dir, 'dedup', 'duplicates.csv'), 'utf8'));
    expect(dups.filter((x) => x.kept === 'false')).toEqual([]);
    expect(d).toBeTruthy();
  }, 240_000);
});
