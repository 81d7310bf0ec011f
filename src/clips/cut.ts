import { mkdir, rename, rm } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { join } from 'node:path';
import { remixClip, splitAudio } from './audio.js';
import { videoStage, type VideoContext, type VideoItem, type VideoStage } from './item.js';
import { nonEmpty, safeId } from './obtain.js';
import type { PlannedClip, VideoTiming } from './plan.js';
import { runOf } from './timeline.js';
import { clipLook, transcodeClips, verifyClip, type ClipJob } from './transcode.js';
import { declareStage } from '../stage/contract.js';
import { asDiskFull, isDiskFull } from '../util/disk.js';
import { textAreaOfFile } from './score-file.js';
import { pick, readScores, scoresOfExisting, storeScores } from './stored-scores.js';
import { decide, type FilterSubject } from './filter.js';
import type { VideoInfo } from '../media/probe.js';

/** Where a clip a filter kept out lies (with `filtered: 'keep'`). */
export const filteredFile = (ctx: VideoContext, c: PlannedClip) => join(ctx.filteredDir ?? join(ctx.clipsDir, '..', 'filtered'), `${c.stem}.mp4`);

/** A planned clip as a filter sees it before it is cut: its span, and the source's (even) size and rate. */
export function plannedSubject(c: PlannedClip, info: VideoInfo, scores?: Record<string, number | string>): FilterSubject {
  return {
    start_s: c.startS,
    end_s: c.endS,
    num_frames: c.endFrame - c.startFrame,
    width: info.width - (info.width % 2),
    height: info.height - (info.height % 2),
    fps: Math.round(info.fps * 1e6) / 1e6,
    ...(scores ? { scores } : {}),
  };
}

/** The final mp4 of a clip. */
export const clipFile = (ctx: VideoContext, c: PlannedClip) => join(ctx.clipsDir, `${c.stem}.mp4`);

/** Clips from an earlier run are checked, never trusted for existing; a bad one is removed and made again. */
async function unfinished(item: VideoItem, ctx: VideoContext, withAudio: boolean): Promise<PlannedClip[]> {
  const todo: PlannedClip[] = [];
  for (const c of item.clips!) {
    const file = clipFile(ctx, c);
    if (!(await nonEmpty(file))) {
      // A clip an earlier filter kept out comes back to clips/, checked like the others; this run's filter decides again.
      if (await nonEmpty(filteredFile(ctx, c))) {
        await rename(filteredFile(ctx, c), file);
      } else {
        if (ctx.filter?.filtered === 'skip') {
          // Kept out and not to be written: decided on the plan and the scores an earlier run kept, it is not cut.
          const stored = ctx.scores && ctx.scoresDir ? await readScores(ctx.scoresDir, c, ctx.scores.columns) : null;
          const verdict = decide(ctx.filter.rules, plannedSubject(c, item.info!, stored ? pick(stored, ctx.scores!.columns) : undefined));
          if (verdict && !verdict.kept) {
            item.verdicts.set(c.clipId, verdict);
            if (stored) item.scores.set(c.clipId, pick(stored, ctx.scores!.columns));
            continue;
          }
        }
        todo.push(c);
        continue;
      }
    }
    try {
      item.done.set(c.clipId, await verifyClip(file, c.endFrame - c.startFrame, { audio: withAudio, signal: ctx.signal }));
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      await rm(file, { force: true });
      todo.push(c);
      continue;
    }
    if (ctx.scores && ctx.scoresDir) {
      try {
        item.scores.set(c.clipId, await scoresOfExisting(ctx.scoresDir, c, file, ctx.scores, { ffmpegPath: ctx.transcode.ffmpegPath, signal: ctx.signal }));
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        // A clip that cannot be scored is made again (its scores then come from the cut).
        item.done.delete(c.clipId);
        await rm(file, { force: true });
        todo.push(c);
      }
    }
  }
  return todo;
}

/**
 * Where a clip's audio is: the FLAC of its epoch (one per stretch of timestamps between
 * restarts) and the offset in it. A source without breaks has one FLAC, at the clip's start.
 */
