/**
 * The media-facts layer: one probe (`probeMedia`) whose answer every job takes its decisions
 * from — container, geometry, colour, audio streams and, on request, the frame timeline — read
 * from ffprobe, or from ffmpeg itself where ffprobe dies. docs/media.md lists the facts and
 * which job uses which.
 *
 * Rotation convention (one for the whole library): `rotation` is the CLOCKWISE turn, in
 * degrees (0, 90, 180 or 270), that a player applies to the stored frame to display it; it is
 * what ffmpeg's autorotation applies when it decodes. ffprobe's display-matrix `rotation` (and
 * `ffmpeg -i`'s "displaymatrix: rotation of X degrees") is counter-clockwise, so it is negated;
 * a legacy `rotate` stream tag is already clockwise.
 */
import { open } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { ffmpegPath, ffprobePath } from './ffmpeg-path.js';
import { type ToolResult, runTool, stderrTail } from './process.js';

/** A ratio of two positive integers, e.g. a sample aspect ratio 16:15. */
export interface Fraction {
  num: number;
  den: number;
}

/** Container facts: what the file's structure says, independently of its streams. */
export interface ContainerFacts {
  /** The demuxer's name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `mpegts`. */
  format: string;
  /** Fragmented MP4/CMAF: samples live in movie fragments (`moof`), the `moov` index is empty. */
  fragmented: boolean;
  /** The container has a sample or seek index (mp4 sample tables or `sidx`/`mfra`, Matroska Cues, AVI idx1); false for MPEG-TS; null when unknown. */
  indexed: boolean | null;
  /** The container's start time in seconds (the first timestamp of any stream). */
  startS: number;
  /**
   * Lengths in seconds as each source gives them (null: that source has none): the container's
   * duration, the video stream's own, and the span from the video start to the end of its last
   * packet (read from the file's tail; null when `lastPacket: false` and no timeline was asked for).
   */
  durations: { format: number | null; videoStream: number | null; lastPacket: number | null };
  /** The video sources above (stream, last packet) differ by more than two frame intervals (and 50 ms). */
  durationsDisagree: boolean;
  /** Container bit rate in bit/s, 0 when unknown. */
  bitRate: number;
}

/** The first video stream that is not cover art (ffmpeg's `V:0`). */
export interface VideoStreamFacts {
  /** Index of the stream in the file (for `-map 0:<index>`). */
  index: number;
  codec: string;
  pixFmt: string;
  /** Average frame rate in frames per second (avg_frame_rate, else r_frame_rate). */
  fps: number;
  /** The same rate as a fraction string for ffmpeg options, e.g. `30000/1001`. */
  rate: string;
  /** The stream's start time in seconds. */
  startS: number;
  /** The stream's duration, else the container's: what probeVideo has always reported. */
  durationS: number;
  /** Frame count: the timeline's when listed, else the index's (mp4 `nb_frames`, not for a fragmented file), else duration × fps. */
  frameCount: number;
  frameCountSource: 'timeline' | 'index' | 'estimate';
  /** Stream bit rate in bit/s, else the container's; 0 when unknown. */
  bitRate: number;
}

/**
 * Geometry. Stored size is the decoded frame size before the sample aspect ratio and the
 * rotation are applied (ffprobe's `width`/`height`, not the macroblock-padded coded size).
 * Display size applies the SAR to the width (as ffmpeg's DAR does), then the rotation.
 */
export interface GeometryFacts {
  codedWidth: number;
  codedHeight: number;
  /** Sample (pixel) aspect ratio of the stored frame; 1:1 when absent or 0:1. */
  sar: Fraction;
  /** Clockwise display rotation in degrees (see the module comment for the sign convention). */
  rotation: 0 | 90 | 180 | 270;
  /** Displayed size: width × SAR (rounded to a whole pixel), then swapped for a quarter turn. */
  displayWidth: number;
  displayHeight: number;
  /** Display aspect ratio, reduced (4:3 for 720×576 at SAR 16:15), after rotation. */
  dar: Fraction;
  /** The display aspect ratio as a number (displayed width / height, exact from SAR, not from the rounded size). */
  displayAspect: number;
}

/** Colour description of the video stream, as ffmpeg names it; null where the file does not say. */
export interface ColourFacts {
  /** Matrix coefficients (`colorspace`), e.g. `bt709`, `bt2020nc`, `smpte170m`. */
  matrix: string | null;
  /** Colour primaries, e.g. `bt709`, `bt2020`. */
  primaries: string | null;
  /** Transfer characteristics, e.g. `bt709`, `smpte2084` (PQ), `arib-std-b67` (HLG). */
  transfer: string | null;
  /** `tv` (limited) or `pc` (full); null when untagged. */
  range: 'tv' | 'pc' | null;
  /** At least one of the four is tagged. */
  tagged: boolean;
}

/** One audio stream. */
export interface AudioStreamFacts {
  /** Index of the stream in the file (for `-map 0:<index>`). */
  index: number;
  codec: string;
  channels: number;
  /** Channel layout name (`mono`, `stereo`, `5.1(side)`), null when the file gives none. */
  layout: string | null;
  sampleRate: number;
  /**
   * Start time in seconds. ffprobe route: the container's timestamp, which counts codec priming
   * (Opus pre-skip: about 7 ms before the first decoded sample); ffmpeg route: the first decoded
   * sample's time (first audio stream only, and only with `timeline: true`; else null).
   */
  startS: number | null;
  /** Length in seconds: the stream's, or Matroska's DURATION tag (ffprobe); the decoded samples (ffmpeg route, as startS); null when unknown. */
  durationS: number | null;
}

/** Where the timestamps went backwards in file order (a `cat a.ts b.ts`): frame `index` starts a new run. */
export interface TimestampReset {
  index: number;
  /** End of the run before it (last frame time) and start of the new one, in seconds. */
  fromS: number;
  toS: number;
}

/** An interval between two consecutive frames much longer than the usual one: frame `index` follows the gap. */
export interface TimelineGap {
  index: number;
  fromS: number;
  toS: number;
}

