/**
 * Transient is not permanent in clips, faces and segments (issue 18, defect 14 and item 5): a
 * run whose ffmpeg is stopped (SIGSTOP) for longer than its stall limit
 * (CLIPSTREAM_STALL_TIMEOUT_MS, small here) or killed from outside (kill -9) ends with the
 * outputs of a clean run, byte for byte, the kill retried within the run.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { procState } from '../helpers/proc.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clips } from '../../src/jobs/clips.js';
import { faces } from '../../src/jobs/faces.js';
import { segments } from '../../src/jobs/segments.js';
import { makeSource } from '../helpers/clip-sources.js';
import { descendantsNamed } from '../helpers/children.js';

const quiet = () => {};
let dir: string;
let input: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobs-transient-'));
  input = join(dir, 'in');
  await mkdir(input);
  await makeSource(join(input, 'talk.mp4'), { seconds: 4, audioHz: 440 });
  process.env.CLIPSTREAM_RETRY_BACKOFF_MS = '50';
});
afterAll(async () => {
  delete process.env.CLIPSTREAM_RETRY_BACKOFF_MS;
  delete process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
  await rm(dir, { recursive: true, force: true });
});

/** Does `act` to the first ffmpeg the run starts that it gets hold of; resolves whether it did. */
function huntOne(act: (pid: number) => Promise<boolean>): Promise<boolean> {
  return (async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      for (const pid of descendantsNamed('ffmpeg')) {
        if (seen.has(pid)) continue;
        seen.add(pid);
        if (await act(pid)) return true;
      }
      await sleep(2);
    }
    return false;
  })();
}

const stop = async (pid: number) => {
  try {
    process.kill(pid, 'SIGSTOP');
  } catch {
    return false;
  }
  await sleep(20);
  const stopped = procState(pid) === 'T';
  await sleep(1500);
  process.kill(pid, 'SIGCONT');
  return stopped;
};
const kill = async (pid: number) => {
  await sleep(30);
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
};

/** sha256 of every file under `root` whose name passes `keep`, by relative path. */
async function hashes(root: string, keep: (name: string) => boolean): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of (await readdir(root, { recursive: true })).map(String).sort()) {
    if (!keep(n)) continue;
    const b = await readFile(join(root, n)).catch(() => null);
    if (b) out[n] = createHash('sha256').update(b).digest('hex');
  }
  return out;
}

const JOBS = {
  clips: {
    run: (out: string) => clips({ sources: input, outputDir: out, clipLenS: 1, onWarning: quiet }),
    keep: (n: string) => n.startsWith('clips/') && n.endsWith('.mp4'),
  },
  faces: {
    run: (out: string) =>
      faces({ inputDir: input, outputDir: out, detector: 'models/face_detector_synthetic.onnx', device: 'cpu', intraOpThreads: 1, size: 64, onWarning: quiet }),
    keep: (n: string) => (n.startsWith('clips/') && n.endsWith('.mp4')) || n === 'metadata.csv',
  },
  segments: {
    run: (out: string) => segments({ inputDir: input, outputDir: join(out, 'o'), segmentSeconds: 1, onWarning: quiet }),
    keep: (n: string) => n.startsWith('o/') && n.endsWith('.mp4') && !n.includes('.segments/'),
  },
} as const;

describe.each(Object.keys(JOBS) as Array<keyof typeof JOBS>)('%s', (job) => {
  const { run, keep } = JOBS[job];
  let clean: Record<string, string>;
  beforeAll(async () => {
    delete process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
    await run(join(dir, `${job}-clean`));
    clean = await hashes(join(dir, `${job}-clean`), keep);
    expect(Object.keys(clean).length).toBeGreaterThan(0);
  });
  afterAll(() => {
    delete process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
  });

  it('an ffmpeg stopped for 5x the stall limit is not taken for a hung one: the outputs of a clean run', async () => {
    process.env.CLIPSTREAM_STALL_TIMEOUT_MS = '300';
    const out = join(dir, `${job}-stopped`);
    const hunted = huntOne(stop);
    await run(out);
    expect(await hunted).toBe(true);
    expect(await hashes(out, keep)).toEqual(clean);
  });

  it('an ffmpeg killed from outside (kill -9) is a transient failure, retried in the run: the outputs of a clean run', async () => {
    delete process.env.CLIPSTREAM_STALL_TIMEOUT_MS;
    const out = join(dir, `${job}-killed`);
    const hunted = huntOne(kill);
    const first = await run(out);
    expect(await hunted).toBe(true);
    // Retried in the run: nothing failed, nothing left for a rerun.
    expect(first.run.failed).toBe(0);
    expect(await hashes(out, keep)).toEqual(clean);
  });
});
