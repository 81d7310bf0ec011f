/**
 * The zoo's recipes: each makes one file with ffmpeg and states its truth from the recipe's
 * own parameters (never from clipstream's code). test/zoo/zoo.test.ts checks every truth against
 * an independent reader (scripts/zoo_reference.py, PyAV) and ffprobe.
 */
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { runTool } from '../../src/media/process.js';
import { delayMp4Track, inflateMp4Durations, largeMdatHeader, setMp4Rotation, skipMp4Media } from './mp4-edit.js';
import { audioSource, BEEP_S, frameColor, LAYOUT_CHANNELS, type AudioPattern, type Rgb, type VideoPattern, videoGraph } from './pattern.js';
import type { ZooTruth } from './zoo.js';

export interface Recipe {
  name: string;
  tags: string[];
  truth: ZooTruth;
  /** Writes the file at `out`; `work` is a scratch folder of the same generation. */
  make(out: string, work: string): Promise<void>;
}

export async function ffmpeg(args: string[]): Promise<void> {
  const r = await runTool(ffmpegPath(), ['-v', 'error', '-nostdin', '-y', ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`zoo: ffmpeg ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
}

async function probePackets(file: string, stream: string): Promise<Array<{ pos: number; flags: string }>> {
  const r = await runTool(ffprobePath(), ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=pos,flags', '-of', 'json', file]);
  if (r.code !== 0) throw new Error(`zoo: ffprobe packets of ${file} failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.toString()) as { packets: Array<{ pos: string; flags: string }> }).packets.map((p) => ({ pos: Number(p.pos), flags: p.flags }));
}

// Distinct first-frame colours, one per entry (56 levels apart: far beyond coding error), so a
// job's first frame names its source.
const FIRSTS: Rgb[] = [];
for (const r of [208, 96, 152, 40]) for (const g of [48, 160, 216, 104]) for (const b of [40, 200, 96, 152]) FIRSTS.push([r, g, b]);
let nextFirst = 0;
const firstColour = (): Rgb => FIRSTS[nextFirst++ % FIRSTS.length]!;

interface Source {
  video?: VideoPattern & {
    /** Frame n's presentation time (s) for a VFR source, as an ffmpeg expression and as a function. */
    vfr?: { expr: string; time: (n: number) => number };
    /** Delay of the video stream relative to the audio stream's start (s). */
    offset?: number;
  };
  audio?: Omit<AudioPattern, 'beeps' | 'seconds'> & { seconds?: number; offset?: number };
}

const frameTime = (v: NonNullable<Source['video']>, n: number) => (v.vfr ? v.vfr.time(n) : (n * v.rate[1]) / v.rate[0]);

/** Video duration: first frame to the end of the last one. */
function videoSeconds(v: NonNullable<Source['video']>): number {
  if (!v.vfr) return (v.frames * v.rate[1]) / v.rate[0];
  const last = v.vfr.time(v.frames - 1);
  return last + (v.frames > 1 ? last - v.vfr.time(v.frames - 2) : 0);
}

/** Audio start relative to the first video frame. */
const audioStartOf = (s: Source) => (s.audio?.offset ?? 0) - (s.video?.offset ?? 0);

function audioPattern(s: Source): AudioPattern {
  const a = s.audio!;
  const start = audioStartOf(s);
  const beeps = s.video ? s.video.flashes.map((n) => round(frameTime(s.video!, n) - start)) : [0.6, 1.8, 2.6];
  const seconds = a.seconds ?? (s.video ? round(videoSeconds(s.video) - start) : 3);
  return { rate: a.rate, layout: a.layout, seconds, beeps: beeps.filter((t) => t >= 0 && t + BEEP_S <= seconds) };
}

const round = (x: number, digits = 6) => Number(x.toFixed(digits));

/** The truth of a source made by `encodeSource`. */
export function truthOf(s: Source): ZooTruth {
  const t: ZooTruth = {};
  if (s.video) {
    const v = s.video;
    Object.assign(t, {
      frames: v.frames,
      width: v.width,
      height: v.height,
      codedWidth: v.width,
      codedHeight: v.height,
      rotation: 0,
      vfr: Boolean(v.vfr),
      flashes: [...v.flashes],
      duration: round(videoSeconds(v)),
      firstFrameColor: frameColor(v, 0),
    });
    if (v.vfr) t.frameTimes = Array.from({ length: v.frames }, (_, n) => round(v.vfr!.time(n) - v.vfr!.time(0)));
    else t.fps = round(v.rate[0] / v.rate[1]);
  }
  if (s.audio) {
    const a = audioPattern(s);
    const start = s.video ? audioStartOf(s) : 0;
    Object.assign(t, {
      audioChannels: LAYOUT_CHANNELS[a.layout],
      audioRate: a.rate,
      audioStart: round(start),
      audioDuration: a.seconds,
      beeps: a.beeps.map((b) => round(b + start)),
    });
    if (!s.video) t.duration = a.seconds;
  }
  return t;
}