/** The per-frame timeline of the first video stream (probeMedia with `timeline: true`). */
export interface TimelineFacts {
  /**
   * Presentation time of each frame in seconds, as stored in the file. Ascending within each
   * run between timestamp resets; runs in file order (so the whole array is ascending when
   * `resets` is empty).
   */
  pts: Float64Array;
  /** Indices into `pts` of keyframes, ascending; always starts with 0. */
  keyframes: number[];
  /** Timestamp resets, in file order. */
  resets: TimestampReset[];
  /** Intervals longer than GAP_FACTOR × the median frame interval. */
  gaps: TimelineGap[];
  /** The frame intervals (gaps aside) vary by more than 10% of the median (and 2 ms, the rounding of millisecond time bases). */
  vfr: boolean;
  /** Median interval between consecutive frames, in seconds. */
  frameIntervalS: number;
  /** Seconds of content: each run's span plus one frame interval, summed (gaps included). */
  durationS: number;
  /** How the frames were listed: ffprobe's packets (no decode), or an ffmpeg decode pass where ffprobe failed. */
  method: 'packets' | 'decode';
}

/** Everything probeMedia knows about a file. */
export interface MediaFacts {
  path: string;
  /** Which tool described the streams: ffprobe, or `ffmpeg -i` where ffprobe died. */
  method: 'ffprobe' | 'ffmpeg';
  container: ContainerFacts;
  video: VideoStreamFacts;
  geometry: GeometryFacts;
  colour: ColourFacts;
  /** Audio streams in file order; empty when none. */
  audio: AudioStreamFacts[];
  /** The frame timeline; null unless `timeline: true` was asked for. */
  timeline: TimelineFacts | null;
}

/** Options of probeMedia (and of the probe.ts views). */
export interface ProbeOptions {
  signal?: AbortSignal;
  ffprobe?: string;
  /** ffmpeg for the fallback probe (and the decode pass); default FFMPEG_PATH or the bundled one. */
  ffmpeg?: string;
}

/** Options of probeMedia: what to read beyond the headers. */
export interface ProbeMediaOptions extends ProbeOptions {
  /** List every frame (packet listing, or a decode pass where ffprobe fails): reads the whole file. Default false. */
  timeline?: boolean;
  /**
   * Read the file's tail for the last packet's end (`durations.lastPacket`): one more ffprobe run that
   * seeks to the last GOP (a file without an index is demuxed to its end, nothing decoded). Default
   * true; always done when the headers give no duration.
   */
  lastPacket?: boolean;
}

/** An interval this many times the median frame interval is a gap. */
export const GAP_FACTOR = 5;

// ---------------------------------------------------------------------------------------------
// Small parsers shared by the ffprobe and ffmpeg routes.

/** A frame rate `n/d` as a number (0 when absent or 0/0). */
export function parseRate(v: unknown): number {
  const [n, d] = String(v ?? '0/0')
    .split('/')
    .map(Number);
  return n && d ? n / d : 0;
}

/** A frame rate as a fraction: whole rates as N/1, NTSC rates as N000/1001, others in thousandths. */
export function rateFraction(fps: number): string {
  if (Math.abs(fps - Math.round(fps)) < 0.005) return `${Math.round(fps)}/1`;
  const ntsc = (fps * 1001) / 1000;
  if (Math.abs(ntsc - Math.round(ntsc)) < 0.005) return `${Math.round(ntsc) * 1000}/1001`;
  return `${Math.round(fps * 1000)}/1000`;
}

