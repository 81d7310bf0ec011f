/**
 * `clips` over the media zoo (test/zoo/): every entry with video is cut by fixed stride, the
 * tricky ones also by spans in per-clip mode, and each clip is read back with the zoo's
 * independent reader (scripts/zoo_reference.py, PyAV): exact frame counts, the first frame's
 * colour, the white flashes where the truth has them, the audio's length and its beeps on
 * the flashes. Each bad file (and each without video) is named in the log; the others finish.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/util/csv.js';
import { clips, type ClipsReport } from '../../src/jobs/clips.js';
import { type ZooEntry, zooEntries } from './zoo.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../scripts/zoo_reference.py', import.meta.url));
const hasPyAV = spawnSync(PYTHON, ['-c', 'import av, numpy'], { stdio: 'ignore' }).status === 0;

interface Reference {
  ok: boolean;
  video?: { frames: number; flashes: number[]; firstFrameColor: number[]; width: number; height: number } | null;
  audio?: { duration: number } | null;
  beeps?: number[];
}

/** Colours are 56 levels apart between entries; re-encoding (4:4:4, 10-bit, full range to 4:2:0) moves them a few. */
const COLOUR = 10;
/** AAC re-encoding and the 48 kHz resample move an onset by a few ms. */
const SYNC_S = 0.012;
/** AAC pads its last frame: up to 1024 samples at 48 kHz, plus a little. */
const AUDIO_LEN_S = 0.005 + 2048 / 48000;

const idOf = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, '-');
/** Entries clips must refuse: bad files and files without a video stream. */
const refused = (e: ZooEntry) => e.tags.includes('bad') || e.truth.frames === undefined;
/** The tricky classes that also get spans, cut one ffmpeg per clip. */
const SPAN_TAGS = ['vfr', 'editlist', 'header-lies', 'avi', 'ts', 'bframes', 'rotated', 'odd-size', 'truncated', 'one-frame', 'sparse-keyframes'];

let dir: string;
let entries: ZooEntry[];
const warnings: string[] = [];

