/**
 * The generated zoo's dimensions and its seeded picker. A crossing names one value of every
 * dimension; `normalise` maps a combination a container or codec cannot hold onto a valid one
 * deterministically (so a seed always gives the same files), and the id spells the crossing as
 * it is actually made. test/zoo/generated.ts turns a crossing into a recipe with its truth.
 */
import fc from 'fast-check';

export const CONTAINERS = ['mp4', 'fmp4', 'cmaf', 'dash', 'mkv', 'webm', 'mov', 'ts', 'avi'] as const;
export const CODECS = ['h264', 'hevc', 'vp9', 'av1', 'mpeg2', 'mjpeg'] as const;
export const TIMINGS = ['cfr', 'vfr', 'gap', 'editlist', 'ntsc-film', 'ntsc'] as const;
export const GEOMETRIES = ['plain', 'sar16x15', 'sar32x27', 'rotate90', 'rotate180', 'rotate270', 'odd', 'tiny', 'large'] as const;
export const COLOURS = ['untagged', 'bt709', 'pq', 'full'] as const;
export const AUDIO_CODECS = ['aac', 'opus', 'flac', 'ac3', 'pcm24', 'none'] as const;
export const LAYOUTS = ['stereo', 'mono', '7.1'] as const;
/** same: as long as the video; short: 60 % of it; long: 1 s more; blip: 0.5 s, under one VGGish window. */
export const AUDIO_LENGTHS = ['same', 'short', 'long', 'blip'] as const;
export const NAMES = ['plain', 'long', 'unicode', 'dash', 'twin'] as const;

export type Container = (typeof CONTAINERS)[number];
export type Codec = (typeof CODECS)[number];
export type Timing = (typeof TIMINGS)[number];
export type Geometry = (typeof GEOMETRIES)[number];
export type Colour = (typeof COLOURS)[number];
export type AudioCodec = (typeof AUDIO_CODECS)[number];
export type Layout = (typeof LAYOUTS)[number];
export type AudioLength = (typeof AUDIO_LENGTHS)[number];
export type NameKind = (typeof NAMES)[number];

export interface Crossing {
  container: Container;
  codec: Codec;
  timing: Timing;
  geometry: Geometry;
  colour: Colour;
  audio: AudioCodec;
  layout: Layout;
  audioLength: AudioLength;
  name: NameKind;
}

export const EXTENSION: Record<Container, string> = {
  mp4: 'mp4',
  fmp4: 'mp4',
  cmaf: 'mp4',
  dash: 'mp4',
  mkv: 'mkv',
  webm: 'webm',
  mov: 'mov',
  ts: 'ts',
  avi: 'avi',
};

/** What each container holds (as Debian's ffmpeg 5.1 muxes it); the first is the fallback. */
const VIDEO_OK: Record<Container, readonly Codec[]> = {
  mp4: CODECS,
  fmp4: CODECS,
  cmaf: ['h264', 'hevc', 'vp9', 'av1'],
  // The dash muxer writes one representation per stream, so a joined file holds one: the video.
  // (Not HEVC: ffmpeg 5.1's dash muxer starts a B-framed HEVC segment one frame early at 24000/1001.)
  dash: ['h264', 'vp9', 'av1'],
  mkv: CODECS,
  webm: ['vp9', 'av1'],
  mov: ['h264', 'hevc', 'mpeg2', 'mjpeg'],
  ts: ['h264', 'hevc', 'mpeg2'],
  avi: ['h264', 'mpeg2', 'mjpeg'],
};
const AUDIO_OK: Record<Container, readonly AudioCodec[]> = {
  mp4: ['aac', 'opus', 'flac', 'ac3', 'none'],
  fmp4: ['aac', 'opus', 'flac', 'ac3', 'none'],
  cmaf: ['aac', 'opus', 'none'],
  dash: ['none'],
  mkv: AUDIO_CODECS,
  webm: ['opus', 'none'],
  mov: ['aac', 'ac3', 'pcm24', 'none'],
  ts: ['aac', 'opus', 'ac3', 'none'],
  // AAC's priming in AVI (no timestamps) shifts the video by a frame slot: real AVIs carry PCM, AC-3 or MP3.
  avi: ['pcm24', 'ac3', 'none'],
};
/** Containers whose rotation ffmpeg 5.1 writes (the tkhd matrix): elsewhere a rotation is dropped. */
const ROTATES: readonly Container[] = ['mp4', 'fmp4', 'cmaf', 'dash', 'mov'];

