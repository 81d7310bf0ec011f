/**
 * The perceptual fingerprint (src/features/fingerprint.ts) against its recipe truth and an
 * independent numpy reference (scripts/fingerprint_reference.py):
 * - frame hashes: the same bits as numpy on the same decoded gray frames and RGB frames;
 * - clip fingerprints: fingerprintClip (ffmpeg scales to 64×64 first) within 4 bits per frame of
 *   numpy hashing PyAV's full-size frames;
 * - truth from the recipes: every copy (another CRF, half size, 5 % crop, one frame later) is
 *   within DEFAULT_MAX_DISTANCE of its original, and clips of different shots, two shots of one
 *   scene among them, are not.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintClip } from '../../src/features/fingerprint-clip.js';
import {
  ClipFingerprinter,
  DEFAULT_MAX_DISTANCE,
  fingerprintDistance,
  frameHash,
  hammingDistance,
  parseFingerprint,
  pickFrames,
} from '../../src/features/fingerprint.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { type DedupClip, makeDedupClips } from '../helpers/dedup-clips.js';

const PY = '/usr/bin/python3';
const REF = join(import.meta.dirname, '..', '..', 'scripts', 'fingerprint_reference.py');

let dir: string;
let clips: DedupClip[];
const prints = new Map<string, string>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-fp-'));
  clips = makeDedupClips(dir);
  for (const c of clips) prints.set(c.id, await fingerprintClip(c.file));
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function reference(args: string[]): string[] {
  return execFileSync(PY, [REF, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .trim()
    .split('\n');
}

function rawFrames(file: string, out: string, w: number, h: number, pixFmt: 'gray' | 'rgb24'): void {
  execFileSync(ffmpegPath(), [
    '-nostdin',
    '-v',
    'error',
    '-y',
    '-i',
    file,
    '-vf',
    `scale=${w}:${h}:flags=bicubic,format=${pixFmt}`,
    '-f',
    'rawvideo',
    '-pix_fmt',
    pixFmt,
    out,
  ]);
}

describe('frame hashes equal the numpy reference', () => {
  it.each([
    ['zoom', 320, 240],
    ['scene_left', 320, 240],
    ['testsrc_half', 37, 23],
    ['zoom_crop', 1000, 33],
  ])('%s at %ix%i: every gray frame, the same 64 bits', async (id, w, h) => {
    const raw = join(dir, `${id}-${w}.gray`);
    rawFrames(join(dir, `${id}.mp4`), raw, w, h, 'gray');
    const bytes = new Uint8Array(await readFile(raw));
    const ref = reference(['raw', raw, String(w), String(h)]);
    expect(ref.length).toBe(bytes.length / (w * h));
    const ours = ref.map((_, i) =>
      frameHash(bytes.subarray(i * w * h, (i + 1) * w * h), w, h)
        .toString(16)
        .padStart(16, '0'),
    );
    expect(ours).toEqual(ref);
    // Not a constant: the frames of a moving shot hash differently.
    expect(new Set(ours).size).toBeGreaterThan(1);
  });

  it('RGB frames pushed into a ClipFingerprinter: the reference gray and hash, the frames it picks', async () => {
    const raw = join(dir, 'scene.rgb');
    rawFrames(join(dir, 'scene_right.mp4'), raw, 160, 120, 'rgb24');
    const bytes = new Uint8Array(await readFile(raw));
    const ref = reference(['rgb', raw, '160', '120']);
    const fp = new ClipFingerprinter({ frames: 5 });
    const n = bytes.length / (160 * 120 * 3);
    for (let i = 0; i < n; i++) fp.push({ index: i, rgb: bytes.subarray(i * 57600, (i + 1) * 57600), width: 160, height: 120 });
    const picked = [0, 1, 2, 3, 4].map((i) => ref[Math.floor(((i + 0.5) * n) / 5)]).join('');
    expect(n).toBe(50);
    expect(fp.finish()).toEqual({ fingerprint: picked });
  });

  it('picks the centres of equal parts; a clip without frames has an empty fingerprint', () => {
    expect(pickFrames(50, 8)).toEqual([3, 9, 15, 21, 28, 34, 40, 46]);
    expect(pickFrames(3, 4)).toEqual([0, 1, 1, 2]);
    expect(new ClipFingerprinter().finish()).toEqual({ fingerprint: '' });
  });
});

describe('clip fingerprints', () => {
  it('fingerprintClip is within 4 bits per frame of numpy on PyAV full-size frames', () => {
    for (const id of ['testsrc', 'zoom', 'scene_left', 'scene_right', 'zoom_half']) {
      const ref = parseFingerprint(reference(['video', join(dir, `${id}.mp4`), '8'])[0]!);
      const ours = parseFingerprint(prints.get(id)!);
      expect(ours.length).toBe(8);
      const d = ours.map((h, i) => hammingDistance(h, ref[i]!));
      expect(Math.max(...d), `${id}: ${d}`).toBeLessThanOrEqual(4);
    }
  });

  it('every copy is within the default distance of its original', () => {
    const copies = clips.filter((c) => c.copy !== '');
    expect(copies.length).toBeGreaterThanOrEqual(16);
    const far = copies.map((c) => [c.id, fingerprintDistance(prints.get(c.shot)!, prints.get(c.id)!)] as const).filter(([, d]) => d > DEFAULT_MAX_DISTANCE);
    expect(far).toEqual([]);
  });

  it('no clip of one shot is within the default distance of any clip of another (two shots of one scene included)', () => {
    const close: string[] = [];
    let nearest = 64;
    for (const a of clips) {
      for (const b of clips) {
        if (a.id >= b.id || a.shot === b.shot) continue;
        const d = fingerprintDistance(prints.get(a.id)!, prints.get(b.id)!);
        nearest = Math.min(nearest, d);
        if (d <= DEFAULT_MAX_DISTANCE) close.push(`${a.id}~${b.id}: ${d}`);
      }
    }
    expect(close).toEqual([]);
    expect(nearest).toBeGreaterThan(DEFAULT_MAX_DISTANCE + 4);
  });

  it('distance: the mean over aligned frames; different lengths are never duplicates', () => {
    const a = '0000000000000000ffffffffffffffff';
    expect(fingerprintDistance(a, '0000000000000007ffffffffffffff00')).toBe(5.5);
    expect(fingerprintDistance(a, a.slice(0, 16))).toBe(64);
    expect(() => fingerprintDistance(a, 'xyz0000000000000ffffffffffffffff')).toThrow(/not a fingerprint/);
  });
});
