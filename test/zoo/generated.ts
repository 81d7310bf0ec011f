/**
 * The generated zoo: a crossing (test/zoo/crossings.ts) becomes a recipe that makes one file
 * with ffmpeg and states its truth from the crossing's parameters alone (never from clipstream's
 * code). scripts/zoo_truth.py confirms every truth with PyAV and ffprobe (test/zoo/checks.ts
 * compares them); a file whose truth and references disagree is a generator bug.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Crossing, crossingId, EXTENSION, normalise } from './crossings.js';
import { setMp4Rotation } from './mp4-edit.js';
import { audioSource, BEEP_S, frameColor, LAYOUT_CHANNELS, type Rgb, type VideoPattern, videoGraph } from './pattern.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { runTool } from '../../src/media/process.js';
import type { Recipe } from './recipes.js';
import { type ZooEntry, type ZooTruth, zooSet } from './zoo.js';

/** How a decoder must turn the stored samples into RGB for the picture the recipe drew. */
export interface ColourTruth {
  /** ffprobe's names, present only where the file declares them. */
  space?: 'bt709' | 'bt2020nc';
  primaries?: 'bt709' | 'bt2020';
  transfer?: 'bt709' | 'smpte2084';
  /** The matrix the pixels were made with (bt601 where the file declares none). */
  matrix: 'bt601' | 'bt709' | 'bt2020';
  range: 'tv' | 'pc';
  bits: 8 | 10;
}

export interface GenTruth extends ZooTruth {
  /** The crossing id (a twin companion: the id of the crossing it was made from, as made). */
  crossing: string;
  container: Crossing['container'];
  /** ffprobe's codec names. */
  videoCodec: string;
  audioCodec?: string;
  /** Sample aspect ratio; width/height (display) apply it to the coded width, then the rotation. */
  sar: [number, number];
  colour: ColourTruth;
  /** cfr/vfr as for ZooTruth; gap: VFR with one long hole; reset: timestamps restart at `resetAt`. */
  timeline: 'cfr' | 'vfr' | 'gap' | 'reset';
  resetAt?: number;
  /** Content time of every frame from the first (a reset file: as if its parts were one). */
  frameTimes?: number[];
  /** Number of separately encoded parts (each primes its own audio encoder). */
  parts: number;
  /** Made by an `-ss` copy cut: edit lists hide the packets before the cut (ffprobe's packet list still has them). */
  editList?: boolean;
}

export interface GenEntry extends Omit<ZooEntry, 'truth'> {
  truth: GenTruth;
  /** Set when the generator itself could not make the file (a recipe bug, reported, not a job's). */
  generatorError?: string;
}

interface Plan {
  width: number;
  height: number;
  rate: [number, number];
  frames: number;
  /** Frame n's time, s (content time). */
  time: (n: number) => number;
  /** An ffmpeg setpts expression in ms for VFR timings. */
  ptsExpr?: string;
  seconds: number;
}

const round = (x: number, digits = 6) => Number(x.toFixed(digits));

/**
 * The generator's ffmpeg: `FFMPEG_PATH`, else the system's (it has every encoder the crossings
 * use: libaom, libx265, libvpx, libopus), else clipstream's own. Part of the cache key.
 */
export const generatorFfmpeg = () => process.env.FFMPEG_PATH ?? (existsSync('/usr/bin/ffmpeg') ? '/usr/bin/ffmpeg' : ffmpegPath());

