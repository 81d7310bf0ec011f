/**
 * The clips part of the report, driven by whichever tables and columns are there: videos.csv,
 * clips.csv (any score columns, `kept`, `filter_reason`, `preview`), span_issues.csv, shots.csv,
 * duplicates.csv, semdedup.csv. Per video a page (or several) with a timeline of shots and clips and
 * the clips as cards; on the index the counts, histograms, failures and the duplicate groups.
 */
import { join } from 'node:path';
import { CLIP_COLUMNS } from '../sinks/clip-table.js';
import { exists } from '../util/fs.js';
import { type ReportContext, previewOf, type Preview } from './context.js';
import { counts, esc, fmt, Histogram, href, moreNote, page, table, timelineSvg, type TimelineSpan } from './html.js';
import { csvColumns, csvRows, num, type Row, truthy } from './tables.js';
import type { Section } from './section.js';

/** clips.csv columns that describe a clip rather than score it: no histogram, shown as facts. */
const STRUCTURAL = new Set<string>([...CLIP_COLUMNS, 'kept', 'filter_reason', 'preview']);

const MAX_REASONS = 1000;

interface VideoMeta {
  id: string;
  index: number;
  failed: boolean;
  error: string;
  duration: number;
  clips: number;
  kept: number;
  filtered: number;
  shots: number;
}

/** Whether a clips.csv row is kept: its `kept` column, else no `filter_reason`; without either, kept. */
export function isKept(row: Row, columns: ReadonlySet<string>): boolean {
  if (columns.has('kept')) return truthy(row.kept);
  if (columns.has('filter_reason')) return !row.filter_reason;
  return true;
}

const TABLES = ['clips.csv', 'videos.csv', 'shots.csv', 'duplicates.csv', 'semdedup.csv'];

/** Whether the folder holds clips' tables, or only dedup's or semdedup's. */
export async function hasClips(dir: string): Promise<boolean> {
  for (const t of TABLES) if (await exists(join(dir, t))) return true;
  return false;
}

