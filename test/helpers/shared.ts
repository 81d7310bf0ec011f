import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { REPO } from './run-cli.js';

/**
 * `../shared` beside the repository root: the published models and photos that cannot be
 * committed here (CI checks out a fresh clone with `../shared` next to it). In a git worktree the
 * main checkout's `../shared` counts too, and `CLIPSTREAM_SHARED` overrides both. Tests that need
 * it skip with SHARED_MISSING when it is absent.
 */
function findShared(): string {
  const candidates = [process.env.CLIPSTREAM_SHARED, join(REPO, '..', 'shared')];
  try {
    const git = join(REPO, '.git');
    if (statSync(git).isFile()) {
      const m = /^gitdir:\s*(.+?)[\\/]\.git[\\/]worktrees[\\/]/m.exec(readFileSync(git, 'utf8'));
      if (m) candidates.push(join(dirname(m[1]!), 'shared'));
    }
  } catch {
    // not a git checkout: only ../shared
  }
  return candidates.find((c) => c && existsSync(join(c, 'models'))) ?? join(REPO, '..', 'shared');
}

export const SHARED = findShared();
export const ULTRAFACE_DIR = join(SHARED, 'models', 'ultraface');
export const PHOTOS_DIR = join(SHARED, 'fixtures', 'photos');
export const HAS_ULTRAFACE = existsSync(join(ULTRAFACE_DIR, 'version-RFB-640.onnx')) && existsSync(join(ULTRAFACE_DIR, 'version-RFB-320.onnx'));
export const HAS_PHOTOS = existsSync(join(PHOTOS_DIR, 'ultraface-imgs-2.jpg'));
export const SHARED_MISSING = `skipped: ${SHARED} (published UltraFace models and photos, see ../shared/models/README.md) is absent`;

/** The photos and the faces a person counts in each (../shared/models/README.md). */
export const PHOTOS: Array<[string, number]> = [
  ['ultraface-imgs-2.jpg', 4],
  ['ultraface-imgs-13.jpg', 2],
  ['ultraface-imgs-19.jpg', 5],
];

/** Image size and RGB pixels, resized to `size` if given (ffmpeg, area scaling, as the faces job decodes). */
export function decodeImage(path: string, size?: { width: number; height: number }): { width: number; height: number; rgb: Uint8Array } {
  const probe = spawnSync(ffmpegPath(), ['-hide_banner', '-i', path], { encoding: 'utf8' });
  const m = /, (\d+)x(\d+)[,\s]/.exec(probe.stderr);
  if (!m) throw new Error(`cannot read the size of ${path}: ${probe.stderr}`);
  const width = size?.width ?? Number(m[1]);
  const height = size?.height ?? Number(m[2]);
  const r = spawnSync(
    ffmpegPath(),
    ['-v', 'error', '-i', path, '-vf', `scale=${width}:${height}:flags=area,format=rgb24`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    { maxBuffer: 1 << 28 },
  );
  if (r.status !== 0) throw new Error(`ffmpeg cannot decode ${path}: ${String(r.stderr)}`);
  return { width, height, rgb: new Uint8Array(r.stdout) };
}