async function ffmpeg(args: string[]): Promise<void> {
  const r = await runTool(generatorFfmpeg(), ['-v', 'error', '-nostdin', '-y', ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`zoo: ffmpeg ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
}

const GEOMETRY: Record<string, { width: number; height: number; sar?: [number, number] }> = {
  plain: { width: 160, height: 120 },
  rotate90: { width: 160, height: 120 },
  rotate180: { width: 160, height: 120 },
  rotate270: { width: 160, height: 120 },
  sar16x15: { width: 180, height: 144, sar: [16, 15] },
  sar32x27: { width: 216, height: 144, sar: [32, 27] },
  odd: { width: 163, height: 91 },
  tiny: { width: 48, height: 36 },
  large: { width: 1920, height: 1080 },
};

function plan(c: Crossing): Plan {
  const g = GEOMETRY[c.geometry]!;
  const rate: [number, number] = c.timing === 'ntsc-film' ? [24000, 1001] : c.timing === 'ntsc' ? [30000, 1001] : [25, 1];
  // About 2 s each: long enough for two clips and two VGGish windows, short enough for CI.
  let frames = { cfr: 50, 'ntsc-film': 48, ntsc: 60, vfr: 45, gap: 40, editlist: 75 }[c.timing];
  // A 1080p frame costs a job ~100 small ones (segments: ~1 s on one core): a tenth of the frames.
  if (c.geometry === 'large') frames = Math.round(frames / 8);
  const step = rate[1] / rate[0];
  let time = (n: number) => n * step;
  let ptsExpr: string | undefined;
  if (c.timing === 'vfr') {
    // 25 fps, then 10 fps, then 25 fps with odd frames 20 ms late (a 1/50 s grid: mp4 keeps it).
    const a = Math.round(frames / 3);
    const b = Math.round((2 * frames) / 3);
    const base = a * 40 + (b - a) * 100;
    time = (n) => (n < a ? n * 40 : n < b ? a * 40 + (n - a) * 100 : base + (n - b) * 40 + 20 * (n % 2)) / 1000;
    ptsExpr = `if(lt(N,${a}),N*40,if(lt(N,${b}),${a * 40}+(N-${a})*100,${base}+(N-${b})*40+20*mod(N,2)))`;
  } else if (c.timing === 'gap') {
    // A recording paused for 2 s halfway: the video holds nothing there, the audio runs on.
    const k = Math.floor(frames / 2);
    time = (n) => (n * 40 + (n >= k ? 2000 : 0)) / 1000;
    ptsExpr = `N*40+gte(N,${k})*2000`;
  }
  const last = time(frames - 1);
  const seconds = last + (frames > 1 ? last - time(frames - 2) : step);
  return { width: g.width, height: g.height, rate, frames, time, ptsExpr, seconds: round(seconds) };
}

const FFPROBE_VIDEO: Record<Crossing['codec'], string> = { h264: 'h264', hevc: 'hevc', vp9: 'vp9', av1: 'av1', mpeg2: 'mpeg2video', mjpeg: 'mjpeg' };
const FFPROBE_AUDIO: Record<Crossing['audio'], string> = { aac: 'aac', opus: 'opus', flac: 'flac', ac3: 'ac3', pcm24: 'pcm_s24le', none: '' };
const AUDIO_RATE: Record<Crossing['audio'], number> = { aac: 44100, opus: 48000, flac: 44100, ac3: 48000, pcm24: 48000, none: 0 };

function colourOf(c: Crossing): ColourTruth {
  const bits = c.colour === 'pq' ? 10 : 8;
  if (c.colour === 'bt709') return { space: 'bt709', primaries: 'bt709', transfer: 'bt709', matrix: 'bt709', range: 'tv', bits };
  if (c.colour === 'pq') return { space: 'bt2020nc', primaries: 'bt2020', transfer: 'smpte2084', matrix: 'bt2020', range: 'tv', bits };
  return { matrix: 'bt601', range: c.colour === 'full' ? 'pc' : 'tv', bits };
}

function pixFmt(c: Crossing, colour: ColourTruth): string {
  if (c.codec === 'mjpeg') return 'yuvj420p';
  // x264/x265 cannot subsample an odd size: those keep full chroma.
  const chroma = c.geometry === 'odd' && (c.codec === 'h264' || c.codec === 'hevc') ? 'yuv444p' : 'yuv420p';
  return colour.bits === 10 ? `${chroma}10le` : chroma;
}

function videoArgs(c: Crossing, colour: ColourTruth, gop: number): string[] {
  const pix = ['-pix_fmt', pixFmt(c, colour)];
  const tags: string[] = [];
  if (colour.space) tags.push('-colorspace', colour.space, '-color_primaries', colour.primaries!, '-color_trc', colour.transfer!);
  if (c.codec !== 'mjpeg') tags.push('-color_range', colour.range);
  const g = ['-g', String(gop)];
  switch (c.codec) {
    case 'h264':
      return ['-c:v', 'libx264', '-preset', 'veryfast', ...pix, ...g, ...(c.container === 'avi' ? ['-bf', '0'] : []), ...tags];
    case 'hevc':
      return [
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
        '-x265-params',
        'log-level=error',
        ...pix,
        ...g,
        ...(EXTENSION[c.container] === 'mp4' || c.container === 'mov' ? ['-tag:v', 'hvc1'] : []),
        ...tags,
      ];
    case 'vp9':
      return ['-c:v', 'libvpx-vp9', '-b:v', '400k', '-deadline', 'realtime', '-cpu-used', '8', ...pix, ...g, ...tags];
    case 'av1':
      return ['-c:v', 'libaom-av1', '-crf', '40', '-cpu-used', '8', '-row-mt', '1', ...pix, ...g, ...tags];
    case 'mpeg2':
      return ['-c:v', 'mpeg2video', '-q:v', '3', '-bf', '2', ...pix, ...g, ...tags];
    case 'mjpeg':
      return ['-c:v', 'mjpeg', '-q:v', '3', ...pix, ...tags];
  }
}

function audioArgs(c: Crossing): string[] {
  const wide = c.layout === '7.1';
  switch (c.audio) {
    case 'aac':
      return ['-c:a', 'aac', '-b:a', wide ? '256k' : '96k'];
    case 'opus':
      return ['-c:a', 'libopus', '-b:a', wide ? '256k' : '64k'];
    case 'flac':
      // FLAC in mp4 is still "experimental" to ffmpeg 5.1, but standard and written by ffmpeg 6+.
      return ['-c:a', 'flac', ...(EXTENSION[c.container] === 'mp4' ? ['-strict', '-2'] : [])];
    case 'ac3':
      return ['-c:a', 'ac3', '-b:a', '192k'];
    case 'pcm24':
      return ['-c:a', 'pcm_s24le'];
    case 'none':
      return [];
  }
}

function containerArgs(c: Crossing): string[] {
  // AC-3 needs its first packet before the moov can be written (ffmpeg's own advice).
  const delay = c.audio === 'ac3' ? '+delay_moov' : '';
  if (c.container === 'fmp4') return ['-movflags', `frag_keyframe+empty_moov+default_base_moof${delay}`];
  // CMAF with 1 s fragments (what streaming packagers write).
  if (c.container === 'cmaf') return ['-movflags', `cmaf+frag_keyframe+empty_moov+default_base_moof+separate_moof${delay}`, '-frag_duration', '1000000'];
  if (c.container === 'ts') return ['-f', 'mpegts'];
  return [];
}

/** The video graph: the zoo pattern, timed, with its SAR and drawn in the crossing's matrix and range. */
function graphOf(c: Crossing, p: Plan, colour: ColourTruth, first: Rgb, flashes: number[], part?: [number, number]): string {
  const pattern: VideoPattern = { width: p.width, height: p.height, rate: p.rate, frames: p.frames, first, flashes };
  let g = `${videoGraph(pattern)},trim=end_frame=${p.frames}`;
  // Exact timestamps from the frame number: the filters' own rounding once left a hole at 30000/1001 in AVI.
  if (p.ptsExpr) g += `,settb=1/1000,setpts='(${p.ptsExpr})/1000/TB'`;
  else g += `,settb=${p.rate[1]}/${p.rate[0]},setpts=N`;
  if (part) g += `,trim=start_frame=${part[0]}:end_frame=${part[1]},setpts=PTS-STARTPTS`;
  const sar = GEOMETRY[c.geometry]!.sar;
  if (sar) g += `,setsar=${sar[0]}/${sar[1]}`;
  // Back to RGB (the pattern source draws in BT.601 TV levels), then into the file's own matrix and range.
  const range = colour.range === 'pc' ? 'full' : 'tv';
  g += `,format=gbrp,scale=out_color_matrix=${colour.matrix === 'bt601' ? 'bt601' : colour.matrix}:out_range=${range},format=${pixFmt(c, colour)}`;
  return g;
}

const FIRSTS: Rgb[] = [];
for (const r of [200, 120, 60]) for (const g of [60, 140, 210]) for (const b of [50, 130, 200]) FIRSTS.push([r, g, b]);

/** The first frame's colour: from the id, so a file's first frame names it whatever else is in the sample. */
function firstOf(id: string): Rgb {
  return FIRSTS[createHash('sha256').update(id).digest().readUInt32BE(0) % FIRSTS.length]!;
}

/** The name a file gets; a twin's stem is shared with its companion. */
function fileName(c: Crossing, id: string, twin?: string): string {
  const ext = EXTENSION[c.container];
  switch (c.name) {
    case 'plain':
      return `${id}.${ext}`;
    case 'long':
      // 250 bytes in all: under the 255 a file system allows, over what a derived name can add.
      return `${id}-${'l'.repeat(Math.max(0, 249 - id.length - ext.length - 1))}.${ext}`;
    case 'unicode':
      return `${id}-vidéo-日本語-Ωμέγα.${ext}`;
    case 'dash':
      return `-${id}.${ext}`;
    case 'twin':
      return `${twin}.${ext}`;
  }
}

/** The recipe of one crossing (normalised first), named `name`. */
export function crossingRecipe(input: Crossing, name?: string): Recipe & { truth: GenTruth } {
  const c = normalise(input);
  const id = crossingId(c);
  const p = plan(c);
  const colour = colourOf(c);
  const first = firstOf(id);
  // Flashes a third and two thirds in (at least one frame after the first).
  const flashes = p.frames >= 6 ? [Math.round(p.frames / 3), Math.round((2 * p.frames) / 3)] : [];
  const g = GEOMETRY[c.geometry]!;
  const sar = g.sar ?? [1, 1];
  const rotation = c.geometry.startsWith('rotate') ? (Number(c.geometry.slice(6)) as 90 | 180 | 270) : 0;
  const shownW = Math.round((g.width * sar[0]) / sar[1]);
  const [width, height] = rotation === 90 || rotation === 270 ? [g.height, shownW] : [shownW, g.height];
  const vfr = c.timing === 'vfr' || c.timing === 'gap';
  const parts = c.container === 'ts' ? 2 : 1;
  const resetAt = parts === 2 ? Math.floor(p.frames / 2) : undefined;
  const audioSeconds = c.audio === 'none' ? 0 : round({ same: p.seconds, short: p.seconds * 0.6, long: p.seconds + 1, blip: 0.5 }[c.audioLength]);
  const beeps = flashes.map((n) => round(p.time(n))).filter((t) => t + BEEP_S <= audioSeconds);
  const truth: GenTruth = {
    crossing: id,
    container: c.container,
    videoCodec: FFPROBE_VIDEO[c.codec],
    frames: p.frames,
    codedWidth: g.width,
    codedHeight: g.height,
    width,
    height,
    sar,
    rotation,
    colour,
    timeline: parts === 2 ? 'reset' : vfr ? (c.timing === 'gap' ? 'gap' : 'vfr') : 'cfr',
    vfr,
    parts,
    flashes,
    duration: p.seconds,
    firstFrameColor: frameColor({ width: g.width, height: g.height, first, flashes }, 0),
  };
  if (resetAt !== undefined) truth.resetAt = resetAt;
  if (vfr || parts === 2) truth.frameTimes = Array.from({ length: p.frames }, (_, n) => round(p.time(n)));
  if (!vfr) truth.fps = round(p.rate[0] / p.rate[1]);
  if (c.audio !== 'none') {
    Object.assign(truth, {
      audioCodec: FFPROBE_AUDIO[c.audio],
      audioChannels: LAYOUT_CHANNELS[c.layout],
      audioRate: AUDIO_RATE[c.audio],
      audioStart: 0,
      audioDuration: audioSeconds,
      beeps,
    });
  }
  const audioGraph = (from: number, to: number) =>
    audioSource({
      rate: AUDIO_RATE[c.audio],
      layout: c.layout,
      seconds: round(to - from),
      beeps: beeps.map((b) => round(b - from)).filter((b) => b >= 0 && b + BEEP_S <= to - from),
    });
  const gop = c.container === 'cmaf' || c.container === 'dash' || c.timing === 'editlist' ? 25 : 50;

  /** One ffmpeg run: frames [from, to) of the plan and the audio of their span. */
  const encode = async (out: string, part?: [number, number], extra: string[] = containerArgs(c), withAudio = c.audio !== 'none') => {
    const args = ['-f', 'lavfi', '-i', graphOf(c, p, colour, first, flashes, part)];
    const maps = ['-map', '0:v', ...videoArgs(c, colour, gop), '-vsync', 'passthrough'];
    if (withAudio) {
      const from = part ? p.time(part[0]) : 0;
      const to = part && part[1] < p.frames ? p.time(part[1]) : audioSeconds;
      args.push('-f', 'lavfi', '-i', audioGraph(from, to));
      maps.push('-map', '1:a', ...audioArgs(c));
    }
    await ffmpeg([...args, ...maps, ...extra, out]);
  };

  let make: (out: string, work: string) => Promise<void>;
  const scratch = (out: string, work: string) => join(work, createHash('sha1').update(out).digest('hex'));
  if (c.container === 'fmp4' || c.container === 'cmaf') {
    // Fragmented as packagers do it, from a finished file: encoders' packet durations (VP9 and
    // AV1 leave them out) would otherwise time each fragment's last frame.
    make = async (out, work) => {
      const full = `${scratch(out, work)}.full.mp4`;
      await encode(full, undefined, []);
      // make_non_negative: the default shifts the video's first frame by the audio's priming (its first frame lasts longer).
      await ffmpeg([
        '-i',
        full,
        '-map',
        '0',
        '-c',
        'copy',
        '-avoid_negative_ts',
        'make_non_negative',
        ...(c.audio === 'flac' ? ['-strict', '-2'] : []),
        ...containerArgs(c),
        out,
      ]);
    };
  } else if (c.timing === 'editlist') {
    // `-ss at -c copy`: the mp4 muxer keeps the GOP before `at` and hides it with an edit list;
    // the first frame shown is the first at or after `at`, and both clocks restart there.
    const step = p.rate[1] / p.rate[0];
    const firstKept = Math.round(p.frames * 0.33) + 1;
    const at = round((firstKept - 0.5) * step);
    const shift = p.time(firstKept);
    Object.assign(truth, {
      editList: true,
      frames: p.frames - firstKept,
      flashes: flashes.filter((n) => n >= firstKept).map((n) => n - firstKept),
      duration: round(p.seconds - shift),
      firstFrameColor: frameColor({ width: g.width, height: g.height, first, flashes }, firstKept),
    });
    if (c.audio !== 'none') Object.assign(truth, { audioDuration: round(audioSeconds - at), beeps: beeps.map((b) => round(b - at)).filter((b) => b >= 0) });
    make = async (out, work) => {
      const full = join(work, `${createHash('sha1').update(out).digest('hex')}.full.${EXTENSION[c.container]}`);
      await encode(full, undefined, ['-bf', c.codec === 'h264' || c.codec === 'hevc' ? '3' : '0']);
      await ffmpeg(['-ss', String(at), '-i', full, '-map', '0', '-c', 'copy', out]);
    };
  } else if (c.container === 'dash') {
    make = async (out, work) => {
      const dir = join(work, createHash('sha1').update(out).digest('hex'));
      await mkdir(dir, { recursive: true });
      const full = join(dir, 'full.mp4');
      await encode(full, undefined, []);
      await ffmpeg([
        '-i',
        full,
        '-map',
        '0:v',
        '-c',
        'copy',
        '-f',
        'dash',
        // VP9 would go to WebM segments by default: a joined DASH download here is the mp4 kind.
        '-dash_segment_type',
        'mp4',
        '-seg_duration',
        '1',
        '-init_seg_name',
        'init.m4s',
        '-media_seg_name',
        'chunk-$Number%05d$.m4s',
        join(dir, 'x.mpd'),
      ]);
      const chunks = (await readdir(dir)).filter((f) => f.startsWith('chunk-')).sort();
      const bytes = await Promise.all(['init.m4s', ...chunks].map((f) => readFile(join(dir, f))));
      await writeFile(out, Buffer.concat(bytes));
    };
  } else if (parts === 2) {
    // Two recordings joined with `cat`: the first made by a clock 10 s on, so the second's
    // timestamps restart lower however short the first part is.
    make = async (out, work) => {
      const base = join(work, createHash('sha1').update(out).digest('hex'));
      await encode(`${base}.1.ts`, [0, resetAt!], ['-output_ts_offset', '10', ...containerArgs(c)]);
      await encode(`${base}.2.ts`, [resetAt!, p.frames]);
      await writeFile(out, Buffer.concat([await readFile(`${base}.1.ts`), await readFile(`${base}.2.ts`)]));
    };
  } else {
    make = (out) => encode(out);
  }
  const tags = [c.container, c.codec, c.timing, c.geometry, c.colour, c.audio, c.name];
  return {
    name: name ?? fileName(c, id),
    tags,
    truth,
    async make(out, work) {
      try {
        await make(out, work);
        if (rotation) await setMp4Rotation(out, rotation, { width: g.width, height: g.height });
      } catch (err) {
        // Kept as a finding of the explorer, not a crash of the whole sample.
        await rm(out, { force: true });
        const errors = join(dirname(out), ERRORS);
        await mkdir(errors, { recursive: true });
        await writeFile(join(errors, errorKey(out)), (err as Error).message);
      }
    },
  };
}

const ERRORS = '.generator-errors';
const errorKey = (path: string) =>
  createHash('sha1')
    .update(path.slice(path.lastIndexOf('/') + 1))
    .digest('hex');

/**
 * The recipes of a list of crossings: one file each, and for each `twin` crossing a companion
 * of the same stem in another container (so every twin has a sibling that shares its stem).
 */
export function generatedRecipes(crossings: Crossing[]): Array<Recipe & { truth: GenTruth }> {
  const out: Array<Recipe & { truth: GenTruth }> = [];
  let twins = 0;
  for (const raw of crossings) {
    const c = normalise(raw);
    if (c.name !== 'twin') {
      out.push(crossingRecipe(c));
      continue;
    }
    const stem = `twin${twins++}`;
    out.push(crossingRecipe(c, `${stem}.${EXTENSION[c.container]}`));
    const other = normalise({ ...c, container: EXTENSION[c.container] === 'mkv' ? 'mp4' : 'mkv', timing: 'cfr' });
    const r = crossingRecipe(other, `${stem}.${EXTENSION[other.container]}`);
    r.tags.push('twin-companion');
    out.push(r);
  }
  return out;
}

const SOURCES = ['zoo.ts', 'recipes.ts', 'pattern.ts', 'mp4-edit.ts', 'crossings.ts', 'generated.ts'];
/** Bump to regenerate every sample even where no source changed. */
const GENERATED_VERSION = 1;

/** The files of `crossings`, made once per machine into a cache folder keyed by the generator's source and the list. */
export async function generatedEntries(crossings: Crossing[], root = tmpdir()): Promise<GenEntry[]> {
  const hash = createHash('sha256');
  for (const f of SOURCES) hash.update(await readFile(fileURLToPath(new URL(f, import.meta.url))));
  hash.update(generatorFfmpeg());
  hash.update(crossings.map(crossingId).join('\n'));
  const dir = join(root, `clipstream-zoo-gen-v${GENERATED_VERSION}-${hash.digest('hex').slice(0, 12)}`);
  const entries = (await zooSet(dir, () => generatedRecipes(crossings))) as GenEntry[];
  const errors = new Set(await readdir(join(dir, ERRORS)).catch(() => [] as string[]));
  for (const e of entries) {
    const key = errorKey(e.path);
    if (errors.has(key)) e.generatorError = await readFile(join(dir, ERRORS, key), 'utf8');
  }
  return entries;
}
