/**
 * `clips --previews`: each clip (kept or filtered) gets previews/<clip stem>.webp from the frames
 * the cut decodes for scores, and a `preview` column; a resumed run keeps them, one whose preview
 * is gone gets it back from the clip file, and the report shows the job's previews (not its own).
 * The WebP files are decoded by sharp and, independently, by Pillow (scripts/webp_frames_reference.py).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIP_COLUMNS } from '../../src/sinks/clip-table.js';
import { unitRecordPath } from '../../src/clips/table.js';
import { PIXEL_SCORES } from '../../src/features/clip-scores.js';
import { clips } from '../../src/jobs/clips.js';
import { makeReport } from '../../src/report/report.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeScoredClipsInput } from '../helpers/score-media.js';

const run = promisify(execFile);
let dir: string;
let sources: string;
let spans: string;
const quiet = { onWarning: () => {}, tablesEveryS: 0 };
const rowsOf = async (out: string) => new Map(parseCsv(await readFile(join(out, 'clips.csv'), 'utf8')).map((r) => [r.clip_id!, r]));
type Ref = { frames: number; width: number; height: number; mean_luma: number[]; max_step: number };
async function pillow(files: string[]): Promise<Record<string, Ref>> {
  const script = fileURLToPath(new URL('../../scripts/webp_frames_reference.py', import.meta.url));
  const { stdout } = await run('/usr/bin/python3', [script, ...files], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout);
}
// Recipe: parts.mp4 is 320x180 (score frames 160x90), four 25-frame parts: black, frozen, moving, panning;
// talk.mp4 is 160x120 at 10 fps with audio. Every clip has >= 12 frames, so 12 preview frames of 160 ms;
// libwebp merges identical consecutive frames, so the still clips (black, frozen) come out as one still frame.
const STILL = ['parts_0_25', 'parts_25_50'];
const IDS = ['parts_0_25', 'parts_25_50', 'parts_50_75', 'parts_75_100', 'talk_0_30'];
const SIZE: Record<string, [number, number]> = { parts: [160, 90], talk: [160, 120] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-previews-'));
  ({ sources, spans } = await makeScoredClipsInput(dir));
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('clips --previews', () => {
  const a = () => join(dir, 'a');
  it('writes one animated WebP per clip, kept and filtered, named in the preview column', async () => {
    const r = await clips({ sources, spans, outputDir: a(), previews: true, filter: 'black<=0.5', ...quiet });
    expect(r.clipsMade).toBe(5);
    const header = (await readFile(join(a(), 'clips.csv'), 'utf8')).split('\n')[0];
    expect(header).toBe([...CLIP_COLUMNS, ...PIXEL_SCORES, 'fingerprint', 'preview', 'kept', 'filter_reason'].join(','));
    const rows = await rowsOf(a());
    expect(rows.get('parts_0_25')!.kept).toBe('false');
    expect((await readdir(join(a(), 'previews'))).sort()).toEqual(IDS.map((id) => `${id}.webp`));
    const files = IDS.map((id) => join(a(), rows.get(id)!.preview!));
    for (const [i, id] of IDS.entries()) {
      expect(rows.get(id)!.preview).toBe(`previews/${id}.webp`);
      const m = await sharp(files[i]!, { pages: -1 }).metadata();
      const [w, h] = SIZE[id.split('_')[0]!]!;
      const pages = STILL.includes(id) ? 1 : 12;
      expect({ format: m.format, pages: m.pages ?? 1, width: m.width, height: m.height }, id).toEqual({ format: 'webp', pages, width: w, height: h * pages });
      if (pages > 1) expect(m.delay, id).toEqual(Array(12).fill(160));
    }
    const ref = await pillow(files);
    const of = (id: string) => ref[files[IDS.indexOf(id)]!]!;
    for (const id of IDS) expect([of(id).frames, of(id).width, of(id).height], id).toEqual([STILL.includes(id) ? 1 : 12, ...SIZE[id.split('_')[0]!]!]);
    // The frames are the clip's own: the black part is black, the frozen part still, the panning part moves.
    expect(Math.max(...of('parts_0_25').mean_luma)).toBeLessThan(24);
    expect(Math.min(...of('parts_25_50').mean_luma)).toBeGreaterThan(40);
    expect(of('parts_75_100').max_step).toBeGreaterThan(10);
  }, 180_000);

  it('a resumed run keeps the previews; a lost one comes back from the clip file', async () => {
    const before = await readFile(join(a(), 'clips.csv'));
    const mtimes = new Map<string, number>();
    for (const id of IDS) mtimes.set(id, (await stat(join(a(), 'previews', `${id}.webp`))).mtimeMs);
    await rm(join(a(), 'clips', 'parts_50_75.mp4'));
    await rm(unitRecordPath(a(), 'parts'));
    await rm(join(a(), 'previews', 'talk_0_30.webp'));
    const r = await clips({ sources, spans, outputDir: a(), previews: true, filter: 'black<=0.5', ...quiet });
    expect(r.clipsMade).toBe(1);
    expect((await readFile(join(a(), 'clips.csv'))).equals(before)).toBe(true);
    expect((await readdir(join(a(), 'previews'))).sort()).toEqual(IDS.map((id) => `${id}.webp`));
    // Clips not cut again keep their preview file untouched.
    for (const id of ['parts_0_25', 'parts_25_50', 'parts_75_100']) expect((await stat(join(a(), 'previews', `${id}.webp`))).mtimeMs).toBe(mtimes.get(id));
    const back = join(a(), 'previews', 'talk_0_30.webp');
    const ref = (await pillow([back]))[back]!;
    expect([ref.frames, ref.width, ref.height]).toEqual([12, 160, 120]);
  }, 180_000);

  it('the report shows the job previews, making none of its own', async () => {
    const s = await makeReport({ outputDir: a(), onWarning: (m) => expect.fail(m) });
    expect(s.previewsMade).toBe(0);
    const pages = (await readdir(s.reportDir, { recursive: true })).filter((f) => String(f).endsWith('.html'));
    let html = '';
    for (const p of pages) html += await readFile(join(s.reportDir, String(p)), 'utf8');
    expect(html).not.toMatch(/preview by report/);
    for (const id of IDS) expect(html).toMatch(new RegExp(`src="[^"]*\\.\\./previews/${id}\\.webp"`));
  }, 120_000);

  it('previews without scores: only the preview column; previews off: no column, no folder', async () => {
    const b = join(dir, 'b');
    await clips({ sources, spans, outputDir: b, scores: 'none', previews: true, ...quiet });
    expect((await readFile(join(b, 'clips.csv'), 'utf8')).split('\n')[0]).toBe([...CLIP_COLUMNS, 'preview'].join(','));
    expect((await readdir(join(b, 'previews'))).sort()).toEqual(IDS.map((id) => `${id}.webp`));
    const c = join(dir, 'c');
    await clips({ sources, spans, outputDir: c, ...quiet });
    expect((await readFile(join(c, 'clips.csv'), 'utf8')).split('\n')[0]).toBe([...CLIP_COLUMNS, ...PIXEL_SCORES, 'fingerprint'].join(','));
    await expect(stat(join(c, 'previews'))).rejects.toThrow();
  }, 180_000);
});
