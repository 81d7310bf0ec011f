/**
 * `extract` over the media zoo (test/zoo): every entry bundled into a tar shard. Each
 * decodable entry gives a record, each bad one is named in the log while the others finish;
 * the decode of every entry (the same decodeSample the job runs) matches the independent
 * PyAV + torch reference (scripts/decode_reference.py): the frame count, every pixel of the
 * 32 picked frames within ±1 level, the audio as the mean of all channels.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extract, type ExtractReport } from '../../src/jobs/extract.js';
import { resolveDecodeOptions } from '../../src/media/decode.js';
import { decodeSample } from '../../src/media/decode-stage.js';
import { readShards } from '../../src/shards/tar-reader.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import type { FeatureRecord, Sample } from '../../src/types.js';
import { END_OF_ARCHIVE, member } from '../helpers/tar.js';
import { REPO } from '../helpers/run-cli.js';
import { zooEntries, type ZooEntry } from './zoo.js';

const run = promisify(execFile);

interface Ref {
  input: string;
  error?: string;
  decoded_frames?: number;
  channels?: number;
  audio_samples?: number;
}

let dir: string;
let entries: ZooEntry[];
let tar: string;
/** Tar key of each entry: a folder per entry, so `same.mp4` and `same.mkv` stay two samples. */
const keyOf = (i: number, e: ZooEntry) => `e${String(i).padStart(2, '0')}/${e.name.slice(0, e.name.indexOf('.'))}`;
let report: ExtractReport;
let records: FeatureRecord[];
const refs = new Map<string, Ref>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-zoo-extract-'));
  entries = await zooEntries();
  const members: Buffer[] = [];
  for (const [i, e] of entries.entries()) members.push(member(`e${String(i).padStart(2, '0')}/${e.name}`, await readFile(e.path)));
  tar = join(dir, 'shard-000000.tar');
  await writeFile(tar, Buffer.concat([...members, END_OF_ARCHIVE]));
  // The reference (one Python process for all entries) runs while extract does.
  const spec = entries.map((e, i) => ({ input: e.path, out: join(dir, `ref${i}`), rotate: e.truth.rotation ?? 0 }));
  await writeFile(join(dir, 'spec.json'), JSON.stringify(spec));
  const python = run('/usr/bin/python3', [join(REPO, 'scripts/decode_reference.py'), '--batch', join(dir, 'spec.json')], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  // Every clip of the zoo is short: no minimum duration, so that short ones are decoded too.
  report = await extract({ tarPath: tar, outputDir: join(dir, 'out'), minDurationSeconds: 0, onWarning: () => {} });
  records = await readFeatureShard(join(dir, 'out', 'shard-000000.msgpack'));
  for (const line of (await python).stdout.trim().split('\n')) {
    const r = JSON.parse(line) as Ref;
    refs.set(r.input, r);
  }
}, 240_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const hasVideo = (e: ZooEntry) => !e.truth.bad && !e.tags.includes('audio-only');
const hasAudio = (e: ZooEntry) => !e.truth.bad && e.truth.audioChannels !== undefined;

async function f32(path: string): Promise<Float32Array> {
  const b = await readFile(path);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

/** Our decode of one entry, exactly as the job does it (a Sample from the tar through decodeSample). */
async function decodeEntry(i: number, e: ZooEntry, video: boolean): Promise<Sample> {
  const sample: Sample = {
    kind: 'sample',
    __key__: keyOf(i, e),
    __url__: tar,
    shard: { url: tar, name: 'shard-000000', index: 0 },
    index: i,
    files: { [e.name.slice(e.name.indexOf('.') + 1)]: await readFile(e.path) },
    entry: { filename: e.name, id: e.name, segment: [0, 10] },
  };
  await decodeSample(sample, resolveDecodeOptions({ minDurationSeconds: 0, video, audio: true }));
  return sample;
}

describe('extract over the media zoo', () => {
  it('the shard is read whole: one sample per entry', async () => {
    let n = 0;
    for await (const item of readShards([tar], { onWarning: () => {} })) if (item.kind === 'sample') n++;
    expect(n).toBe(entries.length);
  });

  it('every entry with video gives a record; the bad and audio-only ones are named in the log, the others finished', () => {
    const keys = new Set(records.map((r) => r.__key__));
    const s = report.shards[0]!;
    const named = new Map([...s.failed, ...s.skipped].map((p) => [p.key, p.reason]));
    const missing = entries.map((e, i) => [keyOf(i, e), e] as const).filter(([k, e]) => hasVideo(e) && !keys.has(k));
    expect(missing.map(([k]) => `${k}: ${named.get(k)}`)).toEqual([]);
    for (const [i, e] of entries.entries()) {
      if (hasVideo(e)) continue;
      expect(named.get(keyOf(i, e)), e.name).toMatch(new RegExp(`^decode: ${keyOf(i, e).replace('/', '\\/')}`));
    }
    expect(s.status).toBe('written');
    expect(records.length + s.failed.length + s.skipped.length).toBe(entries.length);
  });

  it('frames: the decoded frame count is the truth, and every pixel is within ±1 of the PyAV + torch reference', async () => {
    const problems: string[] = [];
    for (const [i, e] of entries.entries()) {
      if (!hasVideo(e)) continue;
      const ref = refs.get(e.path)!;
      const s = await decodeEntry(i, e, true);
      if (s.failure) {
        problems.push(`${e.name}: ${s.failure.error.message}`);
        continue;
      }
      if (s.video!.decodedFrames !== e.truth.frames) problems.push(`${e.name}: ${s.video!.decodedFrames} frames decoded, truth ${e.truth.frames}`);
      if (ref.decoded_frames !== e.truth.frames) problems.push(`${e.name}: reference decoded ${ref.decoded_frames}, truth ${e.truth.frames}`);
      const want = await f32(join(dir, `ref${i}.video.f32`));
      let max = 0;
      for (let k = 0; k < want.length; k++) max = Math.max(max, Math.abs(s.video!.frames[k]! - want[k]!));
      if (max > 1) problems.push(`${e.name}: pixels differ by up to ${max.toFixed(1)} levels`);
    }
    expect(problems).toEqual([]);
  }, 180_000);

  it('audio: the mean of all channels, equal to the reference (mono, stereo, 5.1, 8-48 kHz, late starts)', async () => {
    const problems: string[] = [];
    for (const [i, e] of entries.entries()) {
      if (!hasAudio(e)) continue;
      const ref = refs.get(e.path)!;
      if (ref.channels !== e.truth.audioChannels) problems.push(`${e.name}: reference sees ${ref.channels} channels, truth ${e.truth.audioChannels}`);
      const s = await decodeEntry(i, e, false);
      if (s.failure || !s.audio) {
        problems.push(`${e.name}: ${s.failure?.error.message ?? 'no audio decoded'}`);
        continue;
      }
      const want = await f32(join(dir, `ref${i}.audio.f32`));
      const got = s.audio.pcm;
      if (Math.abs(got.length - want.length) > 0.01 * want.length + 32) problems.push(`${e.name}: ${got.length} samples, reference ${want.length}`);
      let max = 0;
      for (let k = 0; k < Math.min(got.length, want.length); k++) max = Math.max(max, Math.abs(got[k]! - want[k]!));
      if (max > 2e-3) problems.push(`${e.name}: samples differ by up to ${max.toExponential(2)}`);
    }
    expect(problems).toEqual([]);
  }, 180_000);
});