export async function clipsSection(ctx: ReportContext): Promise<Section> {
  const { outputDir: dir, limits } = ctx;
  const videos = new Map<string, VideoMeta>();
  const videoOf = (id: string): VideoMeta => {
    let v = videos.get(id);
    if (!v) {
      v = { id, index: videos.size, failed: false, error: '', duration: Number.NaN, clips: 0, kept: 0, filtered: 0, shots: 0 };
      videos.set(id, v);
    }
    return v;
  };
  let failures = 0;
  for await (const r of csvRows(join(dir, 'videos.csv'))) {
    const v = videoOf(r.video_id ?? '');
    v.failed = truthy(r.failed);
    v.error = r.error ?? '';
    v.duration = num(r.duration);
    if (v.failed) failures++;
  }

  // Pass 1 over clips.csv: counts, ranges of the numeric columns, rows sorted per video into the scratch.
  const clipCols = await csvColumns(join(dir, 'clips.csv'));
  const colSet = new Set(clipCols);
  const scoreCols = clipCols.filter((c) => !STRUCTURAL.has(c));
  const ranges = new Map<string, { lo: number; hi: number; numeric: boolean }>();
  for (const c of ['duration_s', ...scoreCols]) ranges.set(c, { lo: Number.POSITIVE_INFINITY, hi: Number.NEGATIVE_INFINITY, numeric: true });
  const reasons = new Map<string, number>();
  let clips = 0;
  let kept = 0;
  const see = (c: string, raw: string | undefined, v: number) => {
    const r = ranges.get(c)!;
    if (!r.numeric) return;
    if (raw !== undefined && raw !== '' && Number.isNaN(v)) r.numeric = false;
    else if (!Number.isNaN(v)) {
      r.lo = Math.min(r.lo, v);
      r.hi = Math.max(r.hi, v);
    }
  };
  for await (const r of csvRows(join(dir, 'clips.csv'))) {
    clips++;
    const v = videoOf(r.video_id ?? '');
    v.clips++;
    if (isKept(r, colSet)) {
      kept++;
      v.kept++;
    } else {
      v.filtered++;
      // Distinct reasons are kept up to a bound (a reason may carry its number); the rest are lumped together.
      let why = r.filter_reason || '(no reason given)';
      if (!reasons.has(why) && reasons.size >= MAX_REASONS) why = '(other reasons)';
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    see('duration_s', undefined, num(r.end_s) - num(r.start_s));
    for (const c of scoreCols) see(c, r[c], num(r[c]));
    if (v.index < limits.maxVideos) await ctx.scratch.add(`c${v.index}`, r);
  }
  let shots = 0;
  for await (const r of csvRows(join(dir, 'shots.csv'))) {
    shots++;
    const v = videoOf(r.video_id ?? '');
    v.shots++;
    if (v.index < limits.maxVideos) await ctx.scratch.add(`s${v.index}`, r);
  }
  await ctx.scratch.flush();

  // Pass 2: the histograms.
  const hists = [...ranges].filter(([, r]) => r.numeric && r.lo <= r.hi).map(([c, r]) => new Histogram(c, r.lo, r.hi));
  if (hists.length > 0) {
    for await (const r of csvRows(join(dir, 'clips.csv'))) {
      for (const h of hists) h.add(h.name === 'duration_s' ? num(r.end_s) - num(r.start_s) : num(r[h.name]));
    }
  }

  // The pages of each video.
  for (const v of videos.values()) if (v.index < limits.maxVideos) await writeVideoPages(ctx, v, colSet, scoreCols);

  const spanIssues: Row[] = [];
  let spanCount = 0;
  for await (const r of csvRows(join(dir, 'span_issues.csv'))) if (spanCount++ < limits.maxRows) spanIssues.push(r);

  const dup = await duplicatesPage(ctx);
  const sem = await semdedupPage(ctx);

  const filtered = clips - kept;
  if (!(await exists(join(dir, 'clips.csv'))) && !(await exists(join(dir, 'videos.csv'))) && shots === 0) {
    // Only a dedup or semdedup result: its part alone.
    const found: Record<string, number> = {};
    for (const [k, , n] of [...dup.counts, ...sem.counts]) found[k] = n;
    return {
      name: 'dedup',
      title: 'Duplicates',
      html: `<h2 id="dedup">Duplicates</h2>${counts([...dup.counts, ...sem.counts])}${dup.html}${sem.html}`,
      counts: found,
    };
  }
  const list = [...videos.values()];
  const shownVideos = list.slice(0, limits.maxVideos);
  const failedList = list.filter((v) => v.failed);
  const html = [
    '<h2 id="clips">Clips</h2>',
    counts([
      ['videos', 'videos', videos.size],
      ['clips', 'clips', clips],
      ['kept', 'kept', kept],
      ['filtered', 'filtered', filtered],
      ['failures', 'failed videos', failures],
      ['span_issues', 'span issues', spanCount],
      ...(shots > 0 ? [['shots', 'shots', shots] as [string, string, number]] : []),
      ...dup.counts,
      ...sem.counts,
    ]),
    hists.length ? `<h3>Histograms</h3><div class="charts">${hists.map((h) => h.svg()).join('')}</div>` : '',
    '<h3>Videos</h3>',
    `<table data-table="videos"><tr><th>video</th><th>status</th><th>duration (s)</th><th>clips</th><th>kept</th><th>filtered</th>${shots ? '<th>shots</th>' : ''}</tr>${shownVideos
      .map(
        (v) =>
          `<tr><td>${v.index < limits.maxVideos ? `<a href="videos/v${v.index}.html">${esc(v.id)}</a>` : esc(v.id)}</td><td${v.failed ? ' class="fail"' : ''}>${v.failed ? `failed: ${esc(v.error)}` : 'done'}</td><td>${Number.isFinite(v.duration) ? esc(fmt(v.duration)) : ''}</td><td>${v.clips}</td><td>${v.kept}</td><td>${v.filtered}</td>${shots ? `<td>${v.shots}</td>` : ''}</tr>`,
      )
      .join('')}</table>`,
    moreNote(list.length - shownVideos.length, 'videos (counted above, no page of their own)'),
    reasons.size
      ? `<h3>Why clips were filtered</h3>${table(
          ['reason', 'clips'],
          [...reasons].sort((a, b) => b[1] - a[1]).map(([reason, n]) => ({ reason, clips: n })),
          'data-table="filter-reasons"',
        )}`
      : '',
    failedList.length
      ? `<h3>Failed videos</h3>${table(
          ['video_id', 'error'],
          failedList.slice(0, limits.maxRows).map((v) => ({ video_id: v.id, error: v.error })),
          'data-table="failures"',
        )}${moreNote(failedList.length - limits.maxRows, 'failed videos')}`
      : '',
    spanCount
      ? `<h3>Span issues</h3>${table(['video_id', 'span', 'action', 'reason'], spanIssues, 'data-table="span-issues"')}${moreNote(spanCount - spanIssues.length, 'span issues')}`
      : '',
    dup.html,
    sem.html,
  ].join('\n');
  return { name: 'clips', title: 'Clips', html, counts: { videos: videos.size, clips, kept, filtered, failures, span_issues: spanCount, shots } };
}

function card(r: Row, p: Preview, keptNow: boolean, scoreCols: readonly string[], root: string, dropped = 'filtered'): string {
  const img = p.path
    ? `<img src="${esc(root + href(p.path))}" alt="preview of ${esc(r.clip_id)}" data-preview="${esc(r.clip_id)}">`
    : `<div class="noprev">${esc(p.note ? 'no preview (failed)' : 'no preview')}</div>`;
  const scores = scoreCols
    .filter((c) => r[c] !== undefined && r[c] !== '')
    .map((c) => `${esc(c)}: <b>${esc(fmt(num(r[c])) === 'NaN' ? r[c] : fmt(num(r[c])))}</b>`)
    .join('<br>');
  return `<div class="card ${keptNow ? 'kept' : 'filtered'}" data-clip="${esc(r.clip_id)}">${img}
<div><b>${esc(r.clip_id)}</b> ${keptNow ? '<span class="tag">kept</span>' : `<span class="tag filtered">${esc(dropped)}</span>`}${p.byReport ? ' <span class="tag report" title="made by the report">preview by report</span>' : ''}</div>
${r.start_s ? `<div>${esc(fmt(num(r.start_s)))}–${esc(fmt(num(r.end_s)))} s, frames ${esc(r.start_frame)}–${esc(r.end_frame)}${r.width ? `, ${esc(r.width)}×${esc(r.height)}` : ''}</div>` : ''}
${keptNow ? '' : `<div class="fail">${esc(r.filter_reason || '(no reason given)')}</div>`}
${scores ? `<div>${scores}</div>` : ''}</div>`;
}

async function writeVideoPages(ctx: ReportContext, v: VideoMeta, colSet: ReadonlySet<string>, scoreCols: readonly string[]): Promise<void> {
  const { pageSize, maxPagesPerVideo } = ctx.limits;
  const pages = Math.max(1, Math.min(maxPagesPerVideo, Math.ceil(v.clips / pageSize)));
  const name = (p: number) => (p === 0 ? `v${v.index}.html` : `v${v.index}-p${p + 1}.html`);
  const rows = ctx.scratch.read<Row>(`c${v.index}`);
  for (let p = 0; p < pages; p++) {
    const chunk: Row[] = [];
    while (chunk.length < pageSize) {
      const next = await rows.next();
      if (next.done) break;
      chunk.push(next.value);
    }
    // The timeline: every shot of the video (capped), this page's clips.
    const spans: TimelineSpan[] = [];
    let shotsLeft = 0;
    let end = 0;
    for await (const s of ctx.scratch.read<Row>(`s${v.index}`)) {
      end = Math.max(end, num(s.end_s) || 0);
      if (spans.length < 5000)
        spans.push({
          start: num(s.start_s),
          end: num(s.end_s),
          kind: 'shot',
          label: `shot ${s.shot ?? ''}: ${s.start_s}–${s.end_s} s${s.kind ? ` (${s.kind})` : ''}`,
        });
      else shotsLeft++;
    }
    const cards: string[] = [];
    for (const r of chunk) {
      const k = isKept(r, colSet);
      end = Math.max(end, num(r.end_s) || 0);
      spans.push({
        start: num(r.start_s),
        end: num(r.end_s),
        kind: k ? 'clip' : 'filtered',
        label: `${r.clip_id}${k ? '' : `: ${r.filter_reason || 'filtered'}`}`,
      });
      cards.push(card(r, await previewOf(ctx, r.clip_id ?? '', r), k, scoreCols, '../'));
    }
    const duration = Number.isFinite(v.duration) && v.duration > 0 ? v.duration : end;
    const nav =
      pages > 1
        ? `<div>pages: ${Array.from({ length: pages }, (_, i) => (i === p ? `<b>${i + 1}</b>` : `<a href="${name(i)}">${i + 1}</a>`)).join(' ')}</div>`
        : '';
    const shown = pages * pageSize;
    const body = [
      `<h1>Video ${esc(v.id)}</h1>`,
      v.failed ? `<div class="fail">failed: ${esc(v.error)}</div>` : '',
      counts([
        ['clips', 'clips', v.clips],
        ['kept', 'kept', v.kept],
        ['filtered', 'filtered', v.filtered],
        ['shots', 'shots', v.shots],
      ]),
      `<h3>Timeline${pages > 1 ? ` (clips of page ${p + 1})` : ''}</h3>`,
      '<div>shots above (grey), clips below: kept green, filtered red</div>',
      timelineSvg(duration, spans, shotsLeft ? `${shotsLeft} more shots not drawn` : ''),
      nav,
      `<h3>Clips</h3><div class="cards">${cards.join('\n')}</div>`,
      p === pages - 1 ? moreNote(v.clips - shown, 'clips of this video') : '',
      nav,
    ].join('\n');
    await ctx.write(`videos/${name(p)}`, page(`clipstream report: ${v.id}`, body, '../'));
  }
  await rows.return(undefined);
}

async function duplicatesPage(ctx: ReportContext): Promise<{ html: string; counts: [string, string, number][] }> {
  const path = join(ctx.outputDir, 'duplicates.csv');
  if (!(await exists(path))) return { html: '', counts: [] };
  const MAX_MEMBERS = 24;
  const parts: string[] = [];
  let groups = 0;
  let rows = 0;
  let removed = 0;
  let current: string | undefined;
  let members: string[] = [];
  let inGroup = 0;
  const close = () => {
    if (current === undefined) return;
    if (groups <= ctx.limits.maxRows)
      parts.push(
        `<div class="group" data-group="${esc(current)}"><div><b>group ${esc(current)}</b><br>${inGroup} clips</div>${members.join('')}${inGroup > members.length ? moreNote(inGroup - members.length, 'clips of this group') : ''}</div>`,
      );
    members = [];
    inGroup = 0;
  };
  for await (const r of csvRows(path)) {
    rows++;
    const keptNow = truthy(r.kept);
    if (!keptNow) removed++;
    if (r.group !== current) {
      close();
      current = r.group ?? '';
      groups++;
    }
    inGroup++;
    if (groups <= ctx.limits.maxRows && members.length < MAX_MEMBERS) {
      const p = await previewOf(ctx, r.clip_id ?? '', {});
      members.push(
        card(
          { clip_id: r.clip_id ?? '', start_s: '', end_s: '', distance: r.distance ?? '', filter_reason: keptNow ? '' : 'duplicate' },
          p,
          keptNow,
          ['distance'],
          '',
          'not kept',
        ),
      );
    }
  }
  close();
  const body = [
    '<h1>Duplicate groups</h1>',
    counts([
      ['duplicate_groups', 'groups', groups],
      ['duplicate_rows', 'clips in groups', rows],
      ['duplicates_removed', 'not kept', removed],
    ]),
    parts.join('\n'),
    moreNote(groups - Math.min(groups, ctx.limits.maxRows), 'duplicate groups'),
  ].join('\n');
  await ctx.write('duplicates.html', page('clipstream report: duplicates', body));
  return {
    html: `<h3>Near-duplicates</h3><div><a href="duplicates.html">${groups} duplicate groups</a> (${rows} clips, ${removed} not kept), side by side</div>`,
    counts: [
      ['duplicate_groups', 'duplicate groups', groups],
      ['duplicates_removed', 'duplicates removed', removed],
    ],
  };
}

async function semdedupPage(ctx: ReportContext): Promise<{ html: string; counts: [string, string, number][] }> {
  const path = join(ctx.outputDir, 'semdedup.csv');
  if (!(await exists(path))) return { html: '', counts: [] };
  const clusters = new Set<string>();
  let rows = 0;
  let removed = 0;
  const shown: Row[] = [];
  for await (const r of csvRows(path)) {
    rows++;
    clusters.add(r.cluster ?? '');
    if (!truthy(r.kept)) {
      removed++;
      if (shown.length < ctx.limits.maxRows) shown.push(r);
    }
  }
  const cols = ['clip_id', 'cluster', 'max_similarity', 'duplicate_of'];
  const body = [
    '<h1>Semantic duplicates</h1>',
    counts([
      ['semdedup_rows', 'clips', rows],
      ['semdedup_clusters', 'clusters', clusters.size],
      ['semdedup_removed', 'removed', removed],
    ]),
    '<h3>Removed clips and what they duplicate</h3>',
    table(cols, shown, 'data-table="semdedup-removed"'),
    moreNote(removed - shown.length, 'removed clips'),
  ].join('\n');
  await ctx.write('semdedup.html', page('clipstream report: semantic duplicates', body));
  return {
    html: `<h3>Semantic duplicates</h3><div><a href="semdedup.html">${removed} of ${rows} clips removed</a> in ${clusters.size} clusters</div>`,
    counts: [['semdedup_removed', 'semantic duplicates removed', removed]],
  };
}
