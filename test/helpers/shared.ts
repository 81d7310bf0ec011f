import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
