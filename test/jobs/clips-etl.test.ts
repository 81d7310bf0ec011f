import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/util/csv.js';
import { frameHashes, makeSource } from '../helpers/clip-sources.js';
import { REPO } from '../helpers/run-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-etl-'));
  await makeSource(join(dir, 'a.mp4'), { seconds: 4, fps: 10, audioHz: 440 });
  await writeFile(join(dir, 'bad.mp4'), 'not a video');
  await writeFile(join(dir, 'sources.csv'), 'video_id,path\na,a.mp4\nbad,bad.mp4\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the clips stages composed by hand (examples/clips-etl.ts, shown in docs/library.md)', () => {
  it('runs, cuts only the clips its own stage keeps, and writes the tables the job writes', async () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/clips-etl.ts', join(dir, 'sources.csv'), join(dir, 'out')], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('a: 2 clip(s)');
    expect(lines[1]).toMatch(/^bad: video bad: cannot probe .*bad\.mp4: /);
    const rows = parseCsv(await readFile(join(dir, 'out', 'clips.csv'), 'utf8'));
    expect(rows.map((r) => [r.clip_id, r.num_frames, r.audio_codec])).toEqual([
      ['a_0_10', '10', 'aac'],
      ['a_10_20', '10', 'aac'],
    ]);
    expect(parseCsv(await readFile(join(dir, 'out', 'videos.csv'), 'utf8')).map((r) => [r.video_id, r.failed, r.num_clips])).toEqual([
      ['a', 'false', '2'],
      ['bad', 'true', '0'],
    ]);
    // An independent decode of the clip: the 10 frames the plan asked for.
    expect(await frameHashes(join(dir, 'out', 'clips', 'a_10_20.mp4'))).toHaveLength(10);
    const readme = await readFile(join(REPO, 'docs', 'library.md'), 'utf8');
    expect(readme).toContain(await readFile(join(REPO, 'examples/clips-etl.ts'), 'utf8'));
  }, 120_000);
});
