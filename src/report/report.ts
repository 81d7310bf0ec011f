/**
 * `clipstream report OUT_DIR`: a static HTML folder for any job's output. It looks at what is in the
 * folder (clips' tables, extract's feature shards and run logs, faces' metadata, segments' work
 * folders) and writes `index.html`, a page per video and `assets/report.css`; no script, no server,
 * no network: it opens from disk. Tables are streamed, so memory follows the page being written.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { clipsSection, hasClips } from './clips.js';
import type { ReportContext, ReportLimits } from './context.js';
import { extractSection, hasExtract } from './extract.js';
import { facesSection, hasFaces } from './faces.js';
import { esc, page, STYLESHEET } from './html.js';
import type { Section } from './section.js';
import { hasSegments, segmentsSection } from './segments.js';
import { Scratch } from './tables.js';

export interface ReportOptions extends Partial<ReportLimits> {
  /** The output folder of a job (clips, extract, faces, segments). */
  outputDir: string;
  /** Where the report goes; default `<outputDir>/report`. */
  reportDir?: string;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

export interface ReportSummary {
  reportDir: string;
  /** The report's front page. */
  index: string;
  /** The parts found: clips, extract, faces, segments. */
  sections: string[];
  /** Every count the index shows, by name (clips, kept, filtered, failures, faces, shards, ...). */
  counts: Record<string, number>;
  /** Previews the report made itself, for clips that had none. */
  previewsMade: number;
}

export const DEFAULT_LIMITS: ReportLimits = { pageSize: 100, maxVideos: 500, maxPagesPerVideo: 10, maxRows: 200, maxPreviewsMade: 2000 };

/** Writes the report of `outputDir`'s contents; see the module comment. */
export async function makeReport(o: ReportOptions): Promise<ReportSummary> {
  const outputDir = resolve(o.outputDir);
  const st = await stat(outputDir).catch(() => null);
  if (!st?.isDirectory())
    throw new ClipstreamError('ERR_INVALID_OPTION', `report: ${o.outputDir} is not a folder`, { where: { file: o.outputDir, option: 'outputDir' } });
  const reportDir = resolve(o.reportDir ?? join(outputDir, 'report'));
  const limits: ReportLimits = { ...DEFAULT_LIMITS };
  for (const k of Object.keys(DEFAULT_LIMITS) as (keyof ReportLimits)[]) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < (k === 'maxPreviewsMade' ? 0 : 1))
      throw new ClipstreamError('ERR_INVALID_OPTION', `report: ${k} must be a whole number of at least ${k === 'maxPreviewsMade' ? 0 : 1}, not ${v}`, {
        where: { option: k },
      });
    limits[k] = v;
  }
  const scratch = new Scratch(join(reportDir, `.scratch-${process.pid}`));
  const ctx: ReportContext = {
    outputDir,
    reportDir,
    limits,
    scratch,
    signal: o.signal,
    warn: o.onWarning ?? ((m) => process.emitWarning(m)),
    previewsMade: 0,
    write: (rel, text) => writeFileAtomic(join(reportDir, rel), text),
  };
  const sections: Section[] = [];
  try {
    if (await hasClips(outputDir)) sections.push(await clipsSection(ctx));
    if (await hasExtract(outputDir)) sections.push(await extractSection(ctx));
    if (await hasFaces(outputDir)) sections.push(await facesSection(ctx));
    if (await hasSegments(outputDir)) sections.push(await segmentsSection(ctx));
  } finally {
    await scratch.remove();
  }
  await ctx.write('assets/report.css', STYLESHEET);
  const body = [
    `<h1>clipstream report</h1><div>of <code>${esc(outputDir)}</code>, written ${esc(new Date().toISOString())}</div>`,
    sections.length
      ? `<div>found: ${sections.map((s) => `<a href="#${esc(s.name)}">${esc(s.title)}</a>`).join(', ')}</div>`
      : `<div class="more" data-empty="1">no job output found here (no clips.csv, videos.csv, feature shards, metadata.csv or *.segments folder)</div>`,
    ctx.previewsMade ? `<div>${ctx.previewsMade} previews were made by the report (marked “preview by report”).</div>` : '',
    ...sections.map((s) => s.html),
  ].join('\n');
  await ctx.write('index.html', page('clipstream report', body));
  const all: Record<string, number> = {};
  for (const s of sections) Object.assign(all, s.counts);
  return { reportDir, index: join(reportDir, 'index.html'), sections: sections.map((s) => s.name), counts: all, previewsMade: ctx.previewsMade };
}
