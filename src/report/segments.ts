/**
 * The segments part of the report: every `<name>.segments/` work folder in the output folder, with
 * the final video as a strip of frames (composite, alpha or foreground, as the run's settings say),
 * each segment's record (frames, status, the error of a failed one) and a strip of its own frames.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../util/fs.js';
import { fitName } from '../util/names.js';
import type { ReportContext } from './context.js';
import { counts, esc, href, moreNote, page } from './html.js';
import { makeStrip } from './media.js';
import type { Section } from './section.js';

async function workDirs(dir: string): Promise<string[]> {
  const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return names
    .filter((d) => d.isDirectory() && d.name.endsWith('.segments'))
    .map((d) => d.name)
    .sort();
}

export async function hasSegments(dir: string): Promise<boolean> {
  return (await workDirs(dir)).length > 0;
}

interface SegRecord {
  index: number;
  status: string;
  startFrame: number;
  endFrame: number;
  frames: number;
  outputs?: { file: string }[];
  error?: string;
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function strip(ctx: ReportContext, video: string, rel: string, count: number): Promise<string> {
  if (await exists(join(ctx.reportDir, rel))) return rel;
  if (!(await exists(video))) return '';
  try {
    await makeStrip(video, join(ctx.reportDir, rel), { count, tileWidth: 120, signal: ctx.signal });
    return rel;
  } catch (err) {
    ctx.warn(`report: no frames shown for ${video}: ${(err as Error).message}`);
    return '';
  }
}

export async function segmentsSection(ctx: ReportContext): Promise<Section> {
  const dir = ctx.outputDir;
  const works = await workDirs(dir);
  let segments = 0;
  let failed = 0;
  const rows: string[] = [];
  for (const [i, work] of works.entries()) {
    const name = work.slice(0, -'.segments'.length);
    const wdir = join(dir, work);
    const settings = (await readJson<{ outputType?: string; format?: string }>(join(wdir, 'settings.json'))) ?? {};
    const done = await exists(join(wdir, 'done.json'));
    const outputs = (await readdir(dir)).filter((n) => n !== work && n.startsWith(`${name}.`)).sort();
    const recNames = (await readdir(join(wdir, 'records')).catch(() => [] as string[])).filter((n) => /^seg_\d+\.json$/.test(n)).sort();
    const recs: SegRecord[] = [];
    for (const n of recNames) {
      const r = await readJson<SegRecord>(join(wdir, 'records', n));
      if (r) recs.push(r);
    }
    segments += recs.length;
    const bad = recs.filter((r) => r.status !== 'done');
    failed += bad.length;
    const finalVideo = outputs.find((n) => /\.(mp4|mkv|mov|webm)$/i.test(n));
    const finalStrip = finalVideo ? await strip(ctx, join(dir, finalVideo), `strips/${fitName(`${name}.final.jpg`)}`, 8) : '';
    const segRows: string[] = [];
    for (const r of recs.slice(0, ctx.limits.maxRows)) {
      const file = r.outputs?.[0]?.file;
      const s = file && /\.(mp4|mkv|mov|webm)$/i.test(file) ? await strip(ctx, join(wdir, file), `strips/${fitName(`${name}.seg${r.index}.jpg`)}`, 4) : '';
      segRows.push(
        `<tr><td>${r.index}</td><td${r.status === 'done' ? '' : ' class="fail"'}>${esc(r.status)}${r.error ? `: ${esc(r.error)}` : ''}</td><td>${r.startFrame}–${r.endFrame}</td><td>${r.frames}</td><td>${
          s ? `<img src="../${esc(href(s))}" alt="frames of segment ${r.index}" data-strip="${esc(`${name}:${r.index}`)}">` : esc(file ? 'not kept' : '')
        }</td></tr>`,
      );
    }
    const body = [
      `<h1>Segments of ${esc(name)}</h1>`,
      `<div>output: ${outputs.map((o) => `<code>${esc(o)}</code>`).join(', ') || 'none yet'}; output type <b>${esc(settings.outputType ?? '?')}</b>, format ${esc(settings.format ?? '?')}; ${done ? 'finished' : '<span class="fail">not finished</span>'}</div>`,
      counts([
        ['segments', 'segments', recs.length],
        ['segments_failed', 'failed', bad.length],
      ]),
      finalStrip
        ? `<h3>The output (${esc(settings.outputType ?? '')})</h3><div class="strip"><img src="../${esc(href(finalStrip))}" alt="frames of ${esc(finalVideo)}" data-strip="${esc(name)}"></div>`
        : '',
      '<h3>Segments</h3>',
      `<table data-table="segments"><tr><th>segment</th><th>status</th><th>frames</th><th>count</th><th>frames of the segment</th></tr>${segRows.join('')}</table>`,
      moreNote(recs.length - segRows.length, 'segments'),
    ].join('\n');
    await ctx.write(`segments/v${i}.html`, page(`clipstream report: segments of ${name}`, body, '../'));
    rows.push(
      `<tr><td><a href="segments/v${i}.html">${esc(name)}</a></td><td>${esc(settings.outputType ?? '')}</td><td>${recs.length}</td><td${bad.length ? ' class="fail"' : ''}>${bad.length}</td><td>${done ? 'finished' : 'not finished'}</td><td>${
        finalStrip ? `<img src="${esc(href(finalStrip))}" alt="frames of ${esc(finalVideo)}" data-strip="${esc(name)}" style="max-width:480px">` : ''
      }</td></tr>`,
    );
    if (bad.length) rows.push(`<tr><td colspan="6" class="fail">${bad.map((r) => `segment ${r.index}: ${esc(r.error ?? r.status)}`).join('<br>')}</td></tr>`);
  }
  const html = [
    '<h2 id="segments">Segments</h2>',
    counts([
      ['segment_videos', 'videos', works.length],
      ['segments', 'segments', segments],
      ['segments_failed', 'failed segments', failed],
    ]),
    `<table data-table="segment-videos"><tr><th>video</th><th>output type</th><th>segments</th><th>failed</th><th>state</th><th>frames of the output</th></tr>${rows.join('')}</table>`,
    moreNote(0, ''),
  ].join('\n');
  return { name: 'segments', title: 'Segments', html, counts: { segment_videos: works.length, segments, segments_failed: failed } };
}
