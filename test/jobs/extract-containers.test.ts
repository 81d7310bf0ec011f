/**
 * Extract on the containers the web serves, end to end through a real tar with its json beside:
 * an MPEG-TS and a GIF member are matched to their json entries (segment from the json, shard
 * complete), and fragmented MP4 gives the same record as the plain file.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClipstreamError } from '../../src/errors.js';
import { extract } from '../../src/jobs/extract.js';
import { decodeClip, resolveDecodeOptions, type DecodedClip } from '../../src/media/decode.js';
import { predictFrameCount } from '../../src/media/mp4.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import { extractOptionsFromArgs } from '../../src/cli/extract-command.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTar, withTmpDir } from '../helpers/tar.js';

/**
 * Test media are made by a modern ffmpeg where there is one (CMAF flags, Opus in MP4), whichever
 * binary the decode under test runs.
 */
const MAKER = existsSync('/usr/bin/ffmpeg') ? '/usr/bin/ffmpeg' : ffmpegPath();

function ffmpeg(args: string[]): void {
  execFileSync(MAKER, ['-v', 'error', '-y', ...args]);
}

describe('tar members of every video container extract decodes', () => {
  it('a .ts and a .gif member are joined to their json entries; the shard is complete', async () => {
    await withTmpDir(async (dir) => {
      const ts = join(dir, 'x.ts');
      const gif = join(dir, 'y.gif');
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=s=160x120:r=25:d=3',
        '-f',
        'lavfi',
        '-i',
        'sine=f=440:d=3',
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        ts,
      ]);
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=10:d=3', gif]);
      const tar = join(dir, 'shard-000000.tar');
      await makeTar(tar, [
        { name: 'x.ts', data: await readFile(ts) },
        { name: 'y.gif', data: await readFile(gif) },
      ]);
      await writeFile(
        join(dir, 'shard-000000.json'),
        JSON.stringify([
          { filename: 'x.ts', id: 'ts-id', segment: [0, 3.0] },
          { filename: 'y.gif', id: 'gif-id', segment: [7, 10.0] },
        ]),
      );
      const warnings: ClipstreamError[] = [];
      const out = join(dir, 'out');
      const report = await extract({ tarPath: tar, outputDir: out, parallelDecoders: 1, intraOpThreads: 1, onWarning: (w) => warnings.push(w) });
      expect(warnings.map((w) => w.message)).toEqual([]);
      expect(report.shards[0]!.status).toBe('written');
      expect(report.clipsWritten).toBe(2);
      const records = await readFeatureShard(join(out, 'shard-000000.msgpack'));
      expect(records.map((r) => [r.filename, r.id, r.segment])).toEqual([
        ['x.ts', 'ts-id', [0, 3.0]],
        ['y.gif', 'gif-id', [7, 10.0]],
      ]);
      expect(records[0]!.visual_features).toHaveLength(1);
      expect(records[0]!.audio_features).toHaveLength(1);
      expect(records[1]!.visual_features).toHaveLength(1);
      expect((await readdir(out)).filter((f) => f.includes('incomplete'))).toEqual([]);
      // The CLI: exit 0 (not 3, "incomplete"), and a rerun skips the finished shard with exit 0.
      const cli = ['extract', `--tar_path=${tar}`, `--out_path=${join(dir, 'cli')}`, '--quiet', '--num_workers=1', '--threads=1'];
      expect(runCli(cli).code).toBe(0);
      expect(runCli(cli).code).toBe(0);
    });
  }, 120_000);
});

/**
 * One 6 s, 25 fps clip (keyframe every second, Opus audio: its start travels in the stream, so
 * fragmenting cannot change what is heard) remuxed without re-encoding into the fragmented
 * layouts browsers, OBS and DASH downloads write: every decoded frame must be the plain file's.
 */
async function fragmentedVariants(dir: string): Promise<Record<string, string>> {
  const plain = join(dir, 'plain.mp4');
  ffmpeg([
    ...['-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=6', '-f', 'lavfi', '-i', 'sine=f=440:d=6,aformat=channel_layouts=stereo'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'libopus', plain],
  ]);
  const files: Record<string, string> = { plain };
  const remux = (name: string, flags: string[]) => {
    files[name] = join(dir, `${name}.mp4`);
    ffmpeg(['-i', plain, '-c', 'copy', ...flags, files[name]!]);
  };
  remux('frag', ['-movflags', 'frag_keyframe+empty_moov']);
  remux('frag1s', ['-movflags', 'frag_keyframe+empty_moov', '-frag_duration', '1000000']);
  remux('cmaf', ['-movflags', 'cmaf+frag_keyframe+empty_moov+default_base_moof']);
  // DASH: one init segment and its media segments per stream, joined as downloaders do.
  const dash = join(dir, 'dash');
  await mkdir(dash);
  ffmpeg(['-i', plain, '-c', 'copy', '-f', 'dash', '-dash_segment_type', 'mp4', '-seg_duration', '1', join(dash, 'out.mpd')]);
  const names = (await readdir(dash)).sort();
  for (const stream of [0, 1]) {
    const parts = [`init-stream${stream}.m4s`, ...names.filter((n) => n.startsWith(`chunk-stream${stream}-`))];
    expect(parts.length).toBeGreaterThan(stream === 0 ? 6 : 2);
    files[`dash${stream}`] = join(dir, `dash${stream}.mp4`);
    await writeFile(files[`dash${stream}`]!, Buffer.concat(await Promise.all(parts.map((p) => readFile(join(dash, p))))));
  }
  return files;
}