export interface Encoding {
  video?: string[];
  audio?: string[];
  /** Output options (container flags). */
  extra?: string[];
}

export const H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p'];
export const AAC = ['-c:a', 'aac', '-b:a', '96k'];

/** Encodes a source as described, in one ffmpeg run. */
export async function encodeSource(out: string, s: Source, enc: Encoding = {}): Promise<void> {
  const args: string[] = [];
  let inputs = 0;
  const maps: string[] = [];
  if (s.video) {
    let graph = `${videoGraph(s.video)},trim=end_frame=${s.video.frames}`;
    if (s.video.vfr) graph += `,settb=1/1000,setpts='(${s.video.vfr.expr})/1000/TB'`;
    args.push('-f', 'lavfi', '-i', graph);
    maps.push('-map', `${inputs++}:v`, ...(enc.video ?? H264), '-vsync', 'passthrough');
  }
  if (s.audio) {
    // ffmpeg's own -itsoffset lands 20 ms off on video here: delays are written as edit lists instead.
    args.push('-f', 'lavfi', '-i', audioSource(audioPattern(s)));
    maps.push('-map', `${inputs++}:a`, ...(enc.audio ?? AAC));
  }
  await ffmpeg([...args, ...maps, ...(enc.extra ?? []), out]);
}

/** A recipe for a plain source: encoded once, truth from its parameters. */
function plain(name: string, tags: string[], s: Source, enc?: Encoding): Recipe {
  return {
    name,
    tags,
    truth: truthOf(s),
    async make(out) {
      await encodeSource(out, s, enc);
      if (s.video?.offset) await delayMp4Track(out, 'vide', s.video.offset);
      if (s.audio?.offset) await delayMp4Track(out, 'soun', s.audio.offset);
    },
  };
}

const video = (over: Partial<NonNullable<Source['video']>> = {}): NonNullable<Source['video']> => ({
  width: 160,
  height: 120,
  rate: [25, 1],
  frames: 75,
  first: firstColour(),
  flashes: [15, 45, 65],
  ...over,
});
const stereo = (over: Partial<NonNullable<Source['audio']>> = {}): NonNullable<Source['audio']> => ({ rate: 44100, layout: 'stereo', ...over });

/**
 * Cuts `src` with `-ss at -c copy`: the mp4 muxer keeps the GOP before `at` and hides it with an
 * edit list, so the header counts more frames than decode. The first frame shown is the first at
 * or after `at`, and ffmpeg starts both streams at 0 there: the audio's clock runs from `at`, the
 * video's from that frame, so the cut itself shifts sync by (that frame's time - at), as real cuts do.
 */
function ssCopyCut(name: string, tags: string[], s: Source, at: number, enc: Encoding): Recipe {
  const v = s.video!;
  const firstKept = Math.ceil((at * v.rate[0]) / v.rate[1] - 1e-9);
  const t = truthOf(s);
  const shift = frameTime(v, firstKept);
  Object.assign(t, {
    frames: v.frames - firstKept,
    flashes: v.flashes.filter((n) => n >= firstKept).map((n) => n - firstKept),
    duration: round(videoSeconds(v) - shift),
    firstFrameColor: frameColor(v, firstKept),
    audioStart: 0,
    audioDuration: round(t.audioDuration! - at),
    beeps: t.beeps!.map((b) => round(b - at)).filter((b) => b >= 0),
  });
  return {
    name,
    tags,
    truth: t,
    async make(out, work) {
      const full = join(work, `${name}.full.mp4`);
      await encodeSource(full, s, enc);
      await ffmpeg(['-ss', String(at), '-i', full, '-map', '0', '-c', 'copy', out]);
    },
  };
}

function withTruth(r: Recipe, over: ZooTruth): Recipe {
  Object.assign(r.truth, over);
  return r;
}

