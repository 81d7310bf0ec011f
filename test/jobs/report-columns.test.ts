/**
 * `clipstream report` on hand-made tables carrying the columns other parts add (shots.csv, score
 * columns, kept/filter_reason, duplicates.csv, semdedup.csv), names with quotes, unicode and
 * `<script>`, a preview written by PreviewWriter beside clips that have none, and caps small
 * enough to page and cut: checked in a real chromium against Python's reading of the same tables.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeReport } from '../../src/report/report.js';
import { PreviewWriter } from '../../src/sinks/preview.js';
import { ARTIFACTS, CHROMIUM, checkPage, launch, NO_CHROMIUM } from '../helpers/browser.js';
import { REPO } from '../helpers/run-cli.js';

process.env.FFMPEG_PATH ??= '/usr/bin/ffmpeg';
process.env.FFPROBE_PATH ??= '/usr/bin/ffprobe';

const EVIL = '<script>alert(1)</script>ü"q\'';
// id, video, start, end, motion, sharpness, text_area, kept, reason
const CLIPS: [string, string, number, number, string, string, string, string, string][] = [
  ['v1_0_25', 'v1', 0, 2.5, '0.5', '10', '0', 'true', ''],
  [`v1_${EVIL}`, 'v1', 3, 4, '0.1', '20', '0.02', 'false', 'motion 0.1 < 0.2 <b>bold</b>'],
  ['v1 #?x', 'v1', 4.5, 6, '0.9', '', '0.5', 'false', 'text_area 0.5 > 0.1'],
  ['v1_7', 'v1', 7, 8, '0.7', '35', '0', 'true', ''],
  ['v1_9', 'v1', 8.5, 9.5, '0.8', '40', '0.01', 'true', ''],
  ['v2_0', 'v<b>2', 0, 1, '0.3', '5', '0', 'true', ''],
];

const fileOf = (id: string) => `${id.replace(/\//g, '_')}.mp4`;

function csv(rows: (string | number)[][]): string {
  return `${rows.map((r) => r.map((v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v))).join(',')).join('\n')}\n`;
}

function reference(dir: string): Record<string, number> {
  return JSON.parse(execFileSync('/usr/bin/python3', [join(REPO, 'scripts/report_counts.py'), dir], { encoding: 'utf8' })) as Record<string, number>;
}

describe.skipIf(!CHROMIUM)('clipstream report on the columns of shots, scores, filters and dedup', () => {
  let browser: Browser;
  let tmp: string;
  let out: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'clipstream-report-cols-'));
    out = join(tmp, 'out');
    mkdirSync(join(out, 'clips'), { recursive: true });
    for (const [i, c] of CLIPS.entries())
      execFileSync('/usr/bin/ffmpeg', [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        `testsrc=size=160x120:rate=10:duration=1,hue=h=${i * 50}`,
        '-pix_fmt',
        'yuv420p',
        join(out, 'clips', fileOf(c[0])),
      ]);
    writeFileSync(
      join(out, 'videos.csv'),
      csv([
        ['video_id', 'downloaded', 'failed', 'error', 'path', 'duration', 'num_clips'],
        ['v1', 'true', 'false', '', '/v/v1.mp4', 10, 5],
        ['v<b>2', 'true', 'false', '', '/v/v2.mp4', 2, 1],
        ['v3', 'true', 'true', '<img src=x onerror=alert(2)> broke', '/v/v3.mp4', '', 0],
      ]),
    );
    writeFileSync(
      join(out, 'clips.csv'),
      csv([
        ['clip_id', 'filename', 'video_id', 'start_frame', 'end_frame', 'start_s', 'end_s', 'motion', 'sharpness', 'text_area', 'kept', 'filter_reason'],
        ...CLIPS.map(([id, v, s, e, m, sh, t, k, r]) => [id, fileOf(id), v, s * 10, e * 10, s, e, m, sh, t, k, r]),
      ]),
    );
    writeFileSync(
      join(out, 'shots.csv'),
      csv([
        ['video_id', 'shot', 'start_frame', 'end_frame', 'start_s', 'end_s', 'score', 'kind'],
        ['v1', 0, 0, 30, 0, 3, 0.9, 'cut'],
        ['v1', 1, 30, 70, 3, 7, 0.8, 'cut'],
        ['v1', 2, 70, 100, 7, 10, 0.7, 'fade'],
      ]),
    );
    writeFileSync(
      join(out, 'duplicates.csv'),
      csv([
        ['group', 'clip_id', 'kept', 'distance'],
        [0, 'v1_0_25', 'true', 0],
        [0, `v1_${EVIL}`, 'false', 3],
        [1, 'v1_7', 'true', 0],
        [1, 'v1_9', 'false', 5],
        [1, 'v2_0', 'false', 7],
      ]),
    );
    writeFileSync(
      join(out, 'semdedup.csv'),
      csv([
        ['clip_id', 'cluster', 'kept', 'max_similarity', 'duplicate_of'],
        ['v1_0_25', 0, 'true', 0.5, ''],
        ['v1_7', 0, 'false', 0.99, 'v1_0_25'],
        ['v2_0', 1, 'true', 0.2, ''],
      ]),
    );
    // One clip with its own preview, written by PreviewWriter from 30 frames of a known colour ramp.
    const w = new PreviewWriter({ outputDir: out, clipId: 'v1_0_25', frames: 8, width: 128 });
    for (let i = 0; i < 30; i++) await w.push({ index: i, rgb: new Uint8Array(64 * 48 * 3).fill(i * 8), width: 64, height: 48 });
    expect(await w.finish()).toEqual({ preview: 'previews/v1_0_25.webp' });
    browser = await launch();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("PreviewWriter's WebP is animated: 8 frames, 128x96, read back by PIL", () => {
    const py = `from PIL import Image\nim=Image.open(${JSON.stringify(join(out, 'previews/v1_0_25.webp'))})\nv=[]\nfor i in range(im.n_frames):\n  im.seek(i); v.append(im.convert('L').getpixel((5,5)))\nprint(im.n_frames, im.size[0], im.size[1], *v)`;
    const got = execFileSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' }).trim().split(' ').map(Number);
    expect(got.slice(0, 3)).toEqual([8, 128, 96]);
    // Frames evenly spaced over the 30 pushed (grey levels i*8, increasing): the last shown is near the end.
    const grey = got.slice(3);
    for (let i = 1; i < grey.length; i++) expect(grey[i]!).toBeGreaterThan(grey[i - 1]!);
    expect(grey[grey.length - 1]!).toBeGreaterThanOrEqual(20 * 8 - 4);
  });

  it('shows the tables as Python reads them, escaped, paged and capped', { timeout: 120_000 }, async () => {
    const s = await makeReport({ outputDir: out, pageSize: 2, maxPagesPerVideo: 2, onWarning: (m) => expect.fail(m) });
    const want = reference(out);
    expect(want).toMatchObject({ clips: 6, kept: 4, filtered: 2, failures: 1, shots: 3, duplicate_groups: 2, duplicates_removed: 3, semdedup_removed: 1 });
    const index = await checkPage(browser, s.index, 'columns-index.png');
    expect(index.problems).toEqual([]);
    for (const k of Object.keys(want)) expect(index.counts[k], k).toBe(want[k]);

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(pathToFileURL(s.index).href);
    // Nothing from the data became markup: no script, no injected image; the text shows as written.
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.locator('b:text("bold")').count()).toBe(0);
    const text = (await page.locator('body').textContent()) ?? '';
    expect(text).toContain('<img src=x onerror=alert(2)> broke');
    expect(text).toContain('motion 0.1 < 0.2 <b>bold</b>');
    // A histogram per numeric score column, over the rows that have a value.
    const hist = await page
      .locator('svg[data-histogram]')
      .evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-histogram'), Number(e.getAttribute('data-total'))])));
    expect(hist).toEqual({ duration_s: 6, motion: 6, sharpness: 5, text_area: 6 });

    // v1: 5 clips, 2 per page, 2 pages at most: 4 shown, "1 more" on the last page.
    await page.goto(pathToFileURL(join(s.reportDir, 'videos/v0.html')).href);
    expect(await page.locator('rect[data-kind="shot"]').count()).toBe(3);
    expect(await page.locator('rect[data-kind="clip"]').count()).toBe(1);
    expect(await page.locator('rect[data-kind="filtered"]').count()).toBe(1);
    expect(await page.locator('[data-clip]').evaluateAll((els) => els.map((e) => e.getAttribute('data-clip')))).toEqual(['v1_0_25', `v1_${EVIL}`]);
    expect(await page.locator('.card.filtered').textContent()).toContain('motion 0.1 < 0.2 <b>bold</b>');
    await page.screenshot({ path: join(ARTIFACTS, 'columns-video.png'), fullPage: true });
    await page.goto(pathToFileURL(join(s.reportDir, 'videos/v0-p2.html')).href);
    expect(await page.locator('[data-clip]').evaluateAll((els) => els.map((e) => e.getAttribute('data-clip')))).toEqual(['v1 #?x', 'v1_7']);
    expect(await page.locator('[data-more]').getAttribute('data-more')).toBe('1');
    // Duplicate groups side by side, in the order of the table.
    await page.goto(pathToFileURL(join(s.reportDir, 'duplicates.html')).href);
    const groups = await page
      .locator('.group')
      .evaluateAll((els) => els.map((g) => Array.from(g.querySelectorAll('[data-clip]')).map((c) => c.getAttribute('data-clip'))));
    expect(groups).toEqual([
      ['v1_0_25', `v1_${EVIL}`],
      ['v1_7', 'v1_9', 'v2_0'],
    ]);
    await page.screenshot({ path: join(ARTIFACTS, 'columns-duplicates.png'), fullPage: true });
    await page.close();
    expect(errors).toEqual([]);

    // Every page: loads clean, every preview decodes; the clip with its own preview uses it, the others got one from the report.
    for (const p of ['videos/v0.html', 'videos/v0-p2.html', 'videos/v1.html', 'duplicates.html', 'semdedup.html']) {
      const c = await checkPage(browser, join(s.reportDir, p));
      expect(c.problems, p).toEqual([]);
      for (const img of c.images) expect(img.naturalWidth, `${p}: ${img.src}`).toBeGreaterThan(0);
      if (p === 'videos/v0.html')
        expect(c.images.map((i) => i.src)).toEqual(['../../previews/v1_0_25.webp', `../previews/${encodeURIComponent(`v1_${EVIL}`.replace(/\//g, '_'))}.webp`]);
    }
    expect(s.previewsMade).toBe(5); // all but v1_0_25, which has its own
  });
});

describe.skipIf(CHROMIUM)('clipstream report on the columns of shots, scores, filters and dedup', () => {
  it(NO_CHROMIUM, () => {});
});
