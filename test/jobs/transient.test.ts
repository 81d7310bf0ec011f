/**
 * Starved is not hung, and transient is not permanent (issue 18, defect 14 and item 5), in the
 * process runner every job's ffmpeg goes through: a real ffmpeg stopped longer than its stall
 * limit finishes; one killed from outside is retried; one spinning without output is killed and
 * its failure marked transient; a crash on its input stays permanent.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransient } from '../../src/errors.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { liveChildProcesses, retryTransient, runTool, runToolOrThrow, streamTool, ToolFailure } from '../../src/media/process.js';
import { waitForChild } from '../helpers/children.js';

// Three seconds of frames at their own pace (-re): long enough to be stopped mid-way.
const PACED = ['-hide_banner', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=25:duration=3', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'];
const FRAME = 32 * 32;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'transient-'));
  process.env.CLIPSTREAM_RETRY_BACKOFF_MS = '50';
});
afterAll(async () => {
  delete process.env.CLIPSTREAM_RETRY_BACKOFF_MS;
  await rm(dir, { recursive: true, force: true });
});

describe.each(['helper', 'direct'])('the watchdog and transient failures (%s spawn)', (route) => {
  beforeAll(() => {
    if (route === 'direct') process.env.CLIPSTREAM_SPAWN = 'direct';
  });
  afterAll(() => {
    delete process.env.CLIPSTREAM_SPAWN;
  });

  it('a decode stopped (SIGSTOP) for 5x its stall limit is not killed and gives every frame', async () => {
    const running = runTool(ffmpegPath(), PACED, { stallTimeoutMs: 400 });
    const pid = await waitForChild('ffmpeg');
    await sleep(300);
    process.kill(pid, 'SIGSTOP');
    await sleep(2000);
    process.kill(pid, 'SIGCONT');
    const r = await running;
    expect(r.killedBy).toBeUndefined();
    expect(r.code).toBe(0);
    expect(r.attempts).toBe(1);
    expect(r.stdout.length).toBe(75 * FRAME);
  });

  it('a decode killed from outside (kill -9) is retried in the run and gives every frame', async () => {
    const running = runTool(ffmpegPath(), PACED, { stallTimeoutMs: 5000 });
    const pid = await waitForChild('ffmpeg');
    await sleep(200);
    process.kill(pid, 'SIGKILL');
    const r = await running;
    expect(r).toMatchObject({ code: 0, signal: null, attempts: 2 });
    expect(r.stdout.length).toBe(75 * FRAME);
  });

  it('a child burning CPU without output is killed as hung, retried with a longer limit, and its failure is transient', async () => {
    const started = Date.now();
    const err = await runToolOrThrow('/bin/sh', ['-c', 'while :; do :; done'], { what: 'cannot decode', stallTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolFailure);
    expect(err).toMatchObject({ killedBy: 'stall', code: 'ERR_DECODE_TIMEOUT', transient: true });
    expect(isTransient(err)).toBe(true);
    // 300 + 600 + 1200 ms of spinning: three tries, each limit doubled.
    expect(Date.now() - started).toBeGreaterThan(2000);
    expect(liveChildProcesses()).toBe(0);
  });

  it('a crash on the input (SIGSEGV) and a non-zero exit stay permanent and are not retried', async () => {
    const segv = join(dir, 'segv.sh');
    await writeFile(segv, '#!/bin/sh\nkill -SEGV $$\n');
    await chmod(segv, 0o755);
    const r = await runTool(segv, []);
    expect(r).toMatchObject({ signal: 'SIGSEGV', attempts: 1 });
    expect(r.transient).toBeUndefined();
    const bad = await runToolOrThrow('/bin/sh', ['-c', 'exit 1'], { what: 'cannot decode' }).catch((e: unknown) => e);
    expect(isTransient(bad)).toBe(false);
  });

  it('a streamed encoder killed from outside fails as transient; retryTransient runs it again', async () => {
    let tries = 0;
    const out = await retryTransient(async () => {
      tries++;
      const tool = streamTool(ffmpegPath(), PACED, { what: 'cannot decode', stallTimeoutMs: 5000 });
      if (tries === 1) void waitForChild('ffmpeg').then((pid) => setTimeout(() => process.kill(pid, 'SIGKILL'), 200));
      let n = 0;
      for await (const c of tool.chunks(FRAME)) n += c.length;
      await tool.finish();
      return n;
    });
    expect(tries).toBe(2);
    expect(out).toBe(75 * FRAME);
  });
});

describe('a spawn refused for want of file descriptors (EMFILE)', () => {
  it.each(['helper', 'direct'])('is a transient failure, retried, then reported as transient (%s spawn)', (route) => {
    // A process of its own, out of descriptors: this one must stay healthy.
    const script = join(dir, 'emfile.mjs');
    const code = `
      import { openSync } from 'node:fs';
      const { runTool } = await import(${JSON.stringify(new URL('../../dist/media/process.js', import.meta.url).href)});
      const held = [];
      try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
      try { await runTool('/bin/true', []); console.log('{"ran":true}'); }
      catch (e) { console.log(JSON.stringify({ message: e.message, transient: e.transient })); }
      process.exit(0);`;
    writeFileSync(script, code);
    const r = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, CLIPSTREAM_SPAWN: route === 'direct' ? 'direct' : '', CLIPSTREAM_RETRY_BACKOFF_MS: '10' },
    });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.message).toMatch(/EMFILE/);
    expect(out.transient).toBe(true);
  });
});
