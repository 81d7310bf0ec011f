/**
 * `--keep_segments` / `--step=split`: also writes the source segments as files, as the seed
 * does (`<work>/source/output_NNN.mp4` + `file_list.txt`), for users who want them. They are
 * cut at the planned frames (decoded through a pipe and encoded with the job's encoder
 * settings), so they hold exactly the frames the model sees; the job itself never reads them.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { EncodeSettings } from '../media/encoders.js';
import { writeFileAtomic } from '../util/atomic.js';
import { decodeRange, prefetch } from './decode-range.js';
import { mp4Sink, type OutputMeaning } from './encode.js';
import type { FrameTimeline } from '../media/probe.js';
import type { Segment } from './plan.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Writes the missing source segments; returns their file names in order. */
export async function writeSourceSegments(
  path: string,
  t: FrameTimeline,
  segs: readonly Segment[],
  dir: string,
  encode: EncodeSettings,
  signal?: AbortSignal,
  meaning?: OutputMeaning,
): Promise<string[]> {
  const names = segs.map((s) => `output_${String(s.index).padStart(3, '0')}.mp4`);
  for (const [i, seg] of segs.entries()) {
    const out = join(dir, names[i]!);
    if (await exists(out)) continue;
    const sink = await mp4Sink(out, t.width, t.height, t.rate, encode, signal, meaning);
    try {
      for await (const frame of prefetch(decodeRange(path, t, seg, seg.keyframe, { signal }), 4)) await sink.write(frame);
      await sink.finish();
    } catch (err) {
      await sink.abort();
      throw err;
    }
  }
  await writeFileAtomic(join(dir, 'file_list.txt'), names.map((n) => `file '${n}'\n`).join(''));
  return names;
}
