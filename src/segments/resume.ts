/**
 * Whether a video was finished by an earlier run: the done marker (`<work>/done.json`) that the
 * last stage writes holds the run key (source, model, every option that changes the output),
 * the segment count and the final output's size and mtime. A rerun skips the video only when
 * the key matches, the output is the one written then, and every segment still matches its
 * checksum; otherwise it resumes from the records.
 */
import { stat } from 'node:fs/promises';
import type { ResolvedSegmentsOptions } from './options.js';
import { RecordStore } from './records.js';
import { workDirFor, type VideoReport } from './stages.js';

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
