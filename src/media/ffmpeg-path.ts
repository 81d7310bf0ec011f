import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Which binary runs and why: the user's choice, the system's maintained build, or a bundled one. */
export interface ToolChoice {
  /** Absolute path (or the name given in the environment). */
  path: string;
  /** First line of `<tool> -version`, or null when it could not be run. */
  version: string | null;
  /** `env`: FFMPEG_PATH / FFPROBE_PATH; `system`: version 5 or later found on PATH; `bundled`: the npm package's build. */
  source: 'env' | 'system' | 'bundled';
}

/** The oldest major version taken from PATH: distributions ship security fixes for these, and they need no `-strict -2` for Opus/FLAC in mp4. */
const MIN_SYSTEM_MAJOR = 5;

/** `ffmpeg version 5.1.9-0+deb12u1 ...` → 5; a git snapshot (`N-47683-g...`) is dated by its copyright line instead (5.0 came out in 2022). */
export function toolMajorVersion(versionText: string): number | null {
  const first = versionText.split('\n')[0] ?? '';
  const m = /version n?(\d+)\.(\d+)/.exec(first);
  if (m) return Number(m[1]);
  const year = /Copyright \(c\) \d{4}-(\d{4})/.exec(first);
  if (year) return Number(year[1]) >= 2022 ? MIN_SYSTEM_MAJOR : 4;
  return null;
}

function versionOf(path: string): string | null {
  try {
    return execFileSync(path, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return null;
  }
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const chosen = new Map<string, ToolChoice>();
let warned = false;

function choose(tool: 'ffmpeg' | 'ffprobe', envName: string, bundledModule: string): ToolChoice {
  const env = process.env[envName];
  const key = `${tool}\0${env ?? ''}\0${process.env.PATH ?? ''}`;
  const known = chosen.get(key);
  if (known) return known;
  let choice: ToolChoice;
  if (env) {
    choice = { path: env, version: null, source: 'env' };
  } else {
    const system = onPath(tool);
    const text = system ? versionOf(system) : null;
    const major = text ? toolMajorVersion(text) : null;
    if (system && text && major !== null && major >= MIN_SYSTEM_MAJOR) {
      choice = { path: system, version: text.split('\n')[0]!, source: 'system' };
    } else {
      choice = { path: (require(bundledModule) as { path: string }).path, version: null, source: 'bundled' };
      if (tool === 'ffmpeg' && !warned) {
        warned = true;
        process.stderr.write(
          `clipstream: warning: no ffmpeg ${MIN_SYSTEM_MAJOR} or later on PATH${system ? ` (${system} is older)` : ''}; using the bundled static build from 2018, which lacks six years of security fixes. Install one (apt-get install ffmpeg) or set FFMPEG_PATH.\n`,
        );
      }
    }
  }
  chosen.set(key, choice);
  return choice;
}

/**
 * The ffmpeg that runs: `FFMPEG_PATH` when set; else an ffmpeg of version 5 or later on PATH
 * (a distribution's build, which gets security fixes); else the static build bundled by
 * `@ffmpeg-installer/ffmpeg` (2018), with one warning per process.
 *
 * @example const { path, source } = ffmpegChoice(); // { path: '/usr/bin/ffmpeg', source: 'system', ... }
 */
export function ffmpegChoice(): ToolChoice {
  return choose('ffmpeg', 'FFMPEG_PATH', '@ffmpeg-installer/ffmpeg');
}

/** The ffprobe that runs, chosen as ffmpegChoice chooses (the bundled ffprobe, from @ffprobe-installer, is a 2023 build). */
export function ffprobeChoice(): ToolChoice {
  return choose('ffprobe', 'FFPROBE_PATH', '@ffprobe-installer/ffprobe');
}

/** The ffmpeg binary's path (see ffmpegChoice). */
export function ffmpegPath(): string {
  return ffmpegChoice().path;
}

/** The ffprobe binary's path (see ffprobeChoice). */
export function ffprobePath(): string {
  return ffprobeChoice().path;
}

/** One line per tool for `clipstream --version`: path, where it came from, and its own version line. */
export function describeTools(): string[] {
  return [ffmpegChoice(), ffprobeChoice()].map((c, i) => {
    const version = c.version ?? versionOf(c.path)?.split('\n')[0] ?? 'cannot be run';
    return `${i === 0 ? 'ffmpeg ' : 'ffprobe'} ${c.path} (${c.source}): ${version}`;
  });
}
