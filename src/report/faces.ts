/**
 * The faces part of the report: per video a page with its tracks, each track a row of its crops
 * (frames of the face clip, one strip image the report decodes) beside its preview when `--previews`
 * made one, and its measures; failed videos with their reasons.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../util/fs.js';
import { fitName } from '../util/names.js';
import { fromReport, type ReportContext } from './context.js';
import { counts, esc, fmt, href, moreNote, page, table } from './html.js';
import { makeStrip } from './media.js';
import type { Section } from './section.js';
import { csvRows, num, type Row } from './tables.js';

export async function hasFaces(dir: string): Promise<boolean> {
  return (await exists(join(dir, 'metadata.csv'))) || (await exists(join(dir, 'faces-videos.json')));
}

interface FacesVideo {
  file: string;
  status: string;
  error?: string;
  clips?: string[];
}

const MEASURES = ['start_time', 'end_time', 'num_frames', 'det_score_mean', 'face_size', 'sharpness', 'brightness', 'contrast'];

export async function facesSection(ctx: ReportContext): Promise<Section> {
  const dir = ctx.outputDir;
  let videos: FacesVideo[] = [];
  if (await exists(join(dir, 'faces-videos.json'))) {
    try {
      const j = JSON.parse(await readFile(join(dir, 'faces-videos.json'), 'utf8')) as { videos?: Record<string, FacesVideo> };
      videos = Object.entries(j.videos ?? {}).map(([file, v]) => ({ ...v, file: v.file ?? file }));
    } catch (err) {
      ctx.warn(`report: ${join(dir, 'faces-videos.json')} is not readable: ${(err as Error).message}`);
    }
  }
  const index = new Map<string, { file: string; i: number; faces: number; tracks: Set<string> }>();
  const videoOf = (file: string) => {
    let v = index.get(file);
    if (!v) {
      v = { file, i: index.size, faces: 0, tracks: new Set() };
      index.set(file, v);
    }
    return v;
  };
  for (const v of videos) videoOf(v.file);
  let faces = 0;
  const scoreCols = new Set<string>();
  for await (const r of csvRows(join(dir, 'metadata.csv'))) {
    faces++;
    // file_original is the source path; the video's name in faces-videos.json is relative: match by its tail.
    const file = relativeName(r.file_original ?? '', index) ?? r.file_original ?? '';
    const v = videoOf(file);
    v.faces++;
    v.tracks.add(r.track ?? '');
    for (const c of Object.keys(r)) if (c.endsWith('_score') && !c.startsWith('det_')) scoreCols.add(c);
    if (v.i < ctx.limits.maxVideos) await ctx.scratch.add(`f${v.i}`, r);
  }
  await ctx.scratch.flush();
  const status = new Map(videos.map((v) => [v.file, v]));
  let tracks = 0;
  for (const v of index.values()) tracks += v.tracks.size;
  const measures = [...MEASURES, ...scoreCols];
  for (const v of index.values()) {
    if (v.i >= ctx.limits.maxVideos) continue;
    const rows: string[] = [];
    let n = 0;
    for await (const r of ctx.scratch.read<Row>(`f${v.i}`)) {
      if (n++ >= ctx.limits.pageSize) continue;
      rows.push(await trackRow(ctx, r, measures));
    }
    const s = status.get(v.file);
    const body = [
      `<h1>Faces in ${esc(v.file)}</h1>`,
      s?.status === 'failed' ? `<div class="fail">failed: ${esc(s.error)}</div>` : '',
      counts([
        ['faces', 'face clips', v.faces],
        ['tracks', 'tracks', v.tracks.size],
      ]),
      '<h3>Tracks: the crops of each face clip</h3>',
      rows.join('\n') || '<div>no face found in this video</div>',
      moreNote(n - rows.length, 'face clips of this video'),
    ].join('\n');
    await ctx.write(`faces/v${v.i}.html`, page(`clipstream report: faces in ${v.file}`, body, '../'));
  }
  const list = [...index.values()];
  const failed = videos.filter((v) => v.status === 'failed');
  const html = [
    '<h2 id="faces">Faces</h2>',
    counts([
      ['face_videos', 'videos', list.length],
      ['faces', 'face clips', faces],
      ['tracks', 'tracks', tracks],
      ['face_failures', 'failed videos', failed.length],
    ]),
    '<h3>Videos</h3>',
    `<table data-table="face-videos"><tr><th>video</th><th>status</th><th>face clips</th><th>tracks</th></tr>${list
      .slice(0, ctx.limits.maxVideos)
      .map((v) => {
        const s = status.get(v.file);
        return `<tr><td><a href="faces/v${v.i}.html">${esc(v.file)}</a></td><td${s?.status === 'failed' ? ' class="fail"' : ''}>${esc(s ? `${s.status}${s.error ? `: ${s.error}` : ''}` : 'in metadata.csv')}</td><td>${v.faces}</td><td>${v.tracks.size}</td></tr>`;
      })
      .join('')}</table>`,
    moreNote(list.length - ctx.limits.maxVideos, 'videos'),
    failed.length
      ? `<h3>Failed videos</h3>${table(['file', 'error'], failed.slice(0, ctx.limits.maxRows) as unknown as Record<string, unknown>[], 'data-table="face-failures"')}`
      : '',
  ].join('\n');
  return { name: 'faces', title: 'Faces', html, counts: { face_videos: list.length, faces, tracks, face_failures: failed.length } };
}

/** The name `faces-videos.json` gives a source path: the longest tail of its path that is a known name. */
function relativeName(path: string, known: ReadonlyMap<string, unknown>): string | undefined {
  if (known.has(path)) return path;
  const parts = path.split('/');
  let found: string | undefined;
  for (let i = parts.length - 1; i >= 1; i--) {
    const tail = parts.slice(i).join('/');
    if (known.has(tail)) found = tail;
  }
  return found;
}

async function trackRow(ctx: ReportContext, r: Row, measures: readonly string[]): Promise<string> {
  const key = r.clip_key ?? '';
  const clip = join(ctx.outputDir, r.file_relative || `clips/${key}.mp4`);
  const stripRel = `strips/${fitName(`${key}.jpg`)}`;
  let strip = '';
  if (await exists(join(ctx.reportDir, stripRel))) strip = stripRel;
  else if (await exists(clip)) {
    try {
      await makeStrip(clip, join(ctx.reportDir, stripRel), { count: 8, tileWidth: 96, signal: ctx.signal });
      strip = stripRel;
    } catch (err) {
      ctx.warn(`report: no crops shown for ${key}: ${(err as Error).message}`);
    }
  }
  const preview = (await exists(join(ctx.outputDir, 'previews', fitName(`${key}.webp`)))) ? fromReport(ctx, `previews/${fitName(`${key}.webp`)}`) : '';
  const facts = measures
    .filter((c) => r[c] !== undefined && r[c] !== '')
    .map((c) => `${esc(c)}: <b>${esc(Number.isNaN(num(r[c])) ? r[c] : fmt(num(r[c])))}</b>`)
    .join(', ');
  return `<div class="group" data-track="${esc(key)}"><div style="min-width:140px"><b>${esc(key)}</b><br>track ${esc(r.track)}<br>frames ${esc(r.start_frame)}–${esc(r.end_frame)}</div>${
    preview ? `<img src="../${esc(href(preview))}" alt="preview of ${esc(key)}" data-preview="${esc(key)}">` : ''
  }<div class="strip">${strip ? `<img src="../${esc(href(strip))}" alt="crops of ${esc(key)}" data-strip="${esc(key)}">` : '<div class="noprev">no crops (clip file missing)</div>'}<div>${facts}</div></div></div>`;
}