function reference(files: string[]): Reference[] {
  const r = spawnSync(PYTHON, [SCRIPT, ...files], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`zoo_reference.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Reference[];
}

async function rowsOf(out: string) {
  return parseCsv(await readFile(join(dir, out, 'clips.csv'), 'utf8'));
}

/** Every clip of `out` against its entry's truth. */
async function expectClipsTrue(out: string) {
  const rows = await rowsOf(out);
  const refs = reference(rows.map((r) => join(dir, out, 'clips', r.filename!)));
  const byId = new Map(entries.map((e) => [idOf(e.name), e]));
  let beeps = 0;
  rows.forEach((r, k) => {
    const e = byId.get(r.video_id!)!;
    const t = e.truth;
    const ref = refs[k]!;
    const s = Number(r.start_frame);
    const end = Number(r.end_frame);
    const what = `${e.name} ${r.clip_id}`;
    expect(ref.ok, what).toBe(true);
    expect(end, what).toBeLessThanOrEqual(t.frames!);
    expect(ref.video!.frames, what).toBe(end - s);
    expect(Number(r.num_frames), what).toBe(end - s);
    // The flashes the truth puts inside [s, e), and nowhere else: the clip is cut at the right frames.
    expect(ref.video!.flashes, what).toEqual(t.flashes!.filter((f) => f >= s && f < end).map((f) => f - s));
    if (s === 0) {
      ref.video!.firstFrameColor.forEach((c, i) => {
        expect(Math.abs(c - t.firstFrameColor![i]!), `${what} first frame`).toBeLessThanOrEqual(COLOUR);
      });
    }
    // Displayed size (rotation applied), cropped to even for 4:2:0.
    expect([ref.video!.width, ref.video!.height], what).toEqual([t.width! - (t.width! % 2), t.height! - (t.height! % 2)]);
    // Times: from the truth's frame times for VFR, frame / fps otherwise.
    const time = (n: number) => (t.frameTimes ? (n < t.frames! ? t.frameTimes[n]! : t.duration!) : n / t.fps!);
    expect(Number(r.start_s), what).toBeCloseTo(time(s), 3);
    if (t.audioRate === undefined) {
      expect(ref.audio ?? null, what).toBeNull();
      return;
    }
    const len = Number(r.end_s) - Number(r.start_s);
    expect(Math.abs(ref.audio!.duration - len), `${what} audio length`).toBeLessThan(AUDIO_LEN_S);
    // Beeps where the truth has them, relative to the clip's first frame. A beep already
    // sounding when the clip starts reads as an onset at 0; one in the last 10 ms may not read.
    const rel = (t.beeps ?? []).map((b) => b - Number(r.start_s));
    const want = rel.filter((b) => b >= 0 && b <= len - 0.01);
    const running = rel.some((b) => b < 0 && b > -0.045);
    const got = ref.beeps!.filter((b) => !(running && b < 0.003) && b <= len - 0.01);
    expect(got.length, `${what} beeps ${JSON.stringify(ref.beeps)} want ${JSON.stringify(want)}`).toBe(want.length);
    want.forEach((b, i) => {
      expect(Math.abs(got[i]! - b), `${what} beep ${i}`).toBeLessThan(SYNC_S);
    });
    beeps += want.length;
  });
  return { rows, beeps };
}

function expectRefusedNamed(report: ClipsReport, list: ZooEntry[]) {
  for (const e of list) {
    const row = report.videos.find((v) => v.video_id === idOf(e.name))!;
    if (refused(e)) {
      expect(row.failed, `${e.name} must be refused`).toBe(true);
      expect(row.error, e.name).toContain(e.path);
      expect(
        warnings.some((w) => w.includes(e.path)),
        `${e.name} named in the log`,
      ).toBe(true);
    } else {
      expect(row, e.name).toMatchObject({ failed: false, error: '' });
    }
  }
}

beforeAll(async () => {
  if (!hasPyAV) return;
  dir = await mkdtemp(join(tmpdir(), 'zoo-clips-'));
  entries = await zooEntries();
  await writeFile(join(dir, 'all.csv'), `${['video_id,path', ...entries.map((e) => `${idOf(e.name)},${e.path}`)].join('\n')}\n`);
}, 300_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const job = (out: string, extra: Record<string, unknown>) =>
  clips({
    sources: join(dir, 'all.csv'),
    outputDir: join(dir, out),
    crf: 0,
    preset: 'ultrafast',
    parallelVideos: 2,
    onWarning: (w) => warnings.push(w.message),
    ...extra,
  });

describe.skipIf(!hasPyAV)('clips over the media zoo', () => {
  it('fixed stride: every entry with video tiles its real frames exactly; beeps on flashes; bad files named, the rest finish', async () => {
    const report = await job('stride', { clipLenS: 1.5 });
    expectRefusedNamed(report, entries);
    const { rows, beeps } = await expectClipsTrue('stride');
    // Contiguous clips from 0 to the last real frame: their frames add up to the truth's count.
    for (const e of entries.filter((x) => !refused(x))) {
      const mine = rows.filter((r) => r.video_id === idOf(e.name));
      expect(mine.length, e.name).toBeGreaterThan(0);
      expect(mine[0]!.start_frame, e.name).toBe('0');
      expect(mine.at(-1)!.end_frame, e.name).toBe(String(e.truth.frames));
      expect(
        mine.reduce((n, r) => n + Number(r.num_frames), 0),
        e.name,
      ).toBe(e.truth.frames);
    }
    expect(beeps).toBeGreaterThan(40);
    expect(report.issues).toEqual([]);
  }, 300_000);

  // The default scores (text_area, the OCR model, is checked on subtitles in clips-text-area and curation).
  it('--split=shots: every entry with video is cut into shots that tile its real frames; clips true; every clip scored', async () => {
    const report = await job('shots', { split: 'shots' });
    expectRefusedNamed(report, entries);
    const { rows } = await expectClipsTrue('shots');
    const shots = parseCsv(await readFile(join(dir, 'shots', 'shots.csv'), 'utf8'));
    for (const e of entries.filter((x) => !refused(x))) {
      const mine = shots.filter((r) => r.video_id === idOf(e.name));
      expect(mine.length, e.name).toBeGreaterThan(0);
      expect(mine[0]!.start_frame, e.name).toBe('0');
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.start_frame, e.name).toBe(mine[i - 1]!.end_frame);
      expect(mine.at(-1)!.end_frame, e.name).toBe(String(e.truth.frames));
      // Each entry is one scene with white flashes of a frame or two (the truth's): never a cut.
      expect(
        mine.filter((r) => r.kind === 'cut').map((r) => r.start_frame),
        `${e.name} cuts`,
      ).toEqual([]);
    }
    for (const r of rows) {
      for (const c of ['motion', 'black', 'frozen', 'sharpness', 'brightness', 'contrast', 'colorfulness']) {
        expect(Number.isFinite(Number(r[c])) && r[c] !== '', `${r.clip_id} ${c}=${r[c]}`).toBe(true);
      }
      expect(r.fingerprint, r.clip_id).toMatch(/^(?:[0-9a-f]{16}){1,8}$/);
    }
  }, 300_000);

  it('spans, one ffmpeg per clip, on the tricky classes: a span past the real end is cut there and reported', async () => {
    const tricky = entries.filter((e) => !refused(e) && e.tags.some((t) => SPAN_TAGS.includes(t)));
    expect(tricky.length).toBeGreaterThan(10);
    await writeFile(join(dir, 'tricky.csv'), `${['video_id,path', ...tricky.map((e) => `${idOf(e.name)},${e.path}`)].join('\n')}\n`);
    const spans = tricky.flatMap((e) => {
      const n = e.truth.frames!;
      return n < 4
        ? [[idOf(e.name), 0, n + 5]]
        : [
            [idOf(e.name), 1, Math.min(n, 31)],
            [idOf(e.name), Math.floor(n / 2), n + 7],
          ];
    });
    await writeFile(join(dir, 'spans.csv'), `${['video_id,start_frame,end_frame', ...spans.map((s) => s.join(','))].join('\n')}\n`);
    const report = await clips({
      sources: join(dir, 'tricky.csv'),
      spans: join(dir, 'spans.csv'),
      mode: 'per-clip',
      outputDir: join(dir, 'spans'),
      crf: 0,
      preset: 'ultrafast',
      parallelVideos: 2,
      onWarning: (w) => warnings.push(w.message),
    });
    expectRefusedNamed(report, tricky);
    const { rows } = await expectClipsTrue('spans');
    expect(rows).toHaveLength(spans.length);
    // Every span past the end is clipped at the truth's frame count, and says so.
    const issues = parseCsv(await readFile(join(dir, 'spans', 'span_issues.csv'), 'utf8'));
    expect(issues.map((i) => [i.video_id, i.action, i.reason])).toEqual(
      tricky.map((e) => [idOf(e.name), 'clipped', expect.stringMatching(new RegExp(`cut to ${e.truth.frames}$`))]),
    );
  }, 300_000);
});
