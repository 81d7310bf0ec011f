import { stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { downloadFile, downloadYouTube } from '../media/download.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';
import type { SourceRow } from './sources.js';
import { declareStage } from '../stage/contract.js';

export const safeId = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '-');

/** A non-empty file is there (a zero-byte one is what a failed write leaves). */
export async function nonEmpty(p: string): Promise<boolean> {
  try {
    return (await stat(p)).size > 0;
  } catch {
    return false;
  }
}

/** Makes the source available locally: in place, downloaded over HTTP, or via yt-dlp. */
export async function obtainSource(src: SourceRow, ctx: VideoContext): Promise<string> {
  if (src.kind === 'path') {
    if (!(await nonEmpty(src.location)))
      throw new ClipstreamError('ERR_IO', `video ${src.videoId}: ${src.location} does not exist or is empty`, {
        where: { key: src.videoId, file: src.location },
      });
    return src.location;
  }
  if (src.kind === 'url') {
    const ext = extname(new URL(src.location).pathname).toLowerCase() || '.mp4';
    const dest = join(ctx.downloadsDir, `${safeId(src.videoId)}${ext}`);
    await downloadFile(src.location, dest, { ...ctx.download, signal: ctx.signal });
    return dest;
  }
  const dest = join(ctx.downloadsDir, `${safeId(src.videoId)}.mp4`);
  await downloadYouTube(src.location, dest, { ytDlpPath: ctx.ytDlpPath, signal: ctx.signal });
  return dest;
}

/** Stage 1: each source as a local file (`item.path`). */
export function obtainStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        item.path = await obtainSource(item.source, ctx);
        item.row.downloaded = true;
        item.row.path = item.path;
      },
      ctx,
      'obtain',
    ),
    { name: 'obtain', needs: ['source', 'row'], adds: ['path'] },
  );
}
