import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveChildProcesses, runTool, runToolOrThrow, streamTool, ToolFailure, toolOutput } from '../../src/media/process.js';

let dir: string;
let segv: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'process-failures-'));
  // A real child killed by a signal, as the bundled ffprobe is on MPEG-TS.
  segv = join(dir, 'segv.sh');
  await writeFile(segv, '#!/bin/sh\necho "about to crash on $1" >&2\nkill -SEGV $$\n');
  await chmod(segv, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Both routes: the spawn helper (default on Linux) and a direct spawn.
describe.each(['helper', 'direct'])('a child killed by a signal or exiting at once (%s spawn)', (route) => {
  beforeAll(() => {
    if (route === 'direct') process.env.CLIPSTREAM_SPAWN = 'direct';
  });
  afterAll(() => {
    delete process.env.CLIPSTREAM_SPAWN;
  });

  it('runTool reports the signal instead of hanging', async () => {
    const r = await runTool(segv, ['a.ts'], { timeoutMs: 10_000 });
    expect(r).toMatchObject({ code: null, signal: 'SIGSEGV' });
    expect(r.stderr).toContain('about to crash on a.ts');
  });

  it('a stdout sink gets every byte in order, from runs side by side, and none reaches `stdout`', async () => {
    // Three children at once each write 6 MB of their own pattern (the helper route reads them all
    // into one shared buffer); each sink copies what it is given, as the contract says.
    const script = (seed: number) => `const b=Buffer.alloc(6<<20);for(let i=0;i<b.length;i++)b[i]=(i*${seed}+(i>>>9))&255;process.stdout.write(b)`;
    const runs = [3, 5, 7].map(async (seed) => {
      const got: Buffer[] = [];
      let calls = 0;
      const r = await runTool(process.execPath, ['-e', script(seed)], {
        timeoutMs: 30_000,
        stdoutSink: () => (chunk) => {
          calls++;
          got.push(Buffer.from(chunk));
        },
      });
      return { seed, r, got: Buffer.concat(got), calls };
    });
    for (const { seed, r, got, calls } of await Promise.all(runs)) {
      expect(r.code).toBe(0);
      expect(r.stdout.length).toBe(0);
      expect(calls).toBeGreaterThan(1);
      expect(got.length).toBe(6 << 20);
      const want = Buffer.alloc(6 << 20);
      for (let i = 0; i < want.length; i++) want[i] = (i * seed + (i >>> 9)) & 255;
      expect(got.equals(want)).toBe(true);
    }
  });

  it.each([1, 2, 3])('runTool settles when a child with %i extra pipe(s) exits at once without output', async (extra) => {
    for (let i = 0; i < 5; i++) {
      const r = await runTool('/bin/sh', ['-c', 'exit 3'], { extraOutputs: extra, timeoutMs: 10_000 });
      expect(r.code).toBe(3);
    }
  });

  it('runToolOrThrow throws a ToolFailure with the signal, the stderr tail and the file', async () => {
    const err = await runToolOrThrow(segv, ['x.ts'], { what: 'cannot probe', where: { file: '/videos/x.ts' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolFailure);
    const f = err as ToolFailure;
    expect(f).toMatchObject({
      exitCode: null,
      signal: 'SIGSEGV',
      killedBy: undefined,
      file: '/videos/x.ts',
      stderrTail: 'about to crash on x.ts',
      code: 'ERR_DECODE',
    });
    expect(f.message).toBe('/videos/x.ts: cannot probe: segv.sh was killed by SIGSEGV: about to crash on x.ts');
  });

  it('runToolOrThrow names a non-zero exit and a stall', async () => {
    await expect(runToolOrThrow('/bin/sh', ['-c', 'echo bad input >&2; exit 4'], { what: 'cannot decode' })).rejects.toThrow(
      'cannot decode: sh exited with 4: bad input',
    );
    const stall = await runToolOrThrow('/bin/sh', ['-c', 'exec sleep 5'], { what: 'cannot decode', stallTimeoutMs: 300 }).catch(
      (e: unknown) => e as ToolFailure,
    );
    expect(stall).toMatchObject({ killedBy: 'stall', code: 'ERR_DECODE_TIMEOUT' });
    expect(liveChildProcesses()).toBe(0);
  });

  it('toolOutput yields fixed-size chunks as read, then throws the failure', async () => {
    const chunks: number[] = [];
    const run = async () => {
      for await (const c of toolOutput('/bin/sh', ['-c', 'printf abcdefgh; kill -SEGV $$'], { chunkBytes: 3, what: 'cannot decode frames' }))
        chunks.push(c.length);
    };
    await expect(run()).rejects.toMatchObject({ signal: 'SIGSEGV' });
    expect(chunks).toEqual([3, 3]);
  });

  it('toolOutput reports a child that exits at once without output', async () => {
    for (let i = 0; i < 5; i++) {
      const run = async () => {
        for await (const _ of toolOutput('/bin/sh', ['-c', 'echo no such file >&2; exit 3'], {
          chunkBytes: 10,
          what: 'cannot decode',
          where: { file: 'x.mp4' },
        }));
      };
      await expect(run()).rejects.toThrow('x.mp4: cannot decode: sh exited with 3: no such file');
    }
  });

  it('toolOutput does not count a slow consumer as a stall, and stopping early kills the child', async () => {
    let n = 0;
    for await (const c of toolOutput('/bin/sh', ['-c', 'head -c 400000 /dev/zero'], { chunkBytes: 100_000, what: 'x', stallTimeoutMs: 200 })) {
      expect(c.length).toBe(100_000);
      n++;
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(n).toBe(4);
    for await (const _ of toolOutput('/bin/sh', ['-c', 'cat /dev/zero'], { chunkBytes: 1000, what: 'x' })) break;
    expect(liveChildProcesses()).toBe(0);
  });

  it('streamTool: a child that dies while fed fails the write with its signal and stderr', async () => {
    const t = streamTool('/bin/sh', ['-c', 'head -c 10 >/dev/null; echo crashed >&2; kill -SEGV $$'], {
      what: 'cannot encode',
      code: 'ERR_IO',
      stdin: true,
      stdout: 'ignore',
      where: { file: 'out.mp4' },
    });
    const feed = async () => {
      for (let i = 0; i < 1000; i++) await t.write(new Uint8Array(65_536));
    };
    const err = (await feed().catch((e: unknown) => e)) as ToolFailure;
    expect(err).toBeInstanceOf(ToolFailure);
    expect(err).toMatchObject({ signal: 'SIGSEGV', code: 'ERR_IO', file: 'out.mp4' });
    expect(err.message).toBe('out.mp4: cannot encode: sh was killed by SIGSEGV: crashed');
    await t.kill();
    expect(liveChildProcesses()).toBe(0);
  });

  it('streamTool: a child that stops reading its stdin is a stall; a slow producer is not', async () => {
    const hung = streamTool('/bin/sh', ['-c', 'exec sleep 30'], { what: 'cannot encode', stdin: true, stdout: 'ignore', stallTimeoutMs: 300 });
    const feed = async () => {
      for (let i = 0; i < 1000; i++) await hung.write(new Uint8Array(65_536));
    };
    expect(await feed().catch((e: unknown) => e)).toMatchObject({ killedBy: 'stall', code: 'ERR_DECODE_TIMEOUT' });
    const slow = streamTool('/bin/sh', ['-c', 'wc -c'], { what: 'x', stdin: true, stallTimeoutMs: 200 });
    for (let i = 0; i < 3; i++) {
      await slow.write(new Uint8Array(1000));
      await new Promise((r) => setTimeout(r, 400));
    }
    const out = (async () => {
      const chunks: Buffer[] = [];
      for await (const c of slow.chunks(1)) chunks.push(c);
      return Buffer.concat(chunks).toString().trim();
    })();
    await slow.finish();
    expect(await out).toBe('3000');
    const exit = streamTool('/bin/sh', ['-c', 'cat >/dev/null; echo bad input >&2; exit 3'], { what: 'cannot join', stdin: true, stdout: 'ignore' });
    await exit.write(new Uint8Array(10));
    await expect(exit.finish()).rejects.toMatchObject({ exitCode: 3, stderrTail: 'bad input' });
    expect(liveChildProcesses()).toBe(0);
  });
});

describe('a run that never settles', () => {
  it('exits 1 with a message instead of 0 when nothing is left to wait for', async () => {
    const { spawnSync } = await import('node:child_process');
    const script = "import { guardUnsettled } from './src/cli/faces-command.ts'; guardUnsettled(new Promise(() => {}), 'faces');";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toContain('clipstream faces: internal error: the run stopped before it finished');
    expect(r.status).toBe(1);
  });
});
