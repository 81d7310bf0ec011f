/**
 * ACAV100M names clips `{id}_{start}.mp4`: a YouTube-style id (which itself may contain
 * `_` and `-`) and the integer start second of the segment. The start is the digits after
 * the LAST underscore, so `yt-Abc_12-x_30` is id `yt-Abc_12-x`, start 30.
 */
const CLIP_STEM = /^(.+)_(\d+)$/;

/** ACAV100M clips are 10 s long; used to guess `segment` when a shard json lacks an entry. */
export const ACAV_CLIP_SECONDS = 10;

/**
 * Video containers, as extensions: what the bundler accepts, the entry join matches to a json
 * entry, and the decode stage takes as "the clip" of a sample. One list, so a member that is
 * decoded is also joined (a list without `ts` once left `x.ts` unjoined and its shard
 * "incomplete" for good). Earlier entries win when a sample holds several.
 */
export const VIDEO_EXTENSIONS: readonly string[] = ['mp4', 'webm', 'mkv', 'mov', 'm4v', 'avi', 'mpg', 'ts', 'mpeg', 'm2ts', 'mts', 'flv', 'ogv', '3gp', 'gif'];

/** Audio files that hold a clip when only the audio is decoded (no visual model). */
export const AUDIO_EXTENSIONS: readonly string[] = ['wav', 'flac', 'm4a', 'mp3', 'ogg', 'opus', 'aac'];

/**
 * Splits a clip stem (file name without extension) into id and start second.
 *
 * @example
 * parseClipStem('yt-Abc_12-x_30') // { id: 'yt-Abc_12-x', start: 30 }
 * parseClipStem('no-start')       // null
 */
export function parseClipStem(stem: string): { id: string; start: number } | null {
  const m = CLIP_STEM.exec(stem);
  if (!m) return null;
  const start = Number(m[2]);
  if (!Number.isSafeInteger(start)) return null;
  return { id: m[1], start };
}

/**
 * The field of a sample that holds its clip: an exact video extension first (in the order of
 * `extensions`), else a multi-dot field whose last part is one (`key.video.mp4` -> `video.mp4`).
 *
 * @example findVideoField(['json', 'video.mp4']) // 'video.mp4'
 */
export function findVideoField(fields: Iterable<string>, extensions: readonly string[] = VIDEO_EXTENSIONS): string | undefined {
  const list = [...fields];
  for (const ext of extensions) if (list.includes(ext)) return ext;
  for (const ext of extensions) {
    const f = list.find((x) => x.endsWith(`.${ext}`));
    if (f) return f;
  }
  return undefined;
}
