/**
 * The media zoo's truth, checked against two readers that share no code with the generator or
 * clipstream: scripts/zoo_reference.py (PyAV decode) and ffprobe. A zoo entry whose stated truth
 * is wrong would make every job's zoo test wrong, so this must hold before anything else.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { recipes } from './recipes.js';
import { type ZooEntry, zooDir, zooEntries } from './zoo.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../scripts/zoo_reference.py', import.meta.url));
const ZOO = fileURLToPath(new URL('./zoo.ts', import.meta.url));
const hasPyAV = spawnSync(PYTHON, ['-c', 'import av, numpy'], { stdio: 'ignore' }).status === 0;
if (!hasPyAV) console.warn('zoo.test: skipped, /usr/bin/python3 cannot import av and numpy (apt-get install python3-av python3-numpy)');

interface Reference {
  ok: boolean;
  error?: string;
  video?: {
    frames: number;
    times: number[];
    flashes: number[];
    firstFrameColor: number[];
    codedWidth: number;
    codedHeight: number;
    width: number;
    height: number;
    rotation: number;
    headerFrames: number;
  } | null;
  audio?: { channels: number; rate: number; duration: number } | null;
  audioStart?: number;
  beeps?: number[];
}

interface Probe {
  streams?: Array<{
    codec_type: string;
    width?: number;
    height?: number;
    channels?: number;
    sample_rate?: string;
    nb_frames?: string;
    side_data_list?: Array<{ rotation?: number }>;
  }>;
  format?: { duration?: string };
}

/** Tolerances, with why: lossy coding (10-bit to 8-bit RGB included) moves a flat colour by a few levels. */
const COLOUR = 4;
const SYNC_S = 0.01; // opus pre-skip rounding leaves 7 ms
/** Codecs pad the last frame and (without edit lists) keep priming: up to two frames (aac: 1024 samples). */
const audioLengthTolerance = (rate: number) => 0.005 + 2048 / rate;
const TIME_S = 0.001;

const names = recipes().map((r) => r.name);

