/**
 * extract with its ffmpeg stopped or killed from outside (issue 18, defect 14): a decode
 * stopped (SIGSTOP) for longer than its stall limit is not taken for a hung one, and a decode
 * killed by a signal the run did not send is journalled as transient and redone by the next
 * run. Either way the shard ends byte-identical to a clean run's.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { procState } from '../helpers/proc.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARDS } from '../../fixtures/index.js';
import { extract } from '../../src/jobs/extract.js';
import { shardJournalPath } from '../../src/sinks/feature-shard.js';
import { exists } from '../../src/util/fs.js';
import { descendantsNamed } from '../helpers/children.js';

const quiet = () => {};
/** Audio features only: the fastest real run. */
const common = { tarPath: FIXTURE_SHARDS[0]!, visualModel: null, onWarning: quiet, stallTimeoutMs: 300 };

let dir: string;
let ref: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extract-transient-'));
  process.env.CLIPSTREAM_RETRY_BACKOFF_MS = '50';
  await extract({ ...common, outputDir: join(dir, 'ref') });
  ref = await readFile(join(dir, 'ref', 'shard-000000.msgpack'));
});
afterAll(async () => {
  delete process.env.CLIPSTREAM_RETRY_BACKOFF_MS;
  delete process.env.CLIPSTREAM_TRANSIENT_RETRIES;
  await rm(dir, { recursive: true, force: true });
});

/** Does `act` to each ffmpeg the run starts (until `enough` says stop); returns how many it got while they still ran. */
function hunt(act: (pid: number) => Promise<boolean>, enough: (n: number) => boolean): { stop: () => Promise<number> } {
  let n = 0;
  let on = true;
  const seen = new Set<number>();
  const loop = (async () => {
    while (on && !enough(n)) {
      for (const pid of descendantsNamed('ffmpeg')) {
        if (seen.has(pid)) continue;
        seen.add(pid);
        if (await act(pid)) n++;
      }
      await sleep(2);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return n;
    },
  };
}

describe('extract: starved is not hung, transient is not permanent', () => {
  it('a decode stopped (SIGSTOP) for 5x the stall limit, then continued, gives the clean run shard', async () => {
    const out = join(dir, 'stopped');
    const h = hunt(
      async (pid) => {
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
      },
      (n) => n >= 1,
    );
    await extract({ ...common, outputDir: out });
    expect(await h.stop()).toBeGreaterThanOrEqual(1);
    expect((await readFile(join(out, 'shard-000000.msgpack'))).equals(ref)).toBe(true);
  });

  it('a decode killed from outside (kill -9), retries spent: journalled as transient, no output, and the rerun completes it', async () => {
    const out = join(dir, 'killed');
    process.env.CLIPSTREAM_TRANSIENT_RETRIES = '0';
    const h = hunt(
      async (pid) => {
        try {
          process.kill(pid, 'SIGKILL');
          return true;
        } catch {
          return false;
        }
      },
      (n) => n >= 1,
    );
    const first = await extract({ ...common, outputDir: out });
    await h.stop();
    delete process.env.CLIPSTREAM_TRANSIENT_RETRIES;
    expect(first.shards[0]).toMatchObject({ status: 'failed (transient)', output: null });
    expect(first.shards[0]!.transient!.length).toBeGreaterThanOrEqual(1);
    expect(await exists(join(out, 'shard-000000.msgpack'))).toBe(false);
    expect(await exists(shardJournalPath(out, 'shard-000000'))).toBe(true);

    const again = await extract({ ...common, outputDir: out });
    expect(again.shards[0]!.status).toBe('written');
    expect((await readFile(join(out, 'shard-000000.msgpack'))).equals(ref)).toBe(true);
  });

  it('a clip that fails transiently in 3 runs in a row is taken as permanent, so its shard is written', async () => {
    const out = join(dir, 'always');
    process.env.CLIPSTREAM_TRANSIENT_RETRIES = '0';
    const statuses: string[] = [];
    const reasons: string[] = [];
    for (let i = 0; i < 3; i++) {
      const h = hunt(
        async (pid) => {
          try {
            process.kill(pid, 'SIGKILL');
            return true;
          } catch {
            return false;
          }
        },
        () => false,
      );
      const r = await extract({ ...common, outputDir: out });
      await h.stop();
      statuses.push(r.shards[0]!.status);
      reasons.push(...r.shards[0]!.failed.map((f) => f.reason));
    }
    delete process.env.CLIPSTREAM_TRANSIENT_RETRIES;
    expect(statuses).toEqual(['failed (transient)', 'failed (transient)', 'written']);
    expect(reasons.some((r) => r.includes('failed so in 3 runs: taken as permanent'))).toBe(true);
    expect(await exists(join(out, 'shard-000000.msgpack'))).toBe(true);
  });
});