const num = (x: unknown) => (x === undefined || x === null || x === 'N/A' || x === '' ? NaN : Number(x));
const orNull = (x: number) => (Number.isFinite(x) ? x : null);

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** `a:b` or `a/b` as a reduced fraction; 1:1 when absent, malformed, or 0:1 (ffmpeg's "unknown"). */
export function parseSar(v: unknown): Fraction {
  const m = /^(\d+)[:/](\d+)$/.exec(String(v ?? '').trim());
  const n = m ? Number(m[1]) : 0;
  const d = m ? Number(m[2]) : 0;
  if (!(n > 0 && d > 0)) return { num: 1, den: 1 };
  const g = gcd(n, d);
  return { num: n / g, den: d / g };
}

/** Any angle in degrees to the nearest quarter turn in [0, 360). */
export function quarterTurn(deg: number): GeometryFacts['rotation'] {
  return ((((Math.round(deg / 90) * 90) % 360) + 360) % 360) as GeometryFacts['rotation'];
}

/** Geometry from a stored size, SAR and clockwise rotation. */
export function geometryOf(codedWidth: number, codedHeight: number, sar: Fraction, rotation: GeometryFacts['rotation']): GeometryFacts {
  const quarter = rotation === 90 || rotation === 270;
  const w = Math.max(1, Math.round((codedWidth * sar.num) / sar.den));
  const h = codedHeight;
  let dn = codedWidth * sar.num;
  let dd = codedHeight * sar.den;
  if (quarter) [dn, dd] = [dd, dn];
  const g = gcd(dn, dd) || 1;
  return {
    codedWidth,
    codedHeight,
    sar,
    rotation,
    displayWidth: quarter ? h : w,
    displayHeight: quarter ? w : h,
    dar: { num: dn / g, den: dd / g },
    displayAspect: dd > 0 ? dn / dd : 0,
  };
}

const colourValue = (v: unknown): string | null => {
  const s = v === undefined || v === null ? '' : String(v);
  return s === '' || s === 'unknown' || s === 'N/A' || s === 'reserved' || s === 'unspecified' ? null : s;
};

function colourOf(matrix: unknown, primaries: unknown, transfer: unknown, range: unknown): ColourFacts {
  const r = colourValue(range);
  const c: Omit<ColourFacts, 'tagged'> = {
    matrix: colourValue(matrix),
    primaries: colourValue(primaries),
    transfer: colourValue(transfer),
    range: r === 'tv' || r === 'pc' ? r : null,
  };
  return { ...c, tagged: c.matrix !== null || c.primaries !== null || c.transfer !== null || c.range !== null };
}

/** Matroska's `DURATION` tag (`00:00:02.000000000`) in seconds. */
function hmsSeconds(v: unknown): number {
  const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(String(v ?? '').trim());
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
}

/** Why a tool run did not give a usable answer, or null when it exited 0. */
export function runFailure(tool: string, res: ToolResult): string | null {
  if (res.killedBy) return `${tool} was killed (${res.killedBy === 'stall' ? 'no progress' : 'timeout'})`;
  if (res.signal) return `${tool} was killed by ${res.signal}`;
  if (res.code !== 0) return stderrTail(res.stderr, 1) || `${tool} exited with ${res.code}`;
  return null;
}

/** A crash (a signal, or no exit code) says nothing about the file: worth another route. */
export const crashed = (res: ToolResult) => res.signal !== null || (res.code === null && !res.killedBy);

// ---------------------------------------------------------------------------------------------
// The container's own structure: fragments and indexes, read from box / element headers only.

interface Structure {
  fragmented: boolean;
  indexed: boolean | null;
}

async function readStructure(path: string, format: string): Promise<Structure> {
  const kind = /\bmp4\b|\bmov\b/.test(format)
    ? 'mp4'
    : /matroska|webm/.test(format)
      ? 'mkv'
      : /\bavi\b/.test(format)
        ? 'avi'
        : /mpegts/.test(format)
          ? 'ts'
          : '';
  if (kind === 'ts') return { fragmented: false, indexed: false };
  if (kind === '') return { fragmented: false, indexed: null };
  let fh: Awaited<ReturnType<typeof open>> | null = null;
  try {
    fh = await open(path, 'r');
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(16);
    const at = async (pos: number, len: number) => {
      const { bytesRead } = await fh!.read(buf, 0, len, pos);
      return bytesRead;
    };
    if (kind === 'mp4') {
      const seen = new Set<string>();
      let pos = 0;
      // Top-level boxes only, up to the first fragment: a segment index (sidx) comes before it.
      for (let i = 0; i < 1_000_000 && pos + 8 <= size && !seen.has('moof'); i++) {
        if ((await at(pos, 16)) < 8) break;
        let box = buf.readUInt32BE(0);
        seen.add(buf.toString('latin1', 4, 8));
        if (box === 1) box = Number(buf.readBigUInt64BE(8));
        else if (box === 0) box = size - pos;
        if (box < 8) break;
        pos += box;
      }
      if (!seen.has('moof')) return { fragmented: false, indexed: seen.has('moov') };
      // The random-access index of a fragmented file (mfra) ends with a 16-byte mfro box.
      const tail = size >= 16 && (await at(size - 16, 16)) === 16 && buf.toString('latin1', 4, 8) === 'mfro';
      return { fragmented: true, indexed: seen.has('sidx') || tail };
    }
    if (kind === 'avi') {
      // RIFF 'AVI ' then chunks: LIST hdrl, LIST movi, idx1.
      let pos = 12;
      while (pos + 8 <= size) {
        if ((await at(pos, 8)) < 8) break;
        if (buf.toString('latin1', 0, 4) === 'idx1') return { fragmented: false, indexed: true };
        pos += 8 + buf.readUInt32LE(4) + (buf.readUInt32LE(4) & 1);
      }
      return { fragmented: false, indexed: false };
    }
    // Matroska: EBML header, then the Segment's children; Cues is the index.
    const vint = (p: number, keepMarker: boolean): { value: number; len: number; unknown: boolean } | null => {
      const first = buf[p]!;
      let len = 1;
      while (len <= 8 && !(first & (0x80 >> (len - 1)))) len++;
      if (len > 8) return null;
      let value = keepMarker ? first : first & (0xff >> len);
      let allOnes = (first & (0xff >> len)) === 0xff >> len;
      for (let k = 1; k < len; k++) {
        value = value * 256 + buf[p + k]!;
        if (buf[p + k] !== 0xff) allOnes = false;
      }
      return { value, len, unknown: !keepMarker && allOnes };
    };
    const element = async (pos: number) => {
      if ((await at(pos, 12)) < 2) return null;
      const id = vint(0, true);
      if (!id || id.len > 4) return null;
      const sz = vint(id.len, false);
      if (!sz) return null;
      return { id: id.value, header: id.len + sz.len, size: sz.value, unknown: sz.unknown };
    };
    let pos = 0;
    const head = await element(pos);
    if (head?.id !== 0x1a45dfa3) return { fragmented: false, indexed: null };
    pos += head.header + head.size;
    const seg = await element(pos);
    if (seg?.id !== 0x18538067) return { fragmented: false, indexed: null };
    pos += seg.header;
    for (let i = 0; i < 1_000_000 && pos < size; i++) {
      const el = await element(pos);
      if (!el) break;
      if (el.id === 0x1c53bb6b) return { fragmented: false, indexed: true };
      // The SeekHead names the top-level elements and where they are: a Cues entry is the index, without walking every cluster to it.
      if (el.id === 0x114d9b74 && el.size <= 4096) {
        const head = Buffer.alloc(el.size);
        await fh.read(head, 0, el.size, pos + el.header);
        if (head.includes(Buffer.from([0x53, 0xab, 0x84, 0x1c, 0x53, 0xbb, 0x6b]))) return { fragmented: false, indexed: true };
      }
      // A live stream's clusters have no size: nothing after them can be found without parsing them.
      if (el.unknown) break;
      pos += el.header + el.size;
    }
    return { fragmented: false, indexed: false };
  } catch {
    return { fragmented: false, indexed: null };
  } finally {
    await fh?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The ffprobe route.

type Json = Record<string, unknown>;

const STREAM_ENTRIES =
  'stream=index,codec_type,codec_name,width,height,pix_fmt,sample_aspect_ratio,r_frame_rate,avg_frame_rate,nb_frames,bit_rate,duration,start_time,' +
  'color_range,color_space,color_transfer,color_primaries,channels,channel_layout,sample_rate:stream_tags=rotate,DURATION:stream_side_data=rotation:stream_disposition=attached_pic:' +
  'format=format_name,duration,start_time,bit_rate';

function rotationOf(v: Json): GeometryFacts['rotation'] {
  const side = (v.side_data_list as { rotation?: number | string }[] | undefined)?.find((d) => d.rotation !== undefined)?.rotation;
  if (side !== undefined) return quarterTurn(-Number(side) || 0);
  const tag = (v.tags as { rotate?: string } | undefined)?.rotate;
  return quarterTurn(Number(tag ?? 0) || 0);
}

function streamDuration(s: Json): number {
  const d = num(s.duration);
  return Number.isFinite(d) ? d : hmsSeconds((s.tags as Json | undefined)?.DURATION);
}

/** Facts (timeline aside) from ffprobe's JSON; throws the plain reason when they are not enough. */
function factsFromProbe(path: string, json: { streams?: Json[]; format?: Json }, structure: Structure): Omit<MediaFacts, 'timeline'> {
  const streams = json.streams ?? [];
  // Cover art is a video stream too (`attached_pic`): the video is the first stream that is not one.
  const v = streams.find((s) => s.codec_type === 'video' && (s.disposition as Json | undefined)?.attached_pic !== 1);
  if (!v) throw new ClipstreamError('ERR_PROBE', 'no video stream');
  const fps = parseRate(v.avg_frame_rate) || parseRate(v.r_frame_rate);
  const vDur = streamDuration(v);
  const fDur = num(json.format?.duration);
  const durationS = Number.isFinite(num(v.duration)) ? num(v.duration) : fDur;
  if (!(fps > 0)) throw new ClipstreamError('ERR_PROBE', 'no frame rate');
  // No duration in the headers (Matroska/WebM written live, e.g. by a browser's MediaRecorder): probeMedia takes it from the last packet.
  const nb = Number(v.nb_frames);
  const fromIndex = Number.isInteger(nb) && nb > 0 && !structure.fragmented;
  const fStart = num(json.format?.start_time);
  const vStart = Number.isFinite(num(v.start_time)) ? num(v.start_time) : Number.isFinite(fStart) ? fStart : 0;
  const rate = String(v.avg_frame_rate && v.avg_frame_rate !== '0/0' ? v.avg_frame_rate : v.r_frame_rate);
  return {
    path,
    method: 'ffprobe',
    container: {
      format: String(json.format?.format_name ?? ''),
      ...structure,
      startS: Number.isFinite(fStart) ? fStart : vStart,
      durations: { format: orNull(fDur), videoStream: orNull(vDur), lastPacket: null },
      durationsDisagree: false,
      bitRate: Number(json.format?.bit_rate) || 0,
    },
    video: {
      index: Number(v.index),
      codec: String(v.codec_name),
      pixFmt: String(v.pix_fmt),
      fps,
      rate,
      startS: vStart,
      durationS,
      frameCount: fromIndex ? nb : durationS > 0 ? Math.round(durationS * fps) : 0,
      frameCountSource: fromIndex ? 'index' : 'estimate',
      bitRate: Number(v.bit_rate) || Number(json.format?.bit_rate) || 0,
    },
    geometry: geometryOf(Number(v.width), Number(v.height), parseSar(v.sample_aspect_ratio), rotationOf(v)),
    colour: colourOf(v.color_space, v.color_primaries, v.color_transfer, v.color_range),
    audio: streams
      .filter((s) => s.codec_type === 'audio')
      .map((a) => ({
        index: Number(a.index),
        codec: String(a.codec_name),
        channels: Number(a.channels) || 0,
        layout: a.channel_layout ? String(a.channel_layout) : null,
        sampleRate: Number(a.sample_rate) || 0,
        startS: orNull(num(a.start_time)),
        durationS: orNull(streamDuration(a)),
      })),
  };
}

/** The end of the video's last packet, from the file's last GOP (`-read_intervals` seeks near the end). */
async function lastPacketEnd(path: string, ffprobe: string, signal: AbortSignal | undefined): Promise<number | null> {
  const res = await runTool(
    ffprobe,
    ['-v', 'error', '-read_intervals', '99999999', '-select_streams', 'V:0', '-show_entries', 'packet=pts_time,dts_time,duration_time', '-of', 'csv=p=0', path],
    { signal, timeoutMs: 60_000, where: { file: path } },
  );
  if (runFailure('ffprobe', res)) return null;
  let end = NaN;
  for (const line of res.stdout.toString('utf8').split('\n')) {
    const [pts, dts, dur] = line.split(',');
    const t = Number.isFinite(num(pts)) ? num(pts) : num(dts);
    const e = t + (Number.isFinite(num(dur)) ? num(dur) : 0);
    if (Number.isFinite(e) && !(e <= end)) end = e;
  }
  return orNull(end);
}

interface Row {
  t: number;
  key: boolean;
  /** Decode-order timestamp (dts, else pts): resets are found on it. */
  order: number;
  /** `order` is a dts or a time in output order, which never goes back in one run; a pts alone may, by B-frame reordering. */
  strict: boolean;
}

/** The timeline of rows listed in file (decode) order. */
function timelineOf(rows: readonly Row[], fps: number, method: TimelineFacts['method']): TimelineFacts {
  // Runs: a timestamp that goes backwards beyond any reordering (B-frames reorder pts by a few
  // frames, never dts) starts a new run.
  const runs: Row[][] = [];
  let run: Row[] = [];
  // Matroska gives dts for some packets only: strict times are compared with strict ones alone.
  let maxStrict = -Infinity;
  let maxAny = -Infinity;
  const reorder = 16 / (fps > 0 ? fps : 25);
  for (const r of rows) {
    if (run.length > 0 && ((r.strict && r.order < maxStrict - 1e-7) || r.order < maxAny - reorder)) {
      runs.push(run);
      run = [];
      maxStrict = -Infinity;
      maxAny = -Infinity;
    }
    run.push(r);
    if (r.strict && r.order > maxStrict) maxStrict = r.order;
    if (r.order > maxAny) maxAny = r.order;
  }
  if (run.length > 0) runs.push(run);
  const pts = new Float64Array(rows.length);
  const keyframes: number[] = [];
  const resets: TimestampReset[] = [];
  const diffs: number[] = [];
  let i = 0;
  for (const part of runs) {
    const sorted = [...part].sort((x, y) => x.t - y.t);
    if (i > 0) resets.push({ index: i, fromS: pts[i - 1]!, toS: sorted[0]!.t });
    sorted.forEach((r, k) => {
      pts[i + k] = r.t;
      if (r.key) keyframes.push(i + k);
      if (k > 0) diffs.push(r.t - sorted[k - 1]!.t);
    });
    i += sorted.length;
  }
  if (keyframes[0] !== 0) keyframes.unshift(0);
  const median = diffs.length > 0 ? [...diffs].sort((x, y) => x - y)[diffs.length >> 1]! : 1 / (fps > 0 ? fps : 25);
  const interval = median > 0 ? median : 1 / (fps > 0 ? fps : 25);
  const gaps: TimelineGap[] = [];
  let vfr = false;
  let durationS = 0;
  let start = 0;
  for (const part of runs) {
    const end = start + part.length;
    for (let k = start + 1; k < end; k++) {
      const d = pts[k]! - pts[k - 1]!;
      if (d > GAP_FACTOR * interval) gaps.push({ index: k, fromS: pts[k - 1]!, toS: pts[k]! });
      else if (Math.abs(d - interval) > Math.max(0.002, 0.1 * interval)) vfr = true;
    }
    durationS += pts[end - 1]! - pts[start]! + interval;
    start = end;
  }
  return { pts, keyframes, resets, gaps, vfr, frameIntervalS: interval, durationS, method };
}

async function packetRows(path: string, ffprobe: string, signal: AbortSignal | undefined): Promise<Row[]> {
  // Packets in file order; -read_intervals is not used so that nothing is skipped.
  const res = await runTool(ffprobe, ['-v', 'error', '-select_streams', 'V:0', '-show_entries', 'packet=pts_time,dts_time,flags', '-of', 'csv=p=0', path], {
    signal,
    timeoutMs: 600_000,
    where: { file: path },
  });
  const why = runFailure('ffprobe', res);
  if (why) throw new ClipstreamError('ERR_PROBE', `${path}: cannot list the packets: ${why}`, { where: { file: path } });
  const rows: Row[] = [];
  for (const line of res.stdout.toString('utf8').split('\n')) {
    if (!line) continue;
    const [pts, dts, flags] = line.split(',');
    const p = num(pts);
    const d = num(dts);
    const t = Number.isFinite(p) ? p : d;
    if (!Number.isFinite(t)) continue;
    // 'D' marks packets the decoder discards (e.g. before an edit list's start): not frames.
    if (flags?.includes('D')) continue;
    rows.push({ t, key: flags?.startsWith('K') ?? false, order: Number.isFinite(d) ? d : t, strict: Number.isFinite(d) });
  }
  if (rows.length === 0) throw new ClipstreamError('ERR_PROBE', `${path}: the video stream has no packets`, { where: { file: path } });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// The ffmpeg route: `ffmpeg -i` describes the input on stderr; a decode pass lists the frames.

/** Splits on commas outside parentheses and brackets. */
function topLevelFields(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** ffmpeg prints one name when matrix, primaries and transfer have the same enum value: their three names. */
const SAME_VALUE: Record<string, [string, string, string]> = {
  bt709: ['bt709', 'bt709', 'bt709'],
  fcc: ['fcc', 'bt470m', 'gamma22'],
  bt470bg: ['bt470bg', 'bt470bg', 'gamma28'],
  smpte170m: ['smpte170m', 'smpte170m', 'smpte170m'],
  smpte240m: ['smpte240m', 'smpte240m', 'smpte240m'],
  bt2020nc: ['bt2020nc', 'bt2020', 'log100'],
};

const LAYOUT_CHANNELS: Record<string, number> = {
  mono: 1,
  stereo: 2,
  downmix: 2,
  '2.1': 3,
  '3.0': 3,
  '3.0(back)': 3,
  '4.0': 4,
  quad: 4,
  'quad(side)': 4,
  '3.1': 4,
  '5.0': 5,
  '5.0(side)': 5,
  '4.1': 5,
  '5.1': 6,
  '5.1(side)': 6,
  '6.0': 6,
  '6.0(front)': 6,
  hexagonal: 6,
  '6.1': 7,
  '6.1(back)': 7,
  '6.1(front)': 7,
  '7.0': 7,
  '7.0(front)': 7,
  '7.1': 8,
  '7.1(wide)': 8,
  '7.1(wide-side)': 8,
  octagonal: 8,
};

/** The facts `ffmpeg -i` prints (timeline aside). Frame rate and duration may be missing when `rateOptional`. */
export function factsFromFfmpegText(
  stderr: string,
  path: string,
  options: { rateOptional?: boolean } = {},
): Omit<MediaFacts, 'timeline' | 'container'> & {
  container: Omit<ContainerFacts, 'fragmented' | 'indexed'>;
} {
  const fail = (why: string) => new ClipstreamError('ERR_PROBE', `cannot probe ${path} with ffmpeg: ${why}`, { where: { file: path } });
  const dur = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  // One block per stream: its line plus the indented metadata and side data under it.
  const blocks = stderr.split(/\n(?=\s*Stream #)/).filter((b) => /^\s*Stream #/.test(b));
  const videoBlock = blocks.find((b) => /^\s*Stream #\d+:\d+[^:]*: Video: /.test(b) && !/\(attached pic\)/.test(b.split('\n')[0]!));
  if (!videoBlock) throw fail(`no video stream (${stderrTail(stderr, 1)})`);
  const line = videoBlock.split('\n')[0]!;
  const streamIndex = (l: string) => Number(/Stream #\d+:(\d+)/.exec(l)?.[1] ?? 0);
  const fields = topLevelFields(line.slice(line.indexOf(': Video: ') + 9));
  const codec = /^(\w+)/.exec(fields[0] ?? '')?.[1] ?? '';
  const pix = /^(\w+)(?:\((.*)\))?$/.exec(fields[1] ?? '');
  // Colour: "yuv420p(tv, bt2020nc/bt2020/smpte2084, progressive)" or "yuv420p(pc, bt709)".
  let range: string | null = null;
  let cs: [string | null, string | null, string | null] = [null, null, null];
  for (const tok of (pix?.[2] ?? '').split(',').map((t) => t.trim())) {
    if (tok === 'tv' || tok === 'pc') range = tok;
    else if (tok.includes('/')) cs = tok.split('/') as [string, string, string];
    else if (SAME_VALUE[tok]) cs = SAME_VALUE[tok]!;
  }
  const sizeField = fields.find((f) => /^\d+x\d+/.test(f)) ?? '';
  const size = /^(\d+)x(\d+)/.exec(sizeField);
  const sar = parseSar(/\[SAR (\d+:\d+)/.exec(sizeField)?.[1]);
  const fps = Number(/([\d.]+) fps/.exec(line)?.[1] ?? /([\d.]+k?) tbr/.exec(line)?.[1]);
  const durationS = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : NaN;
  if (!(fps > 0) && !options.rateOptional) throw fail('no frame rate');
  if (!(durationS > 0) && !options.rateOptional) throw fail('no duration');
  const kbps = (s: string | undefined) => (s ? Number(s) * 1000 : 0);
  const matrix = /displaymatrix: rotation of (-?[\d.]+) degrees/.exec(videoBlock);
  const tag = /^\s*rotate\s*:\s*(-?\d+)/m.exec(videoBlock);
  const rotation = matrix ? quarterTurn(-Number(matrix[1])) : quarterTurn(Number(tag?.[1] ?? 0) || 0);
  const start = Number(/Duration: [^,]*, start: (-?[\d.]+)/.exec(stderr)?.[1]);
  const format = /Input #\d+, ([^ ]+), from /.exec(stderr)?.[1]?.replace(/,$/, '') ?? '';
  const audio = blocks
    .filter((b) => /^\s*Stream #\d+:\d+[^:]*: Audio: /.test(b))
    .map((b) => {
      const l = b.split('\n')[0]!;
      const f = topLevelFields(l.slice(l.indexOf(': Audio: ') + 9));
      const layout = f[2] ?? '';
      const n = /^(\d+) channels/.exec(layout);
      return {
        index: streamIndex(l),
        codec: /^(\w+)/.exec(f[0] ?? '')?.[1] ?? '',
        channels: n ? Number(n[1]) : (LAYOUT_CHANNELS[layout] ?? 0),
        layout: layout && !n ? layout : null,
        sampleRate: Number(/^(\d+) Hz/.exec(f[1] ?? '')?.[1] ?? 0),
        startS: null,
        durationS: null,
      };
    });
  const fpsOk = Number.isFinite(fps) && fps > 0 ? fps : 0;
  return {
    path,
    method: 'ffmpeg',
    container: {
      format,
      // NaN when ffmpeg prints no start: probeMedia puts the first frame's time there.
      startS: start,
      durations: { format: orNull(durationS), videoStream: null, lastPacket: null },
      durationsDisagree: false,
      bitRate: kbps(/bitrate: (\d+) kb\/s/.exec(stderr)?.[1]),
    },
    video: {
      index: streamIndex(line),
      codec,
      pixFmt: pix?.[1] ?? '',
      fps: fpsOk,
      rate: fpsOk ? rateFraction(fpsOk) : '0/0',
      startS: start,
      durationS,
      frameCount: fpsOk > 0 && durationS > 0 ? Math.round(durationS * fpsOk) : 0,
      frameCountSource: 'estimate',
      bitRate: kbps(/(\d+) kb\/s/.exec(line)?.[1]) || kbps(/bitrate: (\d+) kb\/s/.exec(stderr)?.[1]),
    },
    geometry: geometryOf(Number(size?.[1] ?? 0), Number(size?.[2] ?? 0), sar, rotation),
    colour: colourOf(cs[0], cs[1], cs[2], range),
    audio,
  };
}

/**
 * One ffmpeg run that both describes the input (its stderr header, as `ffmpeg -i`) and decodes
 * the first video stream through `showinfo`, which prints each frame's timestamp and key flag
 * in output order before any muxer could "fix" timestamps that go backwards (framecrc and every
 * muxer raise a reset's timestamps to the last one).
 */
async function decodeRoute(path: string, ffmpeg: string, signal: AbortSignal | undefined, timeline: boolean): Promise<{ text: string; rows: Row[] }> {
  const rows: Row[] = [];
  let tb = 0;
  const args = timeline
    ? [
        '-hide_banner',
        '-nostdin',
        '-nostats',
        '-copyts',
        '-noautorotate',
        '-i',
        path,
        '-map',
        '0:V:0',
        '-an',
        '-sn',
        '-dn',
        '-vf',
        'showinfo',
        '-vsync',
        '0',
        '-f',
        'null',
        '-',
      ]
    : ['-hide_banner', '-nostdin', '-i', path];
  const res = await runTool(ffmpeg, args, {
    signal,
    ...(timeline ? { stallTimeoutMs: 120_000 } : { timeoutMs: 60_000 }),
    where: { file: path },
    onStderrLine: (l) => {
      if (!l.includes('Parsed_showinfo')) return false;
      const cfg = /config in time_base: (\d+)\/(\d+)/.exec(l);
      if (cfg) tb = Number(cfg[1]) / Number(cfg[2]);
      const m = / pts:\s*(-?\d+)\s+pts_time:(\S+).*? iskey:(\d)/.exec(l);
      if (m) {
        const t = tb > 0 ? Number(m[1]) * tb : Number(m[2]);
        if (Number.isFinite(t)) rows.push({ t, key: m[3] === '1', order: t, strict: true });
      }
      return true;
    },
  });
  if (res.signal || res.killedBy || (timeline && res.code !== 0))
    throw new ClipstreamError('ERR_DECODE', `${path}: ${runFailure('ffmpeg', res)}`, { where: { file: path } });
  if (timeline && rows.length === 0) throw new ClipstreamError('ERR_DECODE', `${path}: ffmpeg decoded no video frame`, { where: { file: path } });
  return { text: res.stderr, rows };
}

/**
 * Start and length of one audio stream from a decode pass (`ashowinfo`: each frame's time and
 * sample count), for the ffmpeg route, where `ffmpeg -i` tells neither. The length is the sum
 * of the samples, so a timestamp reset does not shorten it.
 */
async function audioSpan(
  path: string,
  ffmpeg: string,
  index: number,
  signal: AbortSignal | undefined,
): Promise<{ startS: number | null; durationS: number | null }> {
  let start = NaN;
  let samples = 0;
  let rate = 0;
  const res = await runTool(
    ffmpeg,
    ['-hide_banner', '-nostdin', '-nostats', '-copyts', '-i', path, '-map', `0:${index}`, '-af', 'ashowinfo', '-f', 'null', '-'],
    {
      signal,
      stallTimeoutMs: 120_000,
      where: { file: path },
      onStderrLine: (l) => {
        if (!l.includes('Parsed_ashowinfo')) return false;
        const m = / pts:\s*(-?\d+)\s+pts_time:(\S+).*? rate:(\d+) nb_samples:(\d+)/.exec(l);
        if (m) {
          // fftools feeds audio filters at a time base of 1/sample rate: the integer pts is exact, pts_time has 6 digits.
          if (Number.isNaN(start)) start = Number(m[1]) / Number(m[3]);
          rate = Number(m[3]);
          samples += Number(m[4]);
        }
        return true;
      },
    },
  );
  if (runFailure('ffmpeg', res) || !(rate > 0)) return { startS: null, durationS: null };
  return { startS: orNull(start), durationS: samples / rate };
}

// ---------------------------------------------------------------------------------------------

function finish(f: Omit<MediaFacts, 'timeline'>, timeline: TimelineFacts | null, lastEnd: number | null): MediaFacts {
  const container = f.container;
  const video = { ...f.video };
  // The timeline's own end is its last run's last frame plus one interval.
  const end = timeline ? timeline.pts[timeline.pts.length - 1]! + timeline.frameIntervalS : lastEnd;
  const lastPacket = end !== null ? end - video.startS : null;
  const durations = { ...container.durations, lastPacket: lastPacket !== null ? Math.round(lastPacket * 1e6) / 1e6 : null };
  if (!(video.durationS > 0) && durations.lastPacket !== null && durations.lastPacket > 0) {
    video.durationS = durations.lastPacket;
    if (video.frameCountSource === 'estimate') video.frameCount = Math.round(video.durationS * video.fps);
  }
  const tol = Math.max(0.05, 2 / (video.fps > 0 ? video.fps : 25));
  const video2 = [durations.videoStream, durations.lastPacket].filter((d): d is number => d !== null);
  const disagree = video2.length === 2 && Math.abs(video2[0]! - video2[1]!) > tol;
  return {
    ...f,
    container: { ...container, durations, durationsDisagree: disagree || (timeline !== null && timeline.resets.length > 0) },
    video: timeline ? { ...video, frameCount: timeline.pts.length, frameCountSource: 'timeline' } : video,
    timeline,
  };
}

/**
 * The one media probe. The cheap part (one ffprobe run on the stream headers, a read of the
 * container's box/element headers, and unless `lastPacket: false` a read of the last GOP) gives
 * container, geometry, colour and audio facts; `timeline: true` adds every frame's timestamp
 * from the packet listing (the whole file is demuxed, nothing decoded). Where ffprobe dies by a
 * signal or cannot start (the bundled 2018 build segfaults on MPEG-TS), the same facts come from
 * `ffmpeg -i` and, for the timeline, a decode pass; with `timeline: true` any ffprobe failure
 * takes that route. Throws a ClipstreamError (ERR_DECODE) naming the file otherwise.
 *
 * @example const f = await probeMedia('in.mkv', { timeline: true }); f.geometry.displayWidth; f.timeline!.resets.length
 */
export async function probeMedia(path: string, options: ProbeMediaOptions = {}): Promise<MediaFacts> {
  const ffprobe = options.ffprobe ?? ffprobePath();
  const ffmpeg = options.ffmpeg ?? ffmpegPath();
  const { signal } = options;
  const fail = (why: string) => new ClipstreamError('ERR_PROBE', `cannot probe ${path}: ${why}`, { where: { file: path } });
  let res: ToolResult | null = null;
  let why: string;
  try {
    res = await runTool(ffprobe, ['-v', 'error', '-show_entries', STREAM_ENTRIES, '-of', 'json', path], { signal, timeoutMs: 60_000, where: { file: path } });
    why = runFailure('ffprobe', res) ?? '';
  } catch (err) {
    if (signal?.aborted) throw err;
    why = (err as Error).message;
  }
  let probed: Omit<MediaFacts, 'timeline'> | null = null;
  if (res !== null && !why) {
    try {
      const json = JSON.parse(res.stdout.toString('utf8')) as { streams?: Json[]; format?: Json };
      const structure = await readStructure(path, String(json.format?.format_name ?? ''));
      probed = factsFromProbe(path, json, structure);
    } catch (err) {
      why = err instanceof SyntaxError ? 'ffprobe printed no JSON' : (err as Error).message;
    }
  }
  if (probed) {
    const noDuration = !(probed.video.durationS > 0);
    if (!options.timeline) {
      const end = noDuration || options.lastPacket !== false ? await lastPacketEnd(path, ffprobe, signal) : null;
      const done = finish(probed, null, end);
      if (!(done.video.durationS > 0)) throw fail('no duration');
      return done;
    }
    try {
      const rows = await packetRows(path, ffprobe, signal);
      return finish(probed, timelineOf(rows, probed.video.fps, 'packets'), null);
    } catch (err) {
      if (signal?.aborted) throw err;
      why = (err as Error).message;
    }
  }
  // The ffmpeg route: after a crash always; after any other ffprobe failure only for a timeline
  // (a decode pass is the truth there; for headers, ffprobe's "invalid data" is the answer).
  if (!options.timeline && res !== null && !crashed(res)) throw fail(why);
  try {
    const { text, rows } = await decodeRoute(path, ffmpeg, signal, options.timeline === true);
    const described = factsFromFfmpegText(text, path, { rateOptional: options.timeline === true });
    const structure = await readStructure(path, described.container.format);
    const base: Omit<MediaFacts, 'timeline'> = probed ?? { ...described, container: { ...described.container, ...structure } };
    // `ffmpeg -i` gives the container's start only: the first decoded frame gives the video's.
    if (!probed) base.video = { ...base.video, startS: rows.length > 0 ? Math.min(...rows.slice(0, 64).map((r) => r.t)) : base.container.startS };
    if (!Number.isFinite(base.video.startS)) base.video = { ...base.video, startS: 0 };
    if (!Number.isFinite(base.container.startS)) base.container = { ...base.container, startS: base.video.startS };
    if (!options.timeline) return finish(base, null, null);
    if (!probed && base.audio.length > 0)
      base.audio = [{ ...base.audio[0]!, ...(await audioSpan(path, ffmpeg, base.audio[0]!.index, signal)) }, ...base.audio.slice(1)];
    const tl = timelineOf(rows, base.video.fps, 'decode');
    if (!(base.video.fps > 0)) {
      // A VFR MPEG-TS has no rate in `ffmpeg -i`: it comes from the frames then.
      const fps = 1 / tl.frameIntervalS;
      const durationS = base.video.durationS > 0 ? base.video.durationS : tl.durationS;
      base.video = { ...base.video, fps, rate: rateFraction(fps), durationS };
    }
    return finish(base, tl, null);
  } catch (err) {
    if (signal?.aborted) throw err;
    const route = options.timeline ? 'the decode pass' : 'the fallback through ffmpeg';
    throw fail(`${why}; ${route} failed too: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// What encoders need to keep what the source means.

/**
 * A range worth stating: full range always; limited range only beside another tag, since alone
 * it is what every decoder assumes (VP9/WebM sources tag it on their own) and stating it would
 * change the bytes of outputs that mean the same as before.
 */
const rangeToTag = (c: ColourFacts) => (c.range === 'pc' || (c.range === 'tv' && (c.matrix || c.primaries || c.transfer)) ? c.range : null);

/**
 * ffmpeg output options that tag an encode with the source's colour description, only for
 * the tags the source has: an untagged source (or one tagged limited range alone) gives [], so
 * its outputs stay as before. They tag; they do not convert: frames must be in the source's
 * matrix and range (for RGB frames, see rgbToYuvFilter).
 *
 * @example ffmpeg -i src ... ...outputTagArgs(facts) out.mp4 // ['-color_primaries','bt709','-color_trc','bt709','-colorspace','bt709','-color_range','tv']
 */
export function outputTagArgs(facts: Pick<MediaFacts, 'colour'>): string[] {
  const c = facts.colour;
  const args: string[] = [];
  if (c.primaries) args.push('-color_primaries', c.primaries);
  if (c.transfer) args.push('-color_trc', c.transfer);
  if (c.matrix) args.push('-colorspace', c.matrix);
  const range = rangeToTag(c);
  if (range) args.push('-color_range', range);
  return args;
}

/**
 * The SAR of frames as an ffmpeg filter sees them: the stored SAR, inverted after a quarter-turn
 * autorotation (ffmpeg's transpose swaps it). 1:1 for square pixels.
 */
export function frameSar(facts: Pick<MediaFacts, 'geometry'>, options: { autorotate?: boolean } = {}): Fraction {
  const g = facts.geometry;
  const quarter = (options.autorotate ?? true) && (g.rotation === 90 || g.rotation === 270);
  return quarter ? { num: g.sar.den, den: g.sar.num } : g.sar;
}

/**
 * A `setsar` filter that restores the source's SAR at the end of a filter graph whose frames
 * keep the source's pixel grid (a trim, a matte, raw frames re-encoded); null for square pixels,
 * so graphs of square-pixel sources stay as before. `autorotate` (default true): the frames
 * were autorotated by ffmpeg (not with `-noautorotate`).
 *
 * @example const vf = [...filters, setsarFilter(facts)].filter(Boolean).join(',') // 'trim=...,setsar=16/15'
 */
export function setsarFilter(facts: Pick<MediaFacts, 'geometry'>, options: { autorotate?: boolean } = {}): string | null {
  const s = frameSar(facts, options);
  return s.num === s.den ? null : `setsar=${s.num}/${s.den}`;
}

/**
 * A filter that resamples frames to square pixels at the display size (after autorotation),
 * for work in display geometry (faces: detection, boxes and crops); null for square pixels.
 *
 * @example squarePixelsFilter(facts) // 'scale=768:576,setsar=1' for 720×576 at SAR 16:15
 */
export function squarePixelsFilter(facts: Pick<MediaFacts, 'geometry'>, options: { autorotate?: boolean } = {}): string | null {
  const g = facts.geometry;
  if (g.sar.num === g.sar.den) return null;
  const rotated = (options.autorotate ?? true) && (g.rotation === 90 || g.rotation === 270);
  const w = rotated ? g.displayWidth : Math.round((g.codedWidth * g.sar.num) / g.sar.den);
  const h = rotated ? g.displayHeight : g.codedHeight;
  return `scale=${w}:${h},setsar=1`;
}

/** swscale's names for the matrices it can convert to (the scale filter's `out_color_matrix`). */
const SWS_MATRIX: Record<string, string> = {
  bt709: 'bt709',
  bt470bg: 'bt470',
  smpte170m: 'smpte170m',
  fcc: 'fcc',
  smpte240m: 'smpte240m',
  bt2020nc: 'bt2020',
  bt2020c: 'bt2020',
};

/**
 * For encoders fed RGB frames (segments, faces clips): the `scale` filter that converts RGB to
 * YUV by the source's own matrix and range, to go with outputTagArgs. Tags without it lie: ffmpeg
 * converts RGB by BT.601 whatever the output is tagged, so a BT.709-tagged output then decodes up
 * to ~36 levels off. Null for a source with neither matrix nor range tagged (output as before).
 *
 * @example ffmpeg -f rawvideo -pix_fmt rgb24 ... -i - -vf rgbToYuvFilter(facts) ...outputTagArgs(facts) out.mp4 // 'scale=out_color_matrix=bt709:out_range=tv'
 */
export function rgbToYuvFilter(facts: Pick<MediaFacts, 'colour'>): string | null {
  const m = facts.colour.matrix ? SWS_MATRIX[facts.colour.matrix] : undefined;
  const range = rangeToTag(facts.colour);
  const parts = [...(m ? [`out_color_matrix=${m}`] : []), ...(range ? [`out_range=${range}`] : [])];
  return parts.length > 0 ? `scale=${parts.join(':')}` : null;
}
