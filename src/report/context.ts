/** What every section of the report shares: where things are, the caps, and the previews. */
import { mkdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { exists } from '../util/fs.js';
import { previewPath } from '../sinks/preview.js';
import { makePreview } from './media.js';
import type { Scratch } from './tables.js';

export interface ReportLimits {
  /** Clips (or faces, rows) per page (default 100). */
  pageSize: number;
  /** Videos that get a page of their own; the others are counted, with a note (default 500). */
  maxVideos: number;
  /** Pages per video; the clips past them are counted, with a note (default 10). */
  maxPagesPerVideo: number;
  /** Duplicate groups, failures, span issues and such rows listed (default 200). */
  maxRows: number;
  /** Previews the report makes itself for clips that have none (default 2000; 0: none). */
  maxPreviewsMade: number;
}

export interface ReportContext {
  outputDir: string;
  reportDir: string;
  limits: ReportLimits;
  scratch: Scratch;
  signal?: AbortSignal;
  warn: (message: string) => void;
  previewsMade: number;
  /** Writes a file of the report (relative to the report folder), atomically. */
  write(rel: string, text: string): Promise<void>;
}

export interface Preview {
  /** The preview's URL relative to the report folder, or '' when there is none. */
  path: string;
  byReport: boolean;
  note?: string;
}

/** A path under the output folder as seen from the report folder, with '/' separators. */
export function fromReport(ctx: ReportContext, outputRel: string): string {
  return relative(ctx.reportDir, join(ctx.outputDir, outputRel)).split(sep).join('/');
}

/**
 * The preview of a clip: the row's `preview` column, else `previews/<clip>.webp` in the output
 * folder, else one the report makes from the clip's file (marked as the report's own).
 */
export async function previewOf(ctx: ReportContext, clipId: string, row: { preview?: string; filename?: string }, clipsFolder = 'clips'): Promise<Preview> {
  if (row.preview && (await exists(join(ctx.outputDir, row.preview)))) return { path: fromReport(ctx, row.preview), byReport: false };
  const own = previewPath(clipId);
  if (await exists(join(ctx.outputDir, own))) return { path: fromReport(ctx, own), byReport: false };
  const made = join(ctx.reportDir, own);
  if (await exists(made)) return { path: own, byReport: true };
  const video = join(ctx.outputDir, clipsFolder, row.filename || `${clipId}.mp4`);
  if (ctx.previewsMade >= ctx.limits.maxPreviewsMade || !(await exists(video))) return { path: '', byReport: false };
  try {
    ctx.previewsMade++;
    await mkdir(join(ctx.reportDir, 'previews'), { recursive: true });
    return { path: await makePreview(video, ctx.reportDir, clipId, { signal: ctx.signal }), byReport: true };
  } catch (err) {
    ctx.warn(`report: no preview for ${clipId}: ${(err as Error).message}`);
    return { path: '', byReport: false, note: (err as Error).message };
  }
}
