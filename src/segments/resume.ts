/**
 * Whether a video was finished by an earlier run: the done marker (`<work>/done.json`) that the
 * last stage writes holds the run key (source, model, every option that changes the output),
 * the segment count and the final output's size and mtime. A rerun skips the video only when
 * the key matches, the output is the one written then, and every segment still matches its
 * checksum; otherwise it resumes from the records.
 */
import { stat } from 'node:fs/promises';
import type { ResolvedSegmentsOptions } from './options.js';
import { fileSha256, RecordStore } from './records.js';
import { outputSettings, workDirFor, type SegmentsItem, type SegmentsStageContext, type VideoReport } from './stages.js';

/** What a finished video's output depends on besides its segments: the source, the model and every option that changes the output. */
export async function runKey(input: string, o: ResolvedSegmentsOptions, model: { sha256: string | null; kind: string }): Promise<string> {
  return JSON.stringify({ ...(await outputSettings(input, o, model)), downsampleRatio: o.downsampleRatio, audio: o.audio, keepSegments: o.keepSegments });
}

export interface DoneMarker {
  key: string;
  segments: number;
  frames: number;
  /** Size and mtime of the final mp4 (null for PNG output, whose files the records cover). */
  output: { size: number; mtimeMs: number } | null;
}

export async function doneMarker(item: SegmentsItem, ctx: SegmentsStageContext): Promise<DoneMarker> {
  const o = ctx.options;
  const key = await runKey(item.input, o, { sha256: await fileSha256(ctx.model.path), kind: ctx.model.kind });
  const out = o.format === 'mp4' ? await stat(item.output) : null;
  return { key, segments: item.report.segments, frames: item.report.frames, output: out ? { size: out.size, mtimeMs: out.mtimeMs } : null };
}

/**
 * The report of a video finished by an earlier run with the same source, model and options
 * (its done marker matches, the output is the one written then, and every segment's files
 * still match their checksums), or null to run it (a partly done video resumes from its
 * records). Only whole runs (`step: 'all'`) are ever skipped.
 */
export async function finishedBefore(input: string, output: string, o: ResolvedSegmentsOptions, key: string): Promise<VideoReport | null> {
  if (o.step !== 'all') return null;
  const store = new RecordStore(workDirFor(output));
  const m = await store.readDone();
  if (!m || m.key !== key) return null;
  if (m.output) {
    const st = await stat(output).catch(() => null);
    if (!st || st.size !== m.output.size || st.mtimeMs !== m.output.mtimeMs) return null;
  }
  for (let i = 0; i < m.segments; i++) if (!(await store.verified(await store.read(i)))) return null;
  return {
    input,
    output,
    workDir: store.workDir,
    status: 'done',
    segments: m.segments,
    segmentsRun: 0,
    segmentsReused: m.segments,
    failed: [],
    frames: m.frames,
  };
}
