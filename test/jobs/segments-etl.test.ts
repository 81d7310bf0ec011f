import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segments } from '../../src/jobs/segments.js';
import { REPO } from '../helpers/run-cli.js';
import { probeCounted } from '../helpers/segments.js';

const FIXTURE = 'fixtures/segments/matte_move.mp4';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'segments-etl-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the segments stages composed by hand (examples/segments-etl.ts, shown in docs/library.md)', () => {
  it('runs and writes the same video as the job with the same options', async () => {
    const out = join(dir, 'etl', 'alpha.mp4');
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', 'examples/segments-etl.ts', FIXTURE, out], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(stdout.trim()).toBe(`${FIXTURE}: done, 3 segment(s), 150 frame(s)`);
    expect(Number((await probeCounted(out)).video.nb_read_frames)).toBe(150);
    const job = join(dir, 'job', 'alpha.mp4');
    await segments({ inputs: [FIXTURE], outputs: [job], segmentSeconds: 2, outputType: 'alpha', device: 'cpu', onWarning: () => {} });
    expect(Buffer.compare(await readFile(out), await readFile(job))).toBe(0);
    const readme = await readFile(join(REPO, 'docs', 'library.md'), 'utf8');
    expect(readme).toContain(await readFile(join(REPO, 'examples/segments-etl.ts'), 'utf8'));
  });
});