/** The video clock starts `by` seconds after the audio's: beeps and audio start move earlier by as much. */
function shiftVideo(r: Recipe, by: number): Recipe {
  const t = r.truth;
  return withTruth(r, { audioStart: round(t.audioStart! - by), beeps: t.beeps!.map((b) => round(b - by)) });
}

export function recipes(): Recipe[] {
  nextFirst = 0;
  const list: Recipe[] = [
    plain('stereo.mp4', ['mp4', 'h264', 'aac', 'stereo', '44k'], { video: video(), audio: stereo() }),
    plain('mono.mp4', ['mp4', 'h264', 'aac', 'mono', '44k'], { video: video(), audio: stereo({ layout: 'mono' }) }),
    plain('surround51.mp4', ['mp4', 'h264', 'aac', '5.1', '48k'], { video: video(), audio: { rate: 48000, layout: '5.1' } }),
    plain(
      'rate8k.mp4',
      ['mp4', 'h264', 'aac', 'mono', '8k'],
      { video: video(), audio: { rate: 8000, layout: 'mono' } },
      { audio: ['-c:a', 'aac', '-b:a', '24k'] },
    ),
    plain('rate48k.mp4', ['mp4', 'h264', 'aac', 'stereo', '48k'], { video: video(), audio: stereo({ rate: 48000 }) }),
    plain('audio-late.mp4', ['mp4', 'h264', 'aac', 'stereo', 'audio-late', 'editlist'], { video: video(), audio: stereo({ offset: 0.4 }) }),
    plain('video-late.mp4', ['mp4', 'h264', 'aac', 'stereo', 'video-late', 'editlist'], { video: video({ offset: 0.5 }), audio: stereo() }),
    ssCopyCut('editlist-bframes.mp4', ['mp4', 'h264', 'aac', 'stereo', 'editlist', 'bframes', 'header-lies'], { video: video(), audio: stereo() }, 1.3, {
      video: [...H264, '-g', '25', '-bf', '3'],
    }),
    ssCopyCut(
      'cut-ss1.3.mp4',
      ['mp4', 'h264', 'aac', 'stereo', 'editlist', 'header-lies'],
      { video: video({ frames: 100, flashes: [15, 45, 65, 90] }), audio: stereo() },
      1.3,
      {
        video: [...H264, '-g', '50', '-bf', '0'],
      },
    ),
    plain('vfr.mp4', ['mp4', 'h264', 'aac', 'stereo', 'vfr'], {
      video: video({
        frames: 90,
        flashes: [10, 40, 70],
        // 25 fps, then 10 fps, then 25 fps with odd frames 20 ms late (times in ms; ffmpeg's mp4 keeps a 1/50 s grid here).
        vfr: {
          expr: 'if(lt(N,30),N*40,if(lt(N,60),1200+(N-30)*100,4200+(N-60)*40+20*mod(N,2)))',
          time: (n) => (n < 30 ? n * 40 : n < 60 ? 1200 + (n - 30) * 100 : 4200 + (n - 60) * 40 + 20 * (n % 2)) / 1000,
        },
      }),
      audio: stereo(),
    }),
    plain('ntsc-film.mp4', ['mp4', 'h264', 'aac', 'stereo', '24000/1001'], {
      video: video({ rate: [24000, 1001], frames: 72, flashes: [15, 45, 65] }),
      audio: stereo({ rate: 48000 }),
    }),
    plain(
      'odd-333x187.mp4',
      ['mp4', 'h264', 'aac', 'stereo', 'odd-size', 'yuv444'],
      { video: video({ width: 333, height: 187 }), audio: stereo() },
      { video: [...H264.slice(0, -2), '-pix_fmt', 'yuv444p'] },
    ),
    plain('yuv444.mp4', ['mp4', 'h264', 'yuv444', 'video-only'], { video: video() }, { video: [...H264.slice(0, -2), '-pix_fmt', 'yuv444p'] }),
    plain(
      '10bit.mp4',
      ['mp4', 'h264', 'aac', 'stereo', '10bit'],
      { video: video(), audio: stereo() },
      { video: [...H264.slice(0, -2), '-pix_fmt', 'yuv420p10le'] },
    ),
    plain(
      'bframes-longgop.mp4',
      ['mp4', 'h264', 'aac', 'stereo', 'bframes'],
      { video: video({ frames: 100, flashes: [15, 45, 65, 90] }), audio: stereo() },
      {
        video: [...H264, '-g', '250', '-bf', '3', '-b_strategy', '0'],
      },
    ),
    // MPEG-TS has no edit lists: the aac encoder's 1024 priming samples come first, stamped before the video.
    withTruth(plain('mpegts.ts', ['ts', 'h264', 'aac', 'stereo', 'bframes'], { video: video(), audio: stereo() }, { video: [...H264, '-bf', '2'] }), {
      audioStart: round(-1024 / 44100),
    }),
    // aac in mkv keeps its 1024 priming samples (ffmpeg writes no CodecDelay): flac has none.
    plain('matroska.mkv', ['mkv', 'h264', 'flac', 'stereo'], { video: video(), audio: stereo() }, { audio: ['-c:a', 'flac'] }),
    plain(
      'vp8-vorbis.webm',
      ['webm', 'vp8', 'vorbis', 'stereo'],
      { video: video(), audio: stereo() },
      { video: ['-c:v', 'libvpx', '-b:v', '300k', '-pix_fmt', 'yuv420p'], audio: ['-c:a', 'libvorbis', '-q:a', '3'] },
    ),
    plain(
      'vp9-opus.webm',
      ['webm', 'vp9', 'opus', 'stereo', '48k'],
      { video: video(), audio: stereo({ rate: 48000 }) },
      {
        video: ['-c:v', 'libvpx-vp9', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p'],
        audio: ['-c:a', 'libopus', '-b:a', '64k'],
      },
    ),
    // The container duration is the audio's (3 s): a frame count from duration × fps says 75.
    plain(
      'webm-audio-longer.webm',
      ['webm', 'vp9', 'opus', 'stereo', '48k', 'header-lies'],
      { video: video({ frames: 50, flashes: [15, 40] }), audio: stereo({ rate: 48000, seconds: 3 }) },
      {
        video: ['-c:v', 'libvpx-vp9', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p'],
        audio: ['-c:a', 'libopus', '-b:a', '64k'],
      },
    ),
    // AVI stores no presentation times: demuxers number frames in decode order, and the B-frame
    // reorder delay stamps the first shown frame 1/fps, so the audio (from 0) leads by one frame.
    shiftVideo(
      plain(
        'mpeg4-bframes.avi',
        ['avi', 'mpeg4', 'bframes', 'pcm', 'stereo'],
        { video: video(), audio: stereo() },
        { video: ['-c:v', 'mpeg4', '-bf', '2', '-q:v', '4', '-g', '30'], audio: ['-c:a', 'pcm_s16le'] },
      ),
      0.04,
    ),
    plain(
      'prores.mov',
      ['mov', 'prores', 'pcm', 'stereo', '48k'],
      { video: video(), audio: stereo({ rate: 48000 }) },
      { video: ['-c:v', 'prores_ks', '-profile:v', '2', '-pix_fmt', 'yuv422p10le'], audio: ['-c:a', 'pcm_s16le'] },
    ),
    plain('audio-only.m4a', ['audio-only', 'aac', 'stereo', '44k'], { audio: stereo() }),
    plain('video-only.mp4', ['mp4', 'h264', 'video-only'], { video: video() }),
    plain('one-frame.mp4', ['mp4', 'h264', 'video-only', 'one-frame'], { video: video({ frames: 1, flashes: [] }) }),
  ];
  for (const rotation of [90, 180, 270] as const) {
    const s: Source = { video: video(), audio: stereo() };
    const t = truthOf(s);
    Object.assign(t, { rotation, width: rotation === 180 ? 160 : 120, height: rotation === 180 ? 120 : 160 });
    list.push({
      name: `rotate${rotation}.mp4`,
      tags: ['mp4', 'h264', 'aac', 'stereo', `rotate${rotation}`, 'rotated'],
      truth: t,
      async make(out) {
        await encodeSource(out, s);
        await setMp4Rotation(out, rotation, { width: 160, height: 120 });
      },
    });
  }
  // Cut right where video packet 40 starts (no B-frames, moov first): exactly 40 frames decode.
  {
    const s: Source = { video: video({ flashes: [15, 65] }), audio: stereo() };
    const t = truthOf(s);
    Object.assign(t, { frames: 40, flashes: [15], duration: 1.6, beeps: [t.beeps![0]] });
    delete t.audioDuration;
    list.push({
      name: 'truncated.mp4',
      tags: ['mp4', 'h264', 'aac', 'stereo', 'truncated'],
      truth: t,
      async make(out, work) {
        const full = join(work, 'truncated.full.mp4');
        await encodeSource(full, s, { video: [...H264, '-bf', '0', '-g', '25'], extra: ['-movflags', '+faststart'] });
        await cutAt(full, out, (await probePackets(full, 'v:0'))[40]!.pos);
      },
    });
  }
  // Awkward classes beyond issue 9's list.
  list.push(
    plain(
      'vfr.mkv',
      ['mkv', 'h264', 'flac', 'stereo', 'vfr'],
      {
        video: video({
          frames: 70,
          flashes: [10, 50, 65],
          // A 25 fps part then a 12.5 fps part, as a concatenation of two recordings.
          vfr: { expr: 'if(lt(N,40),N*40,1600+(N-40)*80)', time: (n) => (n < 40 ? n * 40 : 1600 + (n - 40) * 80) / 1000 },
        }),
        audio: stereo(),
      },
      { audio: ['-c:a', 'flac'] },
    ),
    plain(
      'hevc.mp4',
      ['mp4', 'hevc', 'aac', 'stereo'],
      { video: video(), audio: stereo() },
      { video: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1'] },
    ),
    // Full-range (JPEG) levels, flagged as such, as many phones record: a reader that assumes TV range gets the colours wrong.
    plain(
      'full-range.mp4',
      ['mp4', 'h264', 'aac', 'stereo', 'full-range'],
      { video: video(), audio: stereo() },
      { video: [...H264.slice(0, -2), '-pix_fmt', 'yuvj420p'] },
    ),
    plain('audio-only.wav', ['audio-only', 'wav', 'pcm', 'mono', '16k'], { audio: { rate: 16000, layout: 'mono' } }, { audio: ['-c:a', 'pcm_s16le'] }),
    withTruth(
      plain(
        'sparse-keyframes.mp4',
        ['mp4', 'h264', 'aac', 'stereo', 'bframes', 'sparse-keyframes'],
        { video: video({ frames: 200, flashes: [15, 45, 65, 120, 190] }), audio: stereo() },
        {
          video: [...H264, '-g', '1000', '-keyint_min', '1000', '-sc_threshold', '0'],
        },
      ),
      { keyframes: [0] },
    ),
  );
  list.push(
    // Same stem, different files (and first colours): per-source keys must not collide.
    plain('same.mp4', ['mp4', 'h264', 'aac', 'stereo', 'same-stem'], { video: video(), audio: stereo() }),
    plain('same.mkv', ['mkv', 'h264', 'flac', 'stereo', 'same-stem'], { video: video(), audio: stereo() }, { audio: ['-c:a', 'flac'] }),
    // An mp4 with no video at all (what m4a is, under the name people give it).
    plain('audio-only.mp4', ['mp4', 'audio-only', 'aac', 'stereo', '44k'], { audio: stereo() }),
    plain(
      'mjpeg.avi',
      ['avi', 'mjpeg', 'pcm', 'mono', 'full-range'],
      { video: video(), audio: stereo({ layout: 'mono' }) },
      { video: ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj422p'], audio: ['-c:a', 'pcm_s16le'] },
    ),
    plain('fps1.mp4', ['mp4', 'h264', 'aac', 'stereo', 'low-fps'], { video: video({ rate: [1, 1], frames: 5, flashes: [2] }), audio: stereo() }),
    plain('portrait-120x160.mp4', ['mp4', 'h264', 'aac', 'stereo', 'portrait'], { video: video({ width: 120, height: 160 }), audio: stereo() }),
  );
  {
    // Two audio streams: the first (stereo, with the beeps) is the one to use; the second is silent mono 8 kHz.
    const s: Source = { video: video(), audio: stereo() };
    list.push({
      name: 'two-audio.mkv',
      tags: ['mkv', 'h264', 'flac', 'stereo', 'two-audio'],
      truth: truthOf(s),
      async make(out, work) {
        const av = join(work, 'two-audio.av.mkv');
        await encodeSource(av, s, { audio: ['-c:a', 'flac'] });
        await ffmpeg([
          '-i',
          av,
          '-f',
          'lavfi',
          '-i',
          'anullsrc=r=8000:cl=mono',
          '-map',
          '0:v',
          '-map',
          '0:a',
          '-map',
          '1:a',
          '-t',
          '3',
          '-c:v',
          'copy',
          '-c:a',
          'flac',
          out,
        ]);
      },
    });
  }
  {
    // Header durations ×10 (mvhd, tkhd, mdhd, elst); the sample tables stay true. duration × fps says 750 frames.
    const s: Source = { video: video(), audio: stereo() };
    list.push({
      name: 'lying-duration.mp4',
      tags: ['mp4', 'h264', 'aac', 'stereo', 'header-lies', 'lying-duration'],
      truth: truthOf(s),
      async make(out) {
        await encodeSource(out, s);
        await inflateMp4Durations(out, 10);
      },
    });
  }
  {
    // A 64-bit mdat header (what muxers write past 4 GiB), moov at the end.
    const s: Source = { video: video(), audio: stereo() };
    list.push({
      name: 'mdat64.mp4',
      tags: ['mp4', 'h264', 'aac', 'stereo', 'mdat64'],
      truth: truthOf(s),
      async make(out) {
        await encodeSource(out, s);
        await largeMdatHeader(out);
      },
    });
  }
  {
    // The audio media starts 0.3 s before the video's; its edit list skips those 0.3 s. Read
    // without the edit list, the audio is 0.3 s late.
    const v = video();
    const shown: Source = { video: v, audio: stereo() };
    list.push({
      name: 'audio-editlist-skip.mp4',
      tags: ['mp4', 'h264', 'aac', 'stereo', 'editlist', 'audio-skip'],
      truth: truthOf(shown),
      async make(out) {
        await encodeSource(out, { video: { ...v, offset: 0.3 }, audio: stereo() });
        await skipMp4Media(out, 'soun', 0.3);
      },
    });
  }
  {
    // A subtitle stream next to video and audio (a job must pick streams by type, not index).
    const s: Source = { video: video(), audio: stereo() };
    list.push({
      name: 'subtitles.mkv',
      tags: ['mkv', 'h264', 'flac', 'stereo', 'subtitles'],
      truth: truthOf(s),
      async make(out, work) {
        const av = join(work, 'subtitles.av.mkv');
        const srt = join(work, 'subtitles.srt');
        await encodeSource(av, s, { audio: ['-c:a', 'flac'] });
        await writeFile(srt, '1\n00:00:00,500 --> 00:00:01,500\nfirst\n\n2\n00:00:02,000 --> 00:00:02,800\nsecond\n');
        await ffmpeg(['-i', srt, '-i', av, '-map', '1:v', '-map', '1:a', '-map', '0:s', '-c', 'copy', '-c:s', 'srt', out]);
      },
    });
  }
  list.push(
    { name: 'empty.mp4', tags: ['bad'], truth: { bad: 'an empty file (0 bytes)' }, make: (out) => writeFile(out, Buffer.alloc(0)) },
    { name: 'random.mp4', tags: ['bad'], truth: { bad: 'random bytes, no container' }, make: (out) => writeFile(out, pseudoRandom(64 * 1024)) },
    // What a failed download leaves under the video's name.
    {
      name: 'error-page.mp4',
      tags: ['bad'],
      truth: { bad: 'an HTML error page, not media' },
      make: (out) => writeFile(out, '<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1></body></html>\n'),
    },
    {
      name: 'subtitles-only.mp4',
      tags: ['bad', 'subtitles'],
      truth: { bad: 'a valid mp4 with a subtitle stream only: no audio or video' },
      async make(out, work) {
        const srt = join(work, 'only.srt');
        await writeFile(srt, '1\n00:00:00,000 --> 00:00:01,000\nnothing to see\n');
        await ffmpeg(['-i', srt, '-c:s', 'mov_text', out]);
      },
    },
    {
      name: 'no-moov.mp4',
      tags: ['bad', 'truncated'],
      truth: { bad: 'cut before its moov box (moov at the end): no index, nothing decodable' },
      async make(out, work) {
        const full = join(work, 'no-moov.full.mp4');
        await encodeSource(full, { video: video(), audio: stereo() });
        await cutAt(full, out, Math.floor((await readFile(full)).length / 2));
      },
    },
  );
  return list;
}

async function cutAt(src: string, out: string, bytes: number): Promise<void> {
  const fh = await open(src, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, 0);
    await writeFile(out, buf);
  } finally {
    await fh.close();
  }
  await rm(src, { force: true });
}

/** Deterministic noise (xorshift), so the bad file is the same on every machine. */
function pseudoRandom(n: number): Buffer {
  const buf = Buffer.alloc(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}
