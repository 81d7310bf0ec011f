/**
 * `clipstream report` on the real output of each job, made here from the shipped fixtures, opened
 * from disk in a real headless chromium: no console error, no failed request and no request outside
 * the report's files; the counts it shows equal those scripts/report_counts.py reads from the tables
 * with Python's csv module; every image decodes; a screenshot of each page is kept as an artefact.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, checkPage, launch, NO_CHROMIUM } from '../helpers/browser.js';
import { REPO, runCliAsync } from '../helpers/run-cli.js';

const ENV = { FFMPEG_PATH: process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', FFPROBE_PATH: process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe' };
const F = (p: string) => join(REPO, 'fixtures', p);

function reference(dir: string): Record<string, number> {
  return JSON.parse(execFileSync('/usr/bin/python3', [join(REPO, 'scripts/report_counts.py'), dir], { encoding: 'utf8' })) as Record<string, number>;
}

/** Every page of the report, checked in the browser; returns the index's check. */
async function checkReport(browser: Browser, reportDir: string, shotName: string) {
  const pages = [join(reportDir, 'index.html')];
  for (const sub of ['videos', 'faces', 'segments']) {
    try {
      for (const n of readdirSync(join(reportDir, sub)).sort()) if (n.endsWith('.html')) pages.push(join(reportDir, sub, n));
    } catch {}
  }
  for (const n of ['duplicates.html', 'semdedup.html']) if (readdirSync(reportDir).includes(n)) pages.push(join(reportDir, n));
  let index: Awaited<ReturnType<typeof checkPage>> | undefined;
  let images = 0;
  for (const [i, p] of pages.entries()) {
    const shot = i < 3 ? `${shotName}-${i === 0 ? 'index' : p.slice(reportDir.length + 1).replace(/[/.]/g, '_')}.png` : undefined;
    const c = await checkPage(browser, p, shot);
    expect(c.problems, p).toEqual([]);
    for (const u of c.requests) expect(u.startsWith('file://'), `${p} requested ${u}`).toBe(true);
    for (const img of c.images) expect(img.naturalWidth, `${p}: ${img.src} does not decode`).toBeGreaterThan(0);
    images += c.images.length;
    // Every link leads to a page or file of the report, or of the output folder.
    for (const l of c.links) expect(readdirSync(dirname(resolve(dirname(p), decodeURIComponent(l))))).toContain(decodeURIComponent(l).split('/').pop());
    if (i === 0) index = c;
  }
  return { index: index!, pages: pages.length, images };
}

describe.skipIf(!CHROMIUM)('clipstream report in chromium, on the output of every job', () => {
  let browser: Browser;
  let tmp: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'clipstream-report-'));
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function run(args: string[]) {
    const r = await runCliAsync(args, { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    return r;
  }

  it('clips: videos, clips, failures and span issues; a preview made by the report for every clip', { timeout: 120_000 }, async () => {
    const out = join(tmp, 'clips');
    await run(['clips', `--sources=${F('sources/sources.csv')}`, `--spans=${F('sources/spans.csv')}`, `--out_dir=${out}`, '--shard_size=2']);
    await run(['dedup', out]); // duplicates.csv beside the tables (the fixture's clips are all different)
    const r = await run(['report', out]);
    expect(r.stdout.trim()).toBe(join(out, 'report', 'index.html'));
    const want = reference(out);
    expect(want.clips).toBe(5); // the recipe: fixtures/sources/spans.csv cuts 5 clips; one video is corrupt
    expect(want.failures).toBe(1);
    const { index, images } = await checkReport(browser, join(out, 'report'), 'clips');
    for (const k of ['videos', 'clips', 'kept', 'filtered', 'failures', 'span_issues', 'duplicate_groups', 'duplicates_removed'])
      expect(index.counts[k], k).toBe(want[k]);
    // One preview per clip on the video pages (made by the report: clips wrote none), all decoding.
    expect(images).toBe(want.clips);
  });

  it('extract, then semdedup on its shards: shards, clips written, failed and skipped with their reasons; removed clips', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'extract');
    await run(['extract', `--tar_path=${F('shards/shard-{000000..000001}.tar')}`, `--out_path=${out}`]);
    await run(['report', out, `--out=${join(tmp, 'extract-report')}`]);
    const want = reference(out);
    expect(want.shards).toBe(2);
    const { index } = await checkReport(browser, join(tmp, 'extract-report'), 'extract');
    for (const k of ['shards', 'extract_written', 'extract_failed', 'extract_skipped']) expect(index.counts[k], k).toBe(want[k]);

    // semdedup over those shards, in a folder of its own: the report shows its removed clips.
    const sem = join(tmp, 'semdedup');
    await run(['semdedup', `--features=${join(out, 'shard-{000000..000001}.msgpack')}`, `--out_dir=${sem}`, '--clusters=2', '--eps=0.5']);
    await run(['report', sem]);
    const semWant = reference(sem);
    expect(semWant.semdedup_removed).toBeGreaterThanOrEqual(0);
    const s = await checkReport(browser, join(sem, 'report'), 'semdedup');
    expect(s.index.counts.semdedup_removed).toBe(semWant.semdedup_removed);
  });

  it('faces --previews: a grid of crops per track, and the preview of each face clip', { timeout: 120_000 }, async () => {
    const out = join(tmp, 'faces');
    await run(['faces', `--input_dir=${F('faces')}`, `--output_dir=${out}`, '--previews']);
    await run(['report', out]);
    const want = reference(out);
    expect(want.faces).toBeGreaterThan(0);
    const { index, images } = await checkReport(browser, join(out, 'report'), 'faces');
    for (const k of ['faces', 'tracks', 'face_videos', 'face_failures']) expect(index.counts[k], k).toBe(want[k]);
    expect(images).toBe(2 * want.faces); // per face clip, its preview and a strip of its crops
    // Each preview is an animated WebP of 12 frames of the 512x512 clip, 192 px wide (PIL reads it).
    const keys = execFileSync(
      '/usr/bin/python3',
      ['-c', `import csv\nfor r in csv.DictReader(open(${JSON.stringify(join(out, 'metadata.csv'))})): print(r['clip_key'], r['num_frames'])`],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n');
    for (const line of keys) {
      const [key, n] = line.split(' ');
      const py = `from PIL import Image\nim=Image.open(${JSON.stringify(join(out, 'previews', `${key}.webp`))})\nprint(im.n_frames, *im.size)`;
      expect(execFileSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' }).trim()).toBe(`${Math.min(12, Number(n))} 192 192`);
    }
  });

  it('segments: the composite as frames, per segment', { timeout: 120_000 }, async () => {
    const out = join(tmp, 'segments');
    await run(['segments', `--input=${F('segments/matte_move.mp4')}`, `--output=${join(out, 'matted.mp4')}`, '--segment_seconds=2']);
    await run(['report', out]);
    const want = reference(out);
    expect(want.segments).toBe(3); // 6 s in 2 s segments
    const { index, images } = await checkReport(browser, join(out, 'report'), 'segments');
    for (const k of ['segment_videos', 'segments', 'segments_failed']) expect(index.counts[k], k).toBe(want[k]);
    expect(images).toBe(1 + 1 + 3); // the output on the index and on its page, and one strip per segment
  });

  it('refuses a folder that does not exist, naming it', async () => {
    const r = await runCliAsync(['report', join(tmp, 'no such folder')], { env: ENV });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such folder');
  });
});

describe.skipIf(CHROMIUM)('clipstream report in chromium', () => {
  it(NO_CHROMIUM, () => {});
});
