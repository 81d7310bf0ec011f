import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, downloadYouTube } from '../../src/media/download.js';

const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/**
 * A real server with the behaviours a downloader meets: range requests, a connection that
 * drops midway on the first try, no Content-Length, 404, and a flaky 503.
 */
let server: http.Server;
let base: string;
const ranges: (string | undefined)[] = [];
let drops = 0;
let flaky = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    ranges.push(req.headers.range);
    const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = m && !url.startsWith('/norange') ? Number(m[1]) : 0;
    if (url.startsWith('/missing')) {
      res.writeHead(404).end();
      return;
    }
    if (url.startsWith('/flaky') && flaky-- > 0) {
      res.writeHead(503).end();
      return;
    }
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'video/mp4', 'accept-ranges': 'bytes' };
    if (!url.startsWith('/chunked')) headers['content-length'] = BODY.length - start;
    if (start > 0) headers['content-range'] = `bytes ${start}-${BODY.length - 1}/${BODY.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    if (url.startsWith('/drop') && drops-- > 0) {
      // Half of what is left, then the socket dies: the client must keep the bytes and resume.
      res.write(BODY.subarray(start, start + Math.floor((BODY.length - start) / 2)), () => res.destroy());
      return;
    }
    res.end(BODY.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-dl-'));
  ranges.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

describe('downloadFile', () => {
  it('downloads whole files and does not fetch an existing one again', async () => {
    const dest = join(dir, 'a.mp4');
    expect(await downloadFile(`${base}/plain.mp4`, dest)).toEqual({ bytes: BODY.length, resumed: 0, attempts: 1 });
    expect(md5(await readFile(dest))).toBe(md5(BODY));
    expect(await downloadFile(`${base}/plain.mp4`, dest)).toMatchObject({ attempts: 0 });
    expect(ranges).toHaveLength(1);
  });

  it('resumes with a Range request after the connection drops midway', async () => {
    drops = 2;
    const dest = join(dir, 'b.mp4');
    const r = await downloadFile(`${base}/drop.mp4`, dest, { retryDelayMs: 10 });
    expect(r).toEqual({ bytes: BODY.length, resumed: 2, attempts: 3 });
    expect(md5(await readFile(dest))).toBe(md5(BODY));
    expect(ranges[0]).toBeUndefined();
    // Bytes in flight when the socket died are lost; the resume starts where the file ends.
    const offset = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(BODY.length / 2);
    expect(await readdir(dir)).toEqual(['b.mp4']);
  });

  it('resumes a .part file left by an earlier run', async () => {
    const dest = join(dir, 'c.mp4');
    await writeFile(`${dest}.part`, BODY.subarray(0, 1000));
    expect(await downloadFile(`${base}/plain.mp4`, dest)).toEqual({ bytes: BODY.length, resumed: 1, attempts: 1 });
    expect(ranges).toEqual(['bytes=1000-']);
    expect(md5(await readFile(dest))).toBe(md5(BODY));
  });

  it('starts over when the server ignores the range', async () => {
    const dest = join(dir, 'd.mp4');
    await writeFile(`${dest}.part`, Buffer.alloc(1000, 9));
    await downloadFile(`${base}/norange.mp4`, dest);
    expect(md5(await readFile(dest))).toBe(md5(BODY));
  });

  it('keeps the partial file but no final name when every retry fails', async () => {
    drops = 10;
    const dest = join(dir, 'e.mp4');
    await expect(downloadFile(`${base}/drop.mp4`, dest, { retries: 1, retryDelayMs: 10 })).rejects.toThrow(
      `download of ${base}/drop.mp4 failed after 2 attempts: connection`,
    );
    expect(await readdir(dir)).toEqual(['e.mp4.part']);
    drops = 0;
  });

  it('enforces the size limit from Content-Length and while streaming', async () => {
    await expect(downloadFile(`${base}/plain.mp4`, join(dir, 'f.mp4'), { maxBytes: 1000 })).rejects.toThrow(
      `download of ${base}/plain.mp4 failed: the file is ${BODY.length} bytes, over the size limit of 1000 bytes`,
    );
    await expect(downloadFile(`${base}/chunked.mp4`, join(dir, 'g.mp4'), { maxBytes: 1000 })).rejects.toThrow(
      'the download passed the size limit of 1000 bytes',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('does not retry a 404 but retries a 503', async () => {
    await expect(downloadFile(`${base}/missing.mp4`, join(dir, 'h.mp4'), { retryDelayMs: 10 })).rejects.toThrow(
      `download of ${base}/missing.mp4 failed: HTTP 404 Not Found`,
    );
    expect(ranges).toHaveLength(1);
    flaky = 2;
    expect(await downloadFile(`${base}/flaky.mp4`, join(dir, 'i.mp4'), { retryDelayMs: 10 })).toMatchObject({ attempts: 3 });
    expect((await stat(join(dir, 'i.mp4'))).size).toBe(BODY.length);
  });
});

it('YouTube without yt-dlp fails with a clear message for that video', async () => {
  const d = await mkdtemp(join(tmpdir(), 'clips-yt-'));
  await expect(downloadYouTube('dQw4w9WgXcQ', join(d, 'x.mp4'), { ytDlpPath: join(d, 'no-yt-dlp') })).rejects.toThrow(
    `dQw4w9WgXcQ: YouTube videos need yt-dlp, which is not installed (or not at '${join(d, 'no-yt-dlp')}')`,
  );
  expect(await readdir(d)).toEqual([]);
  await rm(d, { recursive: true, force: true });
});