describe('fragmented MP4', () => {
  it('decodes every frame and all the audio, equal to the same clip unfragmented (exact and fast resize)', async () => {
    await withTmpDir(async (dir) => {
      const files = await fragmentedVariants(dir);
      for (const resize of ['exact', 'fast'] as const) {
        // The audio stream's own DASH segments hold no video: decoded as an audio model's input.
        const decode = async (name: string): Promise<DecodedClip> =>
          decodeClip(await readFile(files[name]!), resolveDecodeOptions({ resize, video: name !== 'dash1' }), { key: name });
        const plain = await decode('plain');
        expect(plain.video!.decodedFrames).toBe(150);
        for (const name of ['frag', 'frag1s', 'cmaf', 'dash0', 'dash1']) {
          const clip = await decode(name);
          const what = `${name} (${resize})`;
          if (name === 'dash1') {
            expect(clip.video, what).toBeNull();
          } else {
            expect(clip.video!.decodedFrames, what).toBe(150);
            expect(Buffer.from(clip.video!.frames).equals(Buffer.from(plain.video!.frames)), what).toBe(true);
          }
          expect(clip.durationSeconds, what).toBeCloseTo(6, 1);
          if (name === 'dash0') expect(clip.audio, what).toBeNull();
          else expect(Buffer.from(clip.audio!.pcm.buffer).equals(Buffer.from(plain.audio!.pcm.buffer)), what).toBe(true);
        }
      }
    });
  }, 120_000);

  it('predicts the frame count from the fragments (moof/trun), not 0 from the empty index', async () => {
    await withTmpDir(async (dir) => {
      const files = await fragmentedVariants(dir);
      for (const name of ['plain', 'frag', 'frag1s', 'cmaf', 'dash0']) {
        const data = await readFile(files[name]!);
        expect(predictFrameCount(data, 10), name).toBe(150);
        expect(predictFrameCount(data, 2), name).toBe(50);
      }
      expect(predictFrameCount(await readFile(files.dash1!), 10)).toBeNull();
    });
  }, 120_000);

  it('extract gives a fragmented clip the same visual and audio features as the plain one', async () => {
    await withTmpDir(async (dir) => {
      const files = await fragmentedVariants(dir);
      const tar = join(dir, 'shard-000000.tar');
      await makeTar(tar, [
        { name: 'plain_0.mp4', data: await readFile(files.plain!) },
        { name: 'frag_0.mp4', data: await readFile(files.frag1s!) },
        { name: 'cmaf_0.mp4', data: await readFile(files.cmaf!) },
      ]);
      const out = join(dir, 'out');
      const warnings: string[] = [];
      const report = await extract({ tarPath: tar, outputDir: out, parallelDecoders: 1, intraOpThreads: 1, onWarning: (w) => warnings.push(w.message) });
      expect(warnings).toEqual([]);
      expect(report.clipsWritten).toBe(3);
      const [plain, ...others] = await readFeatureShard(join(out, 'shard-000000.msgpack'));
      const bytes = (sets: typeof plain.audio_features) =>
        sets.map((s) => Object.entries(s.feat_array).map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]));
      for (const r of others) {
        expect(r.audio_features, r.filename).toHaveLength(1);
        expect(bytes(r.audio_features), r.filename).toEqual(bytes(plain!.audio_features));
        expect(bytes(r.visual_features), r.filename).toEqual(bytes(plain!.visual_features));
      }
    });
  }, 180_000);
});

describe('audio shorter than one VGGish example', () => {
  it('gets an audio_note and a warning; a clip without audio stays as it is (msgpack and json)', async () => {
    await withTmpDir(async (dir) => {
      const short = join(dir, 'short.mp4');
      const silent = join(dir, 'silent.mp4');
      const video = ['-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=25:d=3'];
      // 3 s of picture, 0.5 s of sound: less than the 0.975 s one VGGish example needs.
      ffmpeg([...video, '-f', 'lavfi', '-i', 'sine=f=440:d=0.5', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', short]);
      ffmpeg([...video, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', silent]);
      const tar = join(dir, 'shard-000000.tar');
      await makeTar(tar, [
        { name: 'short_0.mp4', data: await readFile(short) },
        { name: 'silent_0.mp4', data: await readFile(silent) },
      ]);
      for (const format of ['msgpack', 'json'] as const) {
        const warnings: ClipstreamError[] = [];
        const out = join(dir, `out-${format}`);
        const report = await extract({ tarPath: tar, outputDir: out, format, parallelDecoders: 1, intraOpThreads: 1, onWarning: (w) => warnings.push(w) });
        expect(report.clipsWritten).toBe(2);
        const [shortRecord, silentRecord] = await readFeatureShard(join(out, `shard-000000.${format}`));
        expect(shortRecord!.audio_features).toEqual([]);
        expect(shortRecord!.audio_note).toMatch(/^audio too short: 0\.5\d s, less than one 0\.975 s VGGish example$/);
        expect(shortRecord!.visual_features).toHaveLength(1);
        expect(silentRecord!.audio_features).toEqual([]);
        expect(silentRecord!.audio_note).toBeUndefined();
        expect('audio_note' in silentRecord!).toBe(false);
        expect(warnings.map((w) => w.message)).toEqual([
          expect.stringMatching(/^short_0\.mp4: audio too short: 0\.5\d s, less than one 0\.975 s VGGish example; no audio features$/),
        ]);
      }
    });
  }, 180_000);
});

describe('--color_matrix', () => {
  it('reaches the library as colorMatrix (default bt601)', () => {
    const args = { tar_path: ['x.tar'], out_path: 'o', decode_timeout: 30, visual_model: 'none', audio_model: 'vggish_small.onnx' };
    expect(extractOptionsFromArgs({ ...args, color_matrix: 'source' }).colorMatrix).toBe('source');
    expect(extractOptionsFromArgs(args).colorMatrix ?? 'bt601').toBe('bt601');
  });
});
