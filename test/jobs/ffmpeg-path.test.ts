import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';
import { ffmpegChoice, ffprobeChoice, toolMajorVersion } from '../../src/media/ffmpeg-path.js';

describe('toolMajorVersion', () => {
  it.each([
    ['ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers', 5],
    ['ffmpeg version n6.1.1 Copyright (c) 2000-2023 the FFmpeg developers', 6],
    ['ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021 the FFmpeg developers', 4],
    // git snapshots are dated by their copyright line
    ['ffmpeg version N-47683-g0e8eb07980-static https://johnvansickle.com/ffmpeg/  Copyright (c) 2000-2018 the FFmpeg developers', 4],
    ['ffprobe version N-66595-gc2b38619c0-static https://johnvansickle.com/ffmpeg/  Copyright (c) 2007-2023 the FFmpeg developers', 5],
    ['not a version line', null],
  ])('%s -> %s', (line, major) => {
    expect(toolMajorVersion(line)).toBe(major);
  });
});

describe('which ffmpeg runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clipstream-ffpath-'));
  const saved = { PATH: process.env.PATH, FFMPEG_PATH: process.env.FFMPEG_PATH, FFPROBE_PATH: process.env.FFPROBE_PATH };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A folder holding an `ffmpeg` that answers `-version` with the given line (only the version check runs it). */
  function fakeOnPath(name: string, line: string): string {
    const folder = join(dir, name);
    execFileSync('mkdir', ['-p', folder]);
    const bin = join(folder, 'ffmpeg');
    writeFileSync(bin, `#!/bin/sh\necho '${line}'\n`);
    chmodSync(bin, 0o755);
    return folder;
  }

  it('takes FFMPEG_PATH as given', () => {
    process.env.FFMPEG_PATH = '/opt/custom/ffmpeg';
    expect(ffmpegChoice()).toMatchObject({ path: '/opt/custom/ffmpeg', source: 'env' });
  });

  it('takes an ffmpeg of version 5 or later from PATH', () => {
    delete process.env.FFMPEG_PATH;
    const folder = fakeOnPath('new', 'ffmpeg version 6.0 Copyright (c) 2000-2023 the FFmpeg developers');
    process.env.PATH = folder;
    expect(ffmpegChoice()).toMatchObject({ path: join(folder, 'ffmpeg'), source: 'system', version: expect.stringContaining('6.0') });
  });

  it('passes over an older ffmpeg on PATH for the bundled build', () => {
    delete process.env.FFMPEG_PATH;
    process.env.PATH = fakeOnPath('old', 'ffmpeg version 4.4.2 Copyright (c) 2000-2021 the FFmpeg developers');
    const choice = ffmpegChoice();
    expect(choice.source).toBe('bundled');
    expect(choice.path).toContain('@ffmpeg-installer');
  });

  it.skipIf(!existsSync('/usr/bin/ffmpeg') || !existsSync('/usr/bin/ffprobe'))(
    'uses the distribution ffmpeg/ffprobe when installed (CI installs Debian ffmpeg 5.1)',
    () => {
      delete process.env.FFMPEG_PATH;
      delete process.env.FFPROBE_PATH;
      process.env.PATH = '/usr/local/bin:/usr/bin:/bin';
      const ffmpeg = ffmpegChoice();
      expect(ffmpeg.source).toBe('system');
      expect(toolMajorVersion(ffmpeg.version ?? '')).toBeGreaterThanOrEqual(5);
      expect(ffprobeChoice().source).toBe('system');
    },
  );
});

describe('clipstream --version', () => {
  it('names the package version and the ffmpeg and ffprobe that run, with their own version lines', () => {
    const r = runCli(['--version'], { env: { FFMPEG_PATH: '', FFPROBE_PATH: '' } });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^clipstream \d+\.\d+\.\d+$/);
    expect(lines[1]).toMatch(/^ffmpeg +\/\S+ \((system|bundled)\): ffmpeg version /);
    expect(lines[2]).toMatch(/^ffprobe +\/\S+ \((system|bundled)\): ffprobe version /);
  });

  it('reports a bundled ffmpeg with one warning when none of version 5 or later is on PATH', () => {
    const nodeOnly = mkdtempSync(join(tmpdir(), 'clipstream-nodeonly-'));
    try {
      execFileSync('ln', ['-s', process.execPath, join(nodeOnly, 'node')]);
      const r = runCli(['--version'], { env: { PATH: nodeOnly, FFMPEG_PATH: '', FFPROBE_PATH: '' } });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/ffmpeg +\S+@ffmpeg-installer\S+ \(bundled\): ffmpeg version N-47683/);
      expect(r.stderr.match(/warning: no ffmpeg 5 or later on PATH/g)).toHaveLength(1);
    } finally {
      rmSync(nodeOnly, { recursive: true, force: true });
    }
  });
});
