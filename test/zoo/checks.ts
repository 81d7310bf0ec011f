/**
 * Generic checks of the generated zoo, shared by test/zoo/zoo-generated.test.ts and scripts/zoo.ts:
 * a file's recipe truth against the independent facts (scripts/zoo_truth.py: PyAV and
 * ffprobe), and a job's outputs against the truth. Each returns plain-language mismatches
 * (empty when all holds), so a failing crossing reads as what is wrong, with the numbers.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GenTruth } from './generated.js';

export interface Facts {
  path: string;
  ok: boolean;
  pyavError?: string;
  ffprobeError?: string;
  pyav?: {
    format: string;
    video: {
      codec: string;
      frames: number;
      times: Array<number | null>;
      codedWidth: number;
      codedHeight: number;
      sar: [number, number] | null;
      pixFmt: string;
      bits: number;
      firstPlanes: [number, number, number] | null;
      flashes: number[];
      rotation: number;
      decodeError?: string;
    } | null;
    audio: { codec: string; channels: number; rate: number; samples: number; duration: number; decodeError?: string } | null;
  };
  ffprobe?: {
    format: string;
    video: {
      codec: string;
      width: number;
      height: number;
      sar?: string;
      dar?: string;
      space?: string;
      primaries?: string;
      transfer?: string;
      range?: string;
      pixFmt: string;
      rotation: number;
      frames: number;
    } | null;
    audio: { codec: string; channels: number; rate: number; duration: number } | null;
  };
}

const SCRIPT = fileURLToPath(new URL('../../scripts/zoo_truth.py', import.meta.url));
export const PYTHON = '/usr/bin/python3';

/** The independent facts of each file (one Python process for all; `jobs` at once). */
export async function readFacts(paths: string[], jobs = 2): Promise<Facts[]> {
  if (paths.length === 0) return [];
  const chunks: string[][] = Array.from({ length: Math.min(jobs, paths.length) }, () => []);
  paths.forEach((p, i) => chunks[i % chunks.length]!.push(p));
  const results = await Promise.all(
    chunks.map(
      (list) =>
        new Promise<Facts[]>((resolve, reject) => {
          const child = spawn(PYTHON, [SCRIPT, ...list], { stdio: ['ignore', 'pipe', 'pipe'] });
          const out: Buffer[] = [];
          let err = '';
          child.stdout.on('data', (d: Buffer) => out.push(d));
          child.stderr.on('data', (d) => (err += d));
          child.on('error', reject);
          child.on('close', (code) => {
            if (code !== 0) reject(new Error(`zoo_truth.py failed (${code}): ${err}`));
            else resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as Facts[]);
          });
        }),
    ),
  );
  const byPath = new Map(results.flat().map((f) => [f.path, f]));
  return paths.map((p) => byPath.get(p)!);
}

const KR_KB: Record<string, [number, number]> = { bt601: [0.299, 0.114], bt709: [0.2126, 0.0722], bt2020: [0.2627, 0.0593] };

/** Mean raw plane levels → RGB 0..255 by a matrix and range (the maths of the standards, nothing else). */
export function planesToRgb(planes: [number, number, number], bits: number, matrix: string, range: 'tv' | 'pc'): [number, number, number] {
  const s = 2 ** (bits - 8);
  const top = 2 ** bits - 1;
  const [y0, u0, v0] = planes;
  const y = range === 'pc' ? y0 / top : (y0 - 16 * s) / (219 * s);
  const cb = range === 'pc' ? (u0 - 128 * s) / top : (u0 - 128 * s) / (224 * s);
  const cr = range === 'pc' ? (v0 - 128 * s) / top : (v0 - 128 * s) / (224 * s);
  const [kr, kb] = KR_KB[matrix]!;
  const r = y + 2 * (1 - kr) * cr;
  const b = y + 2 * (1 - kb) * cb;
  const g = (y - kr * r - kb * b) / (1 - kr - kb);
  return [r, g, b].map((x) => Math.round(Math.min(1, Math.max(0, x)) * 2550) / 10) as [number, number, number];
}

export const sarOf = (text: string | undefined): [number, number] => {
  const m = /^(\d+):(\d+)$/.exec(text ?? '');
  return m && Number(m[1]) > 0 ? [Number(m[1]), Number(m[2])] : [1, 1];
};
const sameRatio = (a: [number, number], b: [number, number]) => a[0] * b[1] === a[1] * b[0];
const BT601_NAMES = [undefined, 'unknown', 'bt470bg', 'smpte170m'];
const UNTAGGED = [undefined, 'unknown'];

/** Tolerances, with why. Lossy coding moves a flat colour a few levels; 10-bit to 8 and matrix maths one more. */
const COLOUR = 6;
/** mkv/webm keep ms: a 30000/1001 frame time is rounded by up to 0.5 ms. */
const TIME_S = 0.0015;
/** Priming and last-frame padding: aac 1024 + 1024, ac3 1536, opus 312 + 960; per separately encoded part. */
const audioTolerance = (t: GenTruth) => 0.01 + (t.parts * 3072) / (t.audioRate ?? 48000);

