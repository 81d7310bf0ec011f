/**
 * Regenerates the committed test fixtures: synthetic clips made with the bundled ffmpeg,
 * then bundled into two ACAV-style shards with `bundleClips`.
 *
 *   npx tsx scripts/make-fixtures.ts
 *
 * Output is deterministic (bitexact flags, one encoder thread, no metadata, seeded
 * corruption), so re-running it should leave `git status` clean on the same ffmpeg build.
 * The clip table lives in fixtures/index.ts; this script reads it, so the two cannot drift.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { bundleClips } from '../src/shards/bundle.js';
import { FIXTURE_CLIPS, FIXTURE_CLIPS_DIR, FIXTURE_SHARDS_DIR, type FixtureClip } from '../fixtures/index.js';

const run = promisify(execFile);

/** Same shard split as the committed files: 12 clips, 6 per shard. */
const SHARD_SIZE = 6;

function ffmpegArgs(clip: FixtureClip, out: string): string[] {
  const video = `${clip.pattern}=size=${clip.width}x${clip.height}:rate=${clip.fps}:duration=${clip.duration}`;
  const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', video];
  if (clip.audio) {
    const a = clip.audio;
    args.push('-f', 'lavfi', '-i', `sine=frequency=${a.frequency}:sample_rate=${a.sampleRate}:duration=${clip.duration}`);
  }
  args.push('-map', '0:v');
  if (clip.audio) args.push('-map', '1:a');
  args.push(
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    String(clip.crf),
    '-pix_fmt',
    'yuv420p',
    // One thread and bitexact: the same ffmpeg build gives the same bytes on every run.
    '-threads',
    '1',
    '-fflags',
    '+bitexact',
    '-flags:v',
    '+bitexact',
    '-map_metadata',
    '-1',
  );
  if (clip.audio) {
    args.push('-c:a', 'aac', '-b:a', '32k', '-ac', String(clip.audio.channels), '-flags:a', '+bitexact');
  }
  if (clip.faststart) args.push('-movflags', '+faststart');
  args.push(out);
  return args;
}

/**
 * Overwrites the whole `mdat` payload with seeded noise. The `moov` index stays intact,
 * so ffprobe still reports a duration (and bundleClips keeps the clip), but decoding
 * fails: ffmpeg exits non-zero without producing a single frame.
 */
function corruptMdat(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  let off = 0;
  while (off + 8 <= out.length) {
    const size = out.readUInt32BE(off);
    const type = out.toString('latin1', off + 4, off + 8);
    if (size < 8) throw new Error(`unexpected mp4 box size ${size} at ${off}`);
    if (type === 'mdat') {
      let seed = 0x2545f491;
      for (let i = off + 8; i < off + size && i < out.length; i++) {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        out[i] = seed & 0xff;
      }
      return out;
    }
    off += size;
  }
  throw new Error('no mdat box found');
}

async function main(): Promise<void> {
  const ffmpeg = ffmpegPath();
  await rm(FIXTURE_CLIPS_DIR, { recursive: true, force: true });
  await rm(FIXTURE_SHARDS_DIR, { recursive: true, force: true });
  await mkdir(FIXTURE_CLIPS_DIR, { recursive: true });

  // Sequential on purpose: the machine has two shared cores.
  for (const clip of FIXTURE_CLIPS) {
    const out = join(FIXTURE_CLIPS_DIR, clip.file);
    await run(ffmpeg, ffmpegArgs(clip, out));
    if (clip.corrupt) await writeFile(out, corruptMdat(await readFile(out)));
    process.stdout.write(`made ${clip.file}\n`);
  }

  const summary = await bundleClips({ inputDir: FIXTURE_CLIPS_DIR, outputDir: FIXTURE_SHARDS_DIR, shardSize: SHARD_SIZE });
  if (summary.skipped.length > 0 || summary.shards.length !== 2) {
    throw new Error(`fixture bundling went wrong: ${JSON.stringify(summary)}`);
  }
  for (const s of summary.shards) process.stdout.write(`bundled ${s.tar} (${s.clips} clips)\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
