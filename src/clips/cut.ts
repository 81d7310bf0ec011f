import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { remixClip, splitAudio } from './audio.js';
import { videoStage, type VideoContext, type VideoItem, type VideoStage } from './item.js';
import { nonEmpty, safeId } from './obtain.js';
import type { PlannedClip } from './plan.js';
import { transcodeClips, verifyClip, type ClipJob } from './transcode.js';
import { declareStage } from '../run/contract.js';

/** The final mp4 of a clip. */
export const clipFile = (ctx: VideoContext, c: PlannedClip) => join(ctx.clipsDir, `${c.stem}.mp4`);

/** Clips from an earlier run are checked, never trusted for existing; a bad one is removed and made again. */
async function unfinished(item: VideoItem, ctx: VideoContext, withAudio: boolean): Promise<PlannedClip[]> {
  const todo: PlannedClip[] = [];
  for (const c of item.clips!) {
    const file = clipFile(ctx, c);
    if (!(await nonEmpty(file))) {
      todo.push(c);
      continue;
    }
    try {
      item.done.set(c.clipId, await verifyClip(file, c.endFrame - c.startFrame, { audio: withAudio, signal: ctx.signal }));
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      await rm(file, { force: true });
      todo.push(c);
    }
  }
  return todo;
}

/**
 * Stage 4: cuts the clips that are not finished yet (all of a chunk in one ffmpeg) and adds
 * each clip's audio right after its chunk, so a clip is final the moment it is encoded. A
 * clip that cannot be made costs that clip: it goes to `item.issues` (`failed`) and the
 * row's error, and the video goes on.
 */
export function cutStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        const info = item.info!;
        const withAudio = !ctx.ignoreAudio && info.audioCodec !== null;
        const todo = await unfinished(item, ctx, withAudio);
        const errors: string[] = [];
        if (todo.length > 0) {
          const ffmpeg = ctx.transcode.ffmpegPath;
          const flac = join(ctx.workDir, `${safeId(item.source.videoId)}.flac`);
          if (withAudio && !(await nonEmpty(flac))) {
            await splitAudio(item.path!, flac, item.source.videoId, { ffmpegPath: ffmpeg, signal: ctx.signal, startS: item.frames!.times[0] });
          }
          const videoOut = (c: PlannedClip) => (withAudio ? join(ctx.workDir, `${c.stem}.video.mp4`) : clipFile(ctx, c));
          await mkdir(ctx.clipsDir, { recursive: true });
          const clipDone = async ({ clip, out }: ClipJob) => {
            const file = clipFile(ctx, clip);
            if (withAudio) {
              try {
                await remixClip(out, flac, clip, file, { ffmpegPath: ffmpeg, signal: ctx.signal });
              } finally {
                await rm(out, { force: true });
              }
            }
            try {
              item.done.set(clip.clipId, await verifyClip(file, clip.endFrame - clip.startFrame, { audio: withAudio, signal: ctx.signal }));
            } catch (err) {
              await rm(file, { force: true });
              throw err;
            }
            item.made++;
          };
          const clipFailed = (job: ClipJob, err: Error) => {
            errors.push(`clip ${job.clip.clipId}: ${err.message}`);
            item.issues.push({
              videoId: item.source.videoId,
              span: `frames ${job.clip.startFrame}-${job.clip.endFrame}`,
              action: 'failed',
              reason: err.message,
            });
          };
          await transcodeClips(
            info,
            item.source.videoId,
            todo.map((clip) => ({ clip, out: videoOut(clip) })),
            {
              ...ctx.transcode,
              encoder: ctx.encoder.encoder,
              hwaccel: ctx.encoder.hwaccel,
              bitRate: ctx.useInputBitRate && info.bitRate > 0 ? info.bitRate : undefined,
              frameTimes: item.frames,
              look: item.facts,
              onClipDone: clipDone,
              onClipFailed: clipFailed,
              signal: ctx.signal,
            },
          );
          await rm(flac, { force: true });
        }
        if (errors.length > 0) {
          item.row.error = `video ${item.source.videoId}: ${errors.length} of ${item.clips!.length} clips failed: ${errors.join('; ')}`;
          item.row.failed = item.done.size === 0;
        }
      },
      ctx,
      'cut',
    ),
    { name: 'cut', needs: ['path', 'facts', 'info', 'frames', 'clips'], adds: ['done'] },
  );
}