/** Where the truth of a generated file and its independent facts disagree (a generator bug). */
export function truthProblems(t: GenTruth, f: Facts): string[] {
  const p: string[] = [];
  if (!f.ok || !f.pyav || !f.ffprobe) return [`not readable: ${f.pyavError ?? ''} ${f.ffprobeError ?? ''}`.trim()];
  const pv = f.pyav.video;
  const fv = f.ffprobe.video && { ...f.ffprobe.video };
  if (!pv || !fv) return ['no video stream'];
  // JSON has null where ffprobe printed nothing.
  for (const k of ['space', 'primaries', 'transfer', 'range'] as const) fv[k] ??= undefined;
  const want = (what: string, got: unknown, truth: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(truth)) p.push(`${what}: ${JSON.stringify(got)}, truth ${JSON.stringify(truth)}`);
  };
  want('ffprobe codec', fv.codec, t.videoCodec);
  want('PyAV frames', pv.frames, t.frames);
  want('ffprobe frames', fv.frames, t.frames);
  want('PyAV coded size', [pv.codedWidth, pv.codedHeight], [t.codedWidth, t.codedHeight]);
  want('ffprobe coded size', [fv.width, fv.height], [t.codedWidth, t.codedHeight]);
  // VP9 and AV1 carry no SAR in their bitstream, and PyAV 10 reads only the codec's: the container's is ffprobe's alone.
  if (!['vp9', 'av1'].includes(t.videoCodec) && !sameRatio(pv.sar ?? [1, 1], t.sar)) p.push(`PyAV SAR ${pv.sar}, truth ${t.sar}`);
  if (!sameRatio(sarOf(fv.sar), t.sar)) p.push(`ffprobe SAR ${fv.sar}, truth ${t.sar}`);
  want('PyAV (tkhd) rotation', pv.rotation, t.rotation);
  want('ffprobe rotation', fv.rotation, t.rotation);
  want('PyAV flashes', pv.flashes, t.flashes);
  const c = t.colour;
  want('ffprobe range', fv.range === 'pc' ? 'pc' : 'tv', c.range);
  if (c.space) want('ffprobe colour tags', [fv.space, fv.primaries, fv.transfer], [c.space, c.primaries, c.transfer]);
  else {
    if (!BT601_NAMES.includes(fv.space)) p.push(`ffprobe matrix ${fv.space}, truth untagged (BT.601)`);
    if (!UNTAGGED.includes(fv.primaries) || !UNTAGGED.includes(fv.transfer))
      p.push(`ffprobe primaries/transfer ${fv.primaries}/${fv.transfer}, truth untagged`);
  }
  want('PyAV bit depth', pv.bits, c.bits);
  if (pv.firstPlanes) {
    const rgb = planesToRgb(pv.firstPlanes, pv.bits, c.matrix, c.range);
    if (rgb.some((x, i) => Math.abs(x - t.firstFrameColor![i]!) > COLOUR))
      p.push(`first frame as ${c.matrix}/${c.range}: RGB ${rgb}, truth ${t.firstFrameColor} (planes ${pv.firstPlanes.map((x) => x.toFixed(1))})`);
  }
  // Times: within each part (a reset restarts them), as the truth says.
  const times = pv.times.map((x) => x ?? Number.NaN);
  const starts = t.timeline === 'reset' ? [0, t.resetAt!] : [0];
  for (const [k, s] of starts.entries()) {
    const e = starts[k + 1] ?? times.length;
    for (let n = s; n < Math.min(e, t.frames!); n++) {
      const want = t.frameTimes ? t.frameTimes[n]! - t.frameTimes[s]! : (n - s) / t.fps!;
      const got = times[n]! - times[s]!;
      if (!(Math.abs(got - want) <= TIME_S)) {
        p.push(`frame ${n} at ${got.toFixed(4)} s from frame ${s}, truth ${want.toFixed(4)}`);
        break;
      }
    }
  }
  if (t.timeline === 'reset' && !(times[t.resetAt!]! < times[t.resetAt! - 1]!))
    p.push(`no timestamp reset at frame ${t.resetAt}: ${times[t.resetAt! - 1]} then ${times[t.resetAt!]}`);
  const pa = f.pyav.audio;
  const fa = f.ffprobe.audio;
  if (t.audioCodec === undefined) {
    if (pa || fa) p.push(`an audio stream (${fa?.codec}), truth none`);
    return p;
  }
  if (!pa || !fa) return [...p, 'no audio stream'];
  want('ffprobe audio codec', fa.codec, t.audioCodec);
  want('ffprobe channels/rate', [fa.channels, fa.rate], [t.audioChannels, t.audioRate]);
  want('PyAV channels/rate', [pa.channels, pa.rate], [t.audioChannels, t.audioRate]);
  const tol = audioTolerance(t);
  if (!(Math.abs(pa.duration - t.audioDuration!) <= tol)) p.push(`PyAV audio ${pa.duration.toFixed(4)} s, truth ${t.audioDuration} s (±${tol.toFixed(3)})`);
  // The packets' sum counts what edit lists and pre-skip trim (opus in fragmented mp4: ~0.1 s): a coarse check.
  if (!t.editList && !(Math.abs(fa.duration - t.audioDuration!) <= tol + 0.1))
    p.push(`ffprobe audio ${fa.duration.toFixed(4)} s, truth ${t.audioDuration} s (±${(tol + 0.1).toFixed(3)})`);
  return p;
}
