import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/util/args.js';
import { clipsSpec, runClips } from '../../src/cli/clips-command.js';
import { parseCsv } from '../../src/util/csv.js';
import type { ClipstreamError } from '../../src/errors.js';
import { clips } from '../../src/jobs/clips.js';
import { liveChildProcesses } from '../../src/media/process.js';
import { readShards } from '../../src/shards/tar-reader.js';
import { isSample, type Sample, type StreamItem } from '../../src/types.js';
import { frameHashes, makeSource } from '../helpers/clip-sources.js';

let dir: string;
let server: http.Server;
let base: string;
let requests = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-job-'));
  await makeSource(join(dir, 'vid_A.mp4'), { seconds: 12, fps: 10, audioHz: 440 });
  await makeSource(join(dir, 'served.mp4'), { seconds: 6, fps: 10 });
  await writeFile(join(dir, 'bad.mp4'), 'this is not a video');
  server = http.createServer((req, res) => {
    requests++;
    if (!req.url?.startsWith('/v/web.mp4')) {
      res.writeHead(404).end();
      return;
    }
    stat(join(dir, 'served.mp4')).then((st) => {
      res.writeHead(200, { 'content-length': st.size, 'content-type': 'video/mp4' });
      createReadStream(join(dir, 'served.mp4')).pipe(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await writeFile(
    join(dir, 'sources.csv'),
    `${['video_id,path,url', 'vid_A,vid_A.mp4,', `web,,${base}/v/web.mp4`, 'broken,bad.mp4,', 'dQw4w9WgXcQ,,', `gone,,${base}/v/gone.mp4`].join('\n')}\n`,
  );
  // Sekai names; deliberately out of order and one running past the end (120 frames).
  await writeFile(join(dir, 'spans.csv'), 'videoFile\nvid_A_100_130\nvid_A_0_30\nvid_A_45_75\nweb_10_40\nweb_70_90\n');
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

async function readAll(tars: string[]): Promise<Sample[]> {
  const items: StreamItem[] = [];
  for await (const item of readShards(tars, {
    onWarning: (w) => {
      throw w;
    },
  }))
    items.push(item as StreamItem);
  return items.filter(isSample);
}

describe('clips job', () => {
  const out = () => join(dir, 'out');
  const options = () => ({
    sources: join(dir, 'sources.csv'),
    spans: join(dir, 'spans.csv'),
    outputDir: out(),
    shardSize: 2,
    parallelVideos: 2,
    crf: 0,
    preset: 'ultrafast',
    ytDlpPath: join(dir, 'no-such-yt-dlp'),
    downloadRetryDelayMs: 10,
    onWarning: (w: ClipstreamError) => warnings.push(w.message),
  });
  const warnings: string[] = [];

  it('sources CSV -> clips, tables and shards that the tar reader joins', async () => {
    const report = await clips(options());
    expect(report.clipsMade).toBe(4);
    const videos = parseCsv(await readFile(join(out(), 'videos.csv'), 'utf8'));
    expect(videos.map((v) => [v.video_id, v.downloaded, v.failed, v.num_clips])).toEqual([
      ['vid_A', 'true', 'false', '3'],
      ['web', 'true', 'false', '1'],
      ['broken', 'true', 'true', '0'],
      ['dQw4w9WgXcQ', 'false', 'true', '0'],
      ['gone', 'false', 'true', '0'],
    ]);
    expect(videos[0]).toMatchObject({ duration: '12', error: '' });
    expect(videos[1]!.path).toBe(join(out(), 'downloads', 'web.mp4'));
    expect(videos[2]!.error).toMatch(/^video broken: cannot probe .*bad\.mp4: /);
    expect(videos[3]!.error).toMatch(/^video dQw4w9WgXcQ: dQw4w9WgXcQ: YouTube videos need yt-dlp, which is not installed/);
    expect(videos[4]!.error).toBe(`video gone: download of ${base}/v/gone.mp4 failed: HTTP 404 Not Found`);

    // Spans are sorted numerically; the one past the end is cut and reported; web_70_90 starts past the end (60 frames).
    const rows = parseCsv(await readFile(join(out(), 'clips.csv'), 'utf8'));
    expect(rows.map((r) => [r.clip_id, r.start_frame, r.end_frame, r.start_s, r.end_s, r.num_frames])).toEqual([
      ['vid_A_0_30', '0', '30', '0', '3', '30'],
      ['vid_A_45_75', '45', '75', '4.5', '7.5', '30'],
      ['vid_A_100_120', '100', '120', '10', '12', '20'],
      ['web_10_40', '10', '40', '1', '4', '30'],
    ]);
    expect(rows[0]).toMatchObject({ video_id: 'vid_A', fps: '10', width: '160', height: '120', video_codec: 'h264', audio_codec: 'aac' });
    expect(rows[3]).toMatchObject({ audio_codec: '' });
    expect(Number(rows[0]!.size_bytes)).toBe((await stat(join(out(), 'clips', 'vid_A_0_30.mp4'))).size);
    expect(report.issues.map((i) => `${i.videoId} ${i.span} ${i.action}`)).toEqual(['vid_A frames 100-130 clipped', 'web frames 70-90 dropped']);
    expect(parseCsv(await readFile(join(out(), 'span_issues.csv'), 'utf8'))).toHaveLength(2);
    expect(warnings.some((w) => w.includes('video vid_A: span frames 100-130 clipped'))).toBe(true);

    expect(report.shards.map((s) => [s.tar.slice(out().length), s.clips, s.written])).toEqual([
      ['/shards/shard-000000.tar', 2, true],
      ['/shards/shard-000001.tar', 2, true],
    ]);
    const samples = await readAll(report.shards.map((s) => s.tar));
    expect(samples.map((s) => [s.__key__, s.entry.id, s.entry.segment])).toEqual([
      ['vid_A_0_30', 'vid_A', [0, 3]],
      ['vid_A_45_75', 'vid_A', [4.5, 7.5]],
      ['vid_A_100_120', 'vid_A', [10, 12]],
      ['web_10_40', 'web', [1, 4]],
    ]);
    expect(Object.keys(samples[0]!.files)).toEqual(['mp4']);
    // Lossless: the clip is exactly the source's frames 45..74.
    const src = await frameHashes(join(dir, 'vid_A.mp4'));
    expect(await frameHashes(join(out(), 'clips', 'vid_A_45_75.mp4'))).toEqual(src.slice(45, 75));
    // Nothing temporary is left anywhere.
    expect((await readdir(join(out(), 'clips'))).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(await readdir(join(out(), '.work'))).toEqual([]);
    expect(await readdir(join(out(), 'downloads'))).toEqual(['web.mp4']);
    expect(liveChildProcesses()).toBe(0);
  });

  it('a re-run skips every finished clip and shard and downloads nothing', async () => {
    const before = await stat(join(out(), 'clips', 'vid_A_0_30.mp4'));
    const tarBefore = await stat(join(out(), 'shards', 'shard-000000.tar'));
    requests = 0;
    const report = await clips(options());
    expect(report.clipsMade).toBe(0);
    expect(report.clips).toHaveLength(4);
    expect(report.shards.map((s) => s.written)).toEqual([false, false]);
    expect((await stat(join(out(), 'clips', 'vid_A_0_30.mp4'))).mtimeMs).toBe(before.mtimeMs);
    expect((await stat(join(out(), 'shards', 'shard-000000.tar'))).mtimeMs).toBe(tarBefore.mtimeMs);
    expect(requests).toBe(1); // only the 404 is asked again
  });

  it('re-makes only a missing clip', async () => {
    await rm(join(out(), 'clips', 'vid_A_45_75.mp4'));
    const report = await clips(options());
    expect(report.clipsMade).toBe(1);
    const src = await frameHashes(join(dir, 'vid_A.mp4'));
    expect(await frameHashes(join(out(), 'clips', 'vid_A_45_75.mp4'))).toEqual(src.slice(45, 75));
  });

  it('an abort (Ctrl-C) stops the job with no ffmpeg left and no half-written clip', async () => {
    await makeSource(join(dir, 'long.mp4'), { seconds: 40, fps: 25, size: '320x240' });
    await writeFile(join(dir, 'long.csv'), 'path\nlong.mp4\n');
    const ac = new AbortController();
    const p = clips({
      sources: join(dir, 'long.csv'),
      outputDir: join(dir, 'aborted'),
      clipLenS: 5,
      preset: 'veryslow',
      signal: ac.signal,
      onWarning: () => {},
    });
    setTimeout(() => ac.abort(), 500);
    await expect(p).rejects.toThrow('aborted');
    expect(liveChildProcesses()).toBe(0);
    const left = await readdir(join(dir, 'aborted', 'clips')).catch(() => []);
    expect(left).toEqual([]);
  });

  it('rejects contradictory plans and bad options up front', async () => {
    await expect(clips({ ...options(), clipLenS: 2 })).rejects.toThrow(
      'Expected exactly one of options.spans, options.clipLenS, options.partMinutes or options.split but received 2',
    );
    await expect(clips({ ...options(), parallelVideos: 0 })).rejects.toThrow(
      'Expected integer between 1 and 256 for options.parallelVideos but received 0 of type number',
    );
  });
});

describe('clipstream clips (CLI)', () => {
  it('fixed stride, --num_videos, --ignore_audio, folder output', async () => {
    const args = parseArgs(
      [
        `--sources=${join(dir, 'sources.csv')}`,
        `--out_dir=${join(dir, 'cli')}`,
        '--clip_len_s=4',
        '--clip_stride_s=5',
        '--min_clip_length_s=3',
        '--num_videos',
        '1',
        '--ignore_audio',
        '--quiet',
        '--preset=ultrafast',
      ],
      clipsSpec,
    );
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    let code: number;
    try {
      code = await runClips(args, new AbortController().signal);
    } finally {
      process.stderr.write = orig;
    }
    expect(code).toBe(0);
    // 12 s: starts 0, 5, 10; the tail 10-12 s is shorter than 3 s.
    expect((await readdir(join(dir, 'cli', 'clips'))).sort()).toEqual(['vid_A_0_40.mp4', 'vid_A_50_90.mp4']);
    expect(writes.join('')).toMatch(/clipstream clips: 1 video\(s\) done, 0 failed; 2 clips \(2 made now, 0 already there\) with libx264/);
    const rows = parseCsv(await readFile(join(dir, 'cli', 'clips.csv'), 'utf8'));
    expect(rows.map((r) => r.audio_codec)).toEqual(['', '']);
  });

  it('names unknown options', () => {
    expect(() => parseArgs(['--sources=a', '--out_dir=b', '--clip_len=3'], clipsSpec)).toThrow(
      /^clips: unknown option --clip_len \(did you mean --clip_len_s, /,
    );
  });
});