function audioOf(timing: VideoTiming, clip: PlannedClip, flac: (epoch: number) => string): { file: string; fromS?: number } {
  if (!timing.runs) return { file: flac(0) };
  const run = runOf(timing.runs, clip.startFrame);
  const first = timing.runs.find((r) => r.epoch === run.epoch)!;
  return { file: flac(run.epoch), fromS: clip.startS - timing.times![run.start]! + (run.rawStartS - first.rawStartS) };
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
          const timing = item.timing!;
          const runs = timing.runs;
          const epochs = runs ? runs[runs.length - 1]!.epoch + 1 : 1;
          const base = join(ctx.workDir, safeId(item.source.videoId));
          const flac = (epoch: number) => (epochs > 1 ? `${base}.${epoch}.flac` : `${base}.flac`);
          if (withAudio) {
            for (let epoch = 0; epoch < epochs; epoch++) {
              if (await nonEmpty(flac(epoch))) continue;
              // Each epoch's FLAC starts at its first frame's stored time; without restarts, the first frame's.
              const startS = epochs > 1 ? runs!.find((r) => r.epoch === epoch)!.rawStartS : item.frames!.times[0];
              await splitAudio(item.path!, flac(epoch), item.source.videoId, {
                ffmpegPath: ffmpeg,
                signal: ctx.signal,
                startS,
                ...(epochs > 1 ? { epoch } : {}),
              });
            }
          }
          const videoOut = (c: PlannedClip) => (withAudio ? join(ctx.workDir, `${c.stem}.video.mp4`) : clipFile(ctx, c));
          await mkdir(ctx.clipsDir, { recursive: true });
          const clipDone = async ({ clip, out, scores }: ClipJob) => {
            const file = clipFile(ctx, clip);
            if (scores && ctx.scores?.textFile && ctx.scores.names.includes('text_area'))
              scores.text_area = await textAreaOfFile(out, ctx.scores.textFile, clip.endFrame - clip.startFrame, { ffmpegPath: ffmpeg, signal: ctx.signal });
            // Kept before the clip gets its final name: a clip that is there always has its scores.
            if (scores && ctx.scoresDir) await storeScores(ctx.scoresDir, clip, scores);
            if (withAudio) {
              try {
                const audio = audioOf(timing, clip, flac);
                await remixClip(out, audio.file, clip, file, {
                  ffmpegPath: ffmpeg,
                  signal: ctx.signal,
                  ...(audio.fromS !== undefined ? { fromS: audio.fromS } : {}),
                });
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
            if (scores) item.scores.set(clip.clipId, scores);
            item.made++;
          };
          const clipFailed = (job: ClipJob, err: Error) => {
            if (isDiskFull(err)) throw asDiskFull(err, clipFile(ctx, job.clip));
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
              // After a restart a stored time is ambiguous: frames are taken by their index, decoding from frame 0.
              ...(epochs > 1 ? { frameTimes: undefined, mode: 'one-pass' as const } : { frameTimes: item.frames }),
              look: clipLook(item.facts!),
              ...(ctx.scores ? { scores: ctx.scores } : {}),
              onClipDone: clipDone,
              onClipFailed: clipFailed,
              signal: ctx.signal,
            },
          );
          for (let epoch = 0; epoch < epochs; epoch++) await rm(flac(epoch), { force: true });
        }
        if (errors.length > 0) {
          item.row.error = `video ${item.source.videoId}: ${errors.length} of ${item.clips!.length} clips failed: ${errors.join('; ')}`;
          item.row.failed = item.done.size === 0;
          // No clip made: the video failed, and the later stages pass it on untouched.
          if (item.row.failed)
            item.failure = {
              stage: 'cut',
              error: new ClipstreamError('ERR_DECODE', item.row.error, { where: { key: item.source.videoId } }),
              status: 'failed',
            };
        }
      },
      ctx,
      'cut',
    ),
    { name: 'cut', needs: ['path', 'facts', 'info', 'frames', 'clips'], adds: ['done'] },
  );
}