describe.skipIf(!hasPyAV)('media zoo: truth against PyAV and ffprobe', () => {
  let entries: Map<string, ZooEntry>;
  let refs: Map<string, Reference>;

  beforeAll(async () => {
    const list = await zooEntries();
    entries = new Map(list.map((e) => [e.name, e]));
    const r = spawnSync(PYTHON, [SCRIPT, ...list.map((e) => e.path)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`zoo_reference.py failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as Reference[];
    refs = new Map(list.map((e, i) => [e.name, out[i]!]));
  });

  it('lists every recipe once, each file in the cache folder', async () => {
    const list = await zooEntries();
    expect(list.map((e) => e.name).sort()).toEqual([...names].sort());
    for (const e of list) expect(e.path.endsWith(`/${e.name}`)).toBe(true);
    // Each video entry's first frame names it (the -ss cuts start on a mid-stream frame instead).
    const cut = (e: ZooEntry) => e.tags.includes('editlist') && e.tags.includes('header-lies');
    const colours = list.filter((e) => e.truth.firstFrameColor && !cut(e)).map((e) => e.truth.firstFrameColor!.join(','));
    expect(new Set(colours).size).toBe(colours.length);
    // A second call is the same cached set, not a regeneration.
    expect((await zooEntries()).map((e) => e.path)).toEqual(list.map((e) => e.path));
  });

  it('is built once when several processes ask at once, and a dead builder does not block it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'zoo-race-'));
    try {
      const dir = (await zooDir()).replace(tmpdir(), root);
      // A lock and a scratch folder left by a killed builder (a pid that cannot be alive).
      await mkdir(`${dir}.lock`);
      await writeFile(join(`${dir}.lock`, 'pid'), '999999999');
      await mkdir(`${dir}.tmp-999999999`);
      const script = `import('${pathToFileURL(ZOO).href}').then(async (z) => { const e = await z.zooEntries(); console.log(JSON.stringify(e.map((x) => x.path))); })`;
      const runs = await Promise.all(
        [0, 1, 2].map(
          () =>
            new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
              const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
                env: { ...process.env, TMPDIR: root },
                stdio: ['ignore', 'pipe', 'pipe'],
              });
              let out = '';
              let err = '';
              child.stdout.on('data', (d) => (out += d));
              child.stderr.on('data', (d) => (err += d));
              child.on('close', (code) => resolve({ code, out, err }));
            }),
        ),
      );
      for (const r of runs) expect(r.code, r.err).toBe(0);
      const lists = runs.map((r) => JSON.parse(r.out.trim().split('\n').pop()!) as string[]);
      expect(lists[1]).toEqual(lists[0]);
      expect(lists[2]).toEqual(lists[0]);
      expect(lists[0]!.every((p) => p.startsWith(`${dir}/`))).toBe(true);
      // Only the finished zoo remains: no lock, no scratch folder.
      expect((await readdir(root)).filter((n) => n.startsWith('clipstream-zoo-'))).toEqual([basename(dir)]);
      for (const p of lists[0]!) expect(existsSync(p)).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);

  it.each(names)('%s: truth matches the PyAV reference', (name) => {
    const { truth } = entries.get(name)!;
    const ref = refs.get(name)!;
    if (truth.bad) {
      expect(ref.ok, `${name} should not open: ${truth.bad}`).toBe(false);
      return;
    }
    expect(ref.ok, ref.error).toBe(true);
    const v = ref.video;
    if (truth.frames !== undefined) {
      expect(v).toBeTruthy();
      expect(v!.frames).toBe(truth.frames);
      expect(v!.flashes).toEqual(truth.flashes);
      expect([v!.codedWidth, v!.codedHeight, v!.width, v!.height, v!.rotation]).toEqual([
        truth.codedWidth,
        truth.codedHeight,
        truth.width,
        truth.height,
        truth.rotation,
      ]);
      v!.firstFrameColor.forEach((c, i) =>
        expect(Math.abs(c - truth.firstFrameColor![i]!), `first-frame colour ${v!.firstFrameColor} vs ${truth.firstFrameColor}`).toBeLessThanOrEqual(COLOUR),
      );
      const steps = v!.times.slice(1).map((t, i) => t - v!.times[i]!);
      if (truth.vfr) {
        expect(truth.frameTimes).toHaveLength(v!.frames);
        v!.times.forEach((t, i) => expect(Math.abs(t - truth.frameTimes![i]!)).toBeLessThan(TIME_S));
        expect(Math.max(...steps) - Math.min(...steps)).toBeGreaterThan(0.01);
      } else {
        for (const s of steps) expect(Math.abs(s - 1 / truth.fps!)).toBeLessThan(TIME_S);
      }
      const last = steps.length ? steps[steps.length - 1]! : 1 / truth.fps!;
      expect(Math.abs(v!.times[v!.times.length - 1]! + last - truth.duration!)).toBeLessThan(TIME_S);
    } else {
      expect(v ?? null).toBeNull();
    }
    const a = ref.audio;
    if (truth.audioChannels !== undefined) {
      expect(a).toBeTruthy();
      expect([a!.channels, a!.rate]).toEqual([truth.audioChannels, truth.audioRate]);
      expect(Math.abs(ref.audioStart! - truth.audioStart!), `audio start ${ref.audioStart} vs ${truth.audioStart}`).toBeLessThanOrEqual(SYNC_S);
      expect(ref.beeps!.length, `beeps ${ref.beeps} vs ${truth.beeps}`).toBe(truth.beeps!.length);
      ref.beeps!.forEach((b, i) => expect(Math.abs(b - truth.beeps![i]!), `beeps ${ref.beeps} vs ${truth.beeps}`).toBeLessThanOrEqual(SYNC_S));
      if (truth.audioDuration !== undefined) expect(Math.abs(a!.duration - truth.audioDuration)).toBeLessThanOrEqual(audioLengthTolerance(a!.rate));
      if (truth.frames === undefined) expect(Math.abs(a!.duration - truth.duration!)).toBeLessThanOrEqual(audioLengthTolerance(a!.rate));
    } else {
      expect(a ?? null).toBeNull();
    }
  });

  it('audio-editlist-skip.mp4 is a real class: without its edit list the audio is 0.3 s late', () => {
    const { path, truth } = entries.get('audio-editlist-skip.mp4')!;
    const r = spawnSync(PYTHON, [SCRIPT, '--ignore-editlist', path], { encoding: 'utf8' });
    const raw = (JSON.parse(r.stdout) as Reference[])[0]!;
    expect(raw.beeps!.length).toBe(truth.beeps!.length);
    // 0.3 s, give or take the aac priming and the video's own B-frame shift, also ignored.
    raw.beeps!.forEach((b, i) => expect(Math.abs(b - truth.beeps![i]! - 0.3)).toBeLessThan(0.1));
  });

  it.each(names)('%s: truth matches ffprobe', (name) => {
    const { truth, path, tags } = entries.get(name)!;
    const r = spawnSync(ffprobePath(), ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path], { encoding: 'utf8', timeout: 30_000 });
    if (truth.bad) {
      const streams = r.status === 0 ? ((JSON.parse(r.stdout) as Probe).streams ?? []) : [];
      expect(
        streams.filter((s) => s.codec_type === 'video' || s.codec_type === 'audio'),
        `ffprobe found media in ${name}`,
      ).toEqual([]);
      return;
    }
    if (r.signal && tags.includes('ts')) {
      // The bundled ffprobe segfaults on every MPEG-TS (issue 9 item 10): check with ffmpeg's own probe.
      console.warn(`zoo.test: ffprobe killed by ${r.signal} on ${name}; checked with ffmpeg -i instead`);
      const info = spawnSync(ffmpegPath(), ['-hide_banner', '-i', path], { encoding: 'utf8' }).stderr;
      expect(info).toMatch(new RegExp(`Video: .*, ${truth.codedWidth}x${truth.codedHeight}[ ,]`));
      expect(info).toMatch(new RegExp(`Audio: .*, ${truth.audioRate} Hz, ${{ 1: 'mono', 2: 'stereo', 6: '5\\.1' }[truth.audioChannels!]}`));
      return;
    }
    expect(r.signal, `ffprobe killed by ${r.signal} on ${name}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const probe = JSON.parse(r.stdout) as Probe;
    const video = probe.streams!.filter((s) => s.codec_type === 'video');
    const audio = probe.streams!.filter((s) => s.codec_type === 'audio');
    expect(video.length).toBe(truth.frames === undefined ? 0 : 1);
    expect(audio.length).toBe(truth.audioChannels === undefined ? 0 : tags.includes('two-audio') ? 2 : 1);
    if (video[0]) {
      expect([video[0].width, video[0].height]).toEqual([truth.codedWidth, truth.codedHeight]);
      // ffprobe reports the display matrix's counter-clockwise angle.
      const rotation = video[0].side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? 0;
      expect((360 - rotation) % 360).toBe(truth.rotation);
    }
    if (audio[0]) expect([audio[0].channels, Number(audio[0].sample_rate)]).toEqual([truth.audioChannels, truth.audioRate]);
    if (tags.includes('header-lies')) {
      // The class is real: what the header says (frame count, or duration × fps) is not what decodes.
      const claimed = Math.max(Number(video[0]!.nb_frames ?? 0), Math.round(Number(probe.format!.duration) * truth.fps!));
      expect(claimed).toBeGreaterThan(truth.frames!);
    }
    if (tags.includes('subtitles')) expect(probe.streams!.filter((s) => s.codec_type === 'subtitle')).toHaveLength(1);
    if (truth.keyframes) {
      const packets = spawnSync(ffprobePath(), ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,flags', '-of', 'json', path], {
        encoding: 'utf8',
      });
      const list = (JSON.parse(packets.stdout) as { packets: Array<{ pts: number; flags: string }> }).packets.sort((a, b) => a.pts - b.pts);
      expect(list.flatMap((p, i) => (p.flags.includes('K') ? [i] : []))).toEqual(truth.keyframes);
    }
    if (tags.includes('mdat64')) {
      // The class is real: the mdat box header uses the 64-bit size form.
      const head = readFileSync(path);
      const at = head.indexOf('mdat', 0, 'latin1');
      expect(head.readUInt32BE(at - 4)).toBe(1);
    }
  });
});