/** The crossing as it is made: every impossible value replaced by a fixed valid one. */
export function normalise(c: Crossing): Crossing {
  const x = { ...c };
  if (!VIDEO_OK[x.container].includes(x.codec)) x.codec = VIDEO_OK[x.container][0]!;
  if (!AUDIO_OK[x.container].includes(x.audio)) x.audio = AUDIO_OK[x.container][0]!;
  // Edit lists are an mp4/mov thing; AVI has no timestamps to vary; MPEG-2 takes only the standard rates.
  if (x.timing === 'editlist' && !['mp4', 'mov'].includes(x.container)) x.timing = 'cfr';
  if ((x.timing === 'vfr' || x.timing === 'gap') && (x.container === 'avi' || x.codec === 'mpeg2')) x.timing = 'cfr';
  // An `-ss` copy cut keeps the audio from the cut on: the audio must reach past it.
  if (x.timing === 'editlist' && x.audio !== 'none') {
    x.audio = 'aac';
    if (x.audioLength === 'short' || x.audioLength === 'blip') x.audioLength = 'same';
  }
  // Every MJPEG frame is a keyframe: a copy cut starts on the frame it falls in and needs no edit
  // list. For VP9 and AV1 ffmpeg 5.1's mp4 muxer writes none that hides the frames before the cut.
  if (x.timing === 'editlist' && !['h264', 'hevc', 'mpeg2'].includes(x.codec)) x.timing = 'cfr';
  // ffmpeg's fragmenting muxer times the last sample of a fragment by the encoder's nominal
  // frame duration, not by the next frame: a VFR or gapped timeline comes out rewritten.
  if (['fmp4', 'cmaf', 'dash'].includes(x.container) && (x.timing === 'vfr' || x.timing === 'gap')) x.timing = 'cfr';
  if (x.geometry.startsWith('rotate') && !ROTATES.includes(x.container)) x.geometry = 'plain';
  // MJPEG is full range by definition; MPEG-2 has no range flag; 10-bit PQ needs a 10-bit codec.
  if (x.codec === 'mjpeg') x.colour = 'full';
  if (x.codec === 'mpeg2' && x.colour === 'full') x.colour = 'untagged';
  if (x.codec === 'mpeg2' && x.colour === 'pq') x.colour = 'bt709';
  // AVI has no colour fields of its own: only a codec that carries them in its bitstream keeps them.
  if (x.container === 'avi' && x.codec !== 'h264') x.colour = x.codec === 'mjpeg' ? 'full' : 'untagged';
  if (x.audio === 'ac3' && x.layout === '7.1') x.layout = 'stereo';
  // Each part of a joined MPEG-TS carries its share of the audio: it cannot end before the video.
  if (x.container === 'ts') x.audioLength = 'same';
  if (x.audio === 'none') {
    x.layout = 'stereo';
    x.audioLength = 'same';
  }
  return x;
}

/** A readable, unique spelling of a crossing, usable in file names (no dots, no slashes). */
export function crossingId(c: Crossing): string {
  const audio = c.audio === 'none' ? 'noaudio' : `${c.audio}-${c.layout === '7.1' ? '7ch1' : c.layout}-${c.audioLength}`;
  return [c.container, c.codec, c.timing, c.geometry, c.colour, audio, c.name].join('_');
}

export function parseCrossingId(id: string): Crossing {
  const [container, codec, timing, geometry, colour, audio, name] = id.split('_');
  const [a, layout, audioLength] = audio === 'noaudio' ? ['none', 'stereo', 'same'] : audio!.split('-');
  const c = { container, codec, timing, geometry, colour, audio: a, layout: layout === '7ch1' ? '7.1' : layout, audioLength, name } as Crossing;
  const check: Array<[unknown, readonly unknown[]]> = [
    [c.container, CONTAINERS],
    [c.codec, CODECS],
    [c.timing, TIMINGS],
    [c.geometry, GEOMETRIES],
    [c.colour, COLOURS],
    [c.audio, AUDIO_CODECS],
    [c.layout, LAYOUTS],
    [c.audioLength, AUDIO_LENGTHS],
    [c.name, NAMES],
  ];
  for (const [v, all] of check) if (!all.includes(v)) throw new Error(`zoo: ${id} is not a crossing id (${String(v)} is not one of ${all.join(', ')})`);
  return c;
}

const pick = <T>(values: readonly T[]) => fc.noBias(fc.constantFrom(...values));

/** Every crossing, each dimension uniform (before `normalise`). */
export const crossingArb: fc.Arbitrary<Crossing> = fc
  .record({
    container: pick(CONTAINERS),
    codec: pick(CODECS),
    timing: pick(TIMINGS),
    geometry: pick(GEOMETRIES),
    colour: pick(COLOURS),
    audio: pick(AUDIO_CODECS),
    layout: pick(LAYOUTS),
    audioLength: pick(AUDIO_LENGTHS),
    name: pick(NAMES),
  })
  .map(normalise);

/** `count` distinct crossings chosen by `seed`: the same seed gives the same list on every machine. */
export function pickCrossings(seed: number, count: number): Crossing[] {
  const out = new Map<string, Crossing>();
  for (let round = 0; out.size < count && round < 20; round++) {
    for (const c of fc.sample(crossingArb, { seed: seed + round, numRuns: count * 2 })) {
      if (out.size >= count) break;
      const id = crossingId(c);
      if (!out.has(id)) out.set(id, c);
    }
  }
  return [...out.values()];
}
