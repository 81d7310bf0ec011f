import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticVideo } from '../../scripts/make-face-fixtures.js';
import { SYNTHETIC_VIDEOS } from '../../src/faces/synthetic.js';
import { REPO } from '../helpers/run-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-etl-'));
  await mkdir(join(dir, 'in'));
  await writeSyntheticVideo(SYNTHETIC_VIDEOS.find((s) => s.name === 'face_gap')!, join(dir, 'in', 'talk.mp4'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the faces stages composed by hand (examples/faces-etl.ts, shown in docs/library.md)', () => {
  it('runs and writes the clips and metadata the job writes', async () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/faces-etl.ts', join(dir, 'in'), join(dir, 'out')], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out.trim()).toBe('talk.mp4: done, 2 clip(s)');
    const csv = (await readFile(join(dir, 'out', 'metadata.csv'), 'utf8')).trim().split('\n');
    expect(csv.slice(1).map((l) => l.split(',')[4])).toEqual(['talk_000', 'talk_001']);
    const readme = await readFile(join(REPO, 'docs', 'library.md'), 'utf8');
    expect(readme).toContain(await readFile(join(REPO, 'examples/faces-etl.ts'), 'utf8'));
  });
});
