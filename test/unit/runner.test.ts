import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClipstreamError, toClipstreamError } from '../../src/errors.js';
import { checkStages, declareStage } from '../../src/stage/contract.js';
import { failItem } from '../../src/stage/on-error.js';
import { progressLine } from '../../src/util/progress.js';
import { runJob } from '../../src/run/runner.js';
import type { UnitResult } from '../../src/stage/job-run.js';
import { exists } from '../../src/util/fs.js';

const tmp = () => mkdtemp(join(tmpdir(), 'clipstream-runner-'));

/** A toy job: each unit writes out/<unit>.txt; a unit is done when its file exists. */
async function toyJob(
  dir: string,
  units: string[],
  extra: {
    only?: string[];
    rank?: number;
    world?: number;
    fail?: string;
    signal?: AbortSignal;
    feed?: AsyncIterable<string>;
    onUnitDone?: (r: UnitResult) => void;
  } = {},
) {
  const ran: string[] = [];
  const out = await runJob(
    {
      job: 'clips',
      units,
      unitId: (u) => u,
      logDir: dir,
      only: extra.only,
      feed: extra.feed,
      onUnitDone: extra.onUnitDone,
      partition: extra.world ? { rank: extra.rank ?? 0, world: extra.world, from: 'options' } : undefined,
      locks: { finalPath: (u) => join(dir, `${u}.txt`) },
      resume: async (u) => ((await exists(join(dir, `${u}.txt`))) ? { unit: u, outcome: 'skipped', status: 'skipped (done before)' } : null),
      signal: extra.signal,
    },
    async (run) => {
      for await (const u of run.pending()) {
        ran.push(u);
        if (u === extra.fail) {
          run.unitDone({ unit: u, outcome: 'failed', status: 'failed', error: `${u} is broken` });
          continue;
        }
        await writeFile(join(dir, `${u}.txt`), u);
        run.item('done', 2);
        run.unitDone({ unit: u, outcome: 'done', status: 'written' });
      }
      return ran;
    },
  );
  return out;
}

describe('runJob', () => {
  it('runs every unit once, resumes finished ones, and writes a finished log with every result', async () => {
    const dir = await tmp();
    const first = await toyJob(dir, ['a', 'b', 'c'], { fail: 'b' });
    expect(first.result).toEqual(['a', 'b', 'c']);
    expect(first.report.units.map((r) => [r.unit, r.outcome])).toEqual([
      ['a', 'done'],
      ['b', 'failed'],
      ['c', 'done'],
    ]);
    expect(first.report.items.done).toBe(4);
    const log = JSON.parse(await readFile(first.report.logPath!, 'utf8')) as { finished: boolean; results: UnitResult[]; job: string };
    expect(log.finished).toBe(true);
    expect(log.job).toBe('clips');
    expect(log.results.map((r) => r.status)).toEqual(['written', 'failed', 'written']);
    // Second run: a and c are done and never reach the body; b is tried again.
    const second = await toyJob(dir, ['a', 'b', 'c']);
    expect(second.result).toEqual(['b']);
    expect(second.report.units.map((r) => r.status)).toEqual(['skipped (done before)', 'written', 'skipped (done before)']);
    expect((await readdir(dir)).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });

  it('takes the rank share, then `only`; an unknown unit in `only` is an error naming it', async () => {
    const dir = await tmp();
    const units = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
    const shares = await Promise.all([0, 1, 2].map(async (rank) => (await toyJob(dir, units, { rank, world: 3 })).result));
    expect(shares.flat().sort()).toEqual(units);
    expect(new Set(shares.flat()).size).toBe(units.length);
    const dir2 = await tmp();
    expect((await toyJob(dir2, units, { only: ['u5'] })).result).toEqual(['u5']);
    await expect(toyJob(dir2, units, { only: ['u9'] })).rejects.toThrow(/u9/);
  });

  it('two runs sharing a folder never run one unit twice (unit locks)', async () => {
    const dir = await tmp();
    const units = Array.from({ length: 12 }, (_, i) => `v${i}`);
    const [x, y] = await Promise.all([toyJob(dir, units), toyJob(dir, units)]);
    const ran = [...x.result, ...y.result];
    expect(ran.sort()).toEqual(units.sort());
  });

  it('an aborted run keeps its log unfinished, with the results it had', async () => {
    const dir = await tmp();
    const ac = new AbortController();
    const p = runJob({ job: 'faces', units: ['a', 'b'], unitId: (u) => u, logDir: dir, signal: ac.signal }, async (run) => {
      for await (const u of run.pending()) {
        run.unitDone({ unit: u, outcome: 'done', status: 'written' });
        ac.abort();
        throw new ClipstreamError('ERR_PIPELINE', 'interrupted');
      }
    });
    await expect(p).rejects.toThrow('interrupted');
    const [name] = (await readdir(dir)).filter((n) => n.startsWith('log_'));
    const log = JSON.parse(await readFile(join(dir, name!), 'utf8')) as { finished: boolean; results: UnitResult[] };
    expect(log.finished).toBe(false);
    expect(log.results.map((r) => r.status)).toEqual(['written', 'pending']);
  });
});

/** A feed the test pushes ids into; `end()` ends it. */
function pushFeed() {
  const items: string[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  return {
    push(id: string) {
      items.push(id);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const id = items.shift();
        if (id !== undefined) {
          yield id;
          continue;
        }
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    },
  };
}

describe("runJob fed its units (a queue worker's long-lived run)", () => {
  it('runs units as they come, tells each result once the log holds it, and ends with the feed', async () => {
    const dir = await tmp();
    const feed = pushFeed();
    const told: Array<{ unit: string; outcome: string; inLog: boolean }> = [];
    const done = new Map<string, () => void>();
    const toldOf = (u: string) => new Promise<void>((r) => done.set(u, r));
    const running = toyJob(dir, ['a', 'b', 'c', 'd'], {
      feed,
      fail: 'c',
      onUnitDone: (r) => {
        void (async () => {
          const logs = (await readdir(dir)).filter((f) => f.startsWith('log_'));
          const log = JSON.parse(await readFile(join(dir, logs[0]!), 'utf8')) as { results: UnitResult[] };
          told.push({ unit: r.unit, outcome: r.outcome, inLog: log.results.some((x) => x.unit === r.unit && x.outcome === r.outcome) });
          done.get(r.unit)?.();
        })();
      },
    });
    const b = toldOf('b');
    feed.push('b');
    await b;
    // b was done before d was even handed over: the run works as units come.
    expect(await exists(join(dir, 'b.txt'))).toBe(true);
    const rest = Promise.all([toldOf('d'), toldOf('nope'), toldOf('c')]);
    feed.push('d');
    feed.push('nope');
    feed.push('c');
    await rest;
    // c failed: handed again after its result, it runs again (a retry reaching the same run).
    const again = toldOf('c');
    feed.push('c');
    await again;
    feed.end();
    const { report, result } = await running;
    expect(result).toEqual(['b', 'd', 'c', 'c']);
    expect(told.map((t) => `${t.unit} ${t.outcome}`).sort()).toEqual(['b done', 'c failed', 'c failed', 'd done', 'nope failed']);
    expect(told.every((t) => t.inLog)).toBe(true);
    expect(report.units.map((r) => r.unit)).toEqual(['b', 'd', 'nope', 'c']);
    expect(report.units.find((r) => r.unit === 'nope')).toMatchObject({ outcome: 'failed', permanent: true, status: "not among the clips job's units" });
    expect([report.done, report.failed]).toEqual([2, 2]);
    const log = JSON.parse(await readFile(report.logPath!, 'utf8')) as { finished: boolean; results: UnitResult[] };
    expect(log.finished).toBe(true);
    expect(log.results).toHaveLength(4);
  });
  it('a fed run takes neither only nor a share', async () => {
    const dir = await tmp();
    await expect(toyJob(dir, ['a'], { feed: pushFeed(), only: ['a'] })).rejects.toThrow("a run fed its units takes neither 'only' nor a share");
    await expect(toyJob(dir, ['a'], { feed: pushFeed(), rank: 0, world: 2 })).rejects.toThrow('takes neither');
  });
});

describe('checkStages', () => {
  const stage = (name: string, c: { needs?: string[]; adds?: string[]; drops?: string[] }) =>
    declareStage(new PassThrough({ objectMode: true }), { name, ...c });

  it('passes a pipeline in order and fails one out of order naming both stages', () => {
    const read = stage('read shards', { adds: ['files', 'entry'] });
    const decode = stage('decode', { needs: ['files'], adds: ['video'], drops: ['files'] });
    const visual = stage('visual features', { needs: ['video'], adds: ['visualFeatures'] });
    expect(checkStages([read, decode, visual])).toHaveLength(3);
    expect(() => checkStages([read, visual, decode])).toThrow("stage 'visual features' needs 'video', which stage 'decode' adds only after it");
    const again = stage('decode again', { needs: ['files'] });
    expect(() => checkStages([read, decode, again])).toThrow("stage 'decode again' needs 'files', but stage 'decode' before it drops it");
    expect(() => checkStages([visual])).toThrow("needs 'video', which no stage before it adds");
    expect(checkStages([visual], ['video'])).toHaveLength(1);
  });
});

describe('errors and onError', () => {
  it('wrapping keeps the error own where and adds the caller context', () => {
    const inner = new ClipstreamError('ERR_DECODE', 'bad frame', { where: { file: 'a.mp4' } });
    const e = toClipstreamError(inner, 'ERR_PIPELINE', { shard: 's.tar', file: 'other' });
    expect(e.where).toEqual({ file: 'a.mp4', shard: 's.tar' });
    expect(e.code).toBe('ERR_DECODE');
  });

  it("'skip' returns the failure, 'throw' throws, a function decides", () => {
    const err = new Error('boom');
    expect(failItem('skip', 'decode', err, { key: 'k', code: 'ERR_DECODE' }).error.where.key).toBe('k');
    expect(() => failItem('throw', 'decode', err, { key: 'k', code: 'ERR_DECODE' })).toThrow('boom');
    expect(() => failItem(() => 'throw', 'decode', err, { key: 'k', code: 'ERR_DECODE' })).toThrow('boom');
    expect(failItem(() => undefined, 'decode', err, { key: 'k', code: 'ERR_DECODE', status: 'skipped' }).status).toBe('skipped');
  });

  it('the progress line names the job nouns', () => {
    const line = progressLine({
      job: 'segments',
      unitNoun: 'video',
      itemNoun: 'frame',
      unitsTotal: 4,
      unitsDone: 1,
      unitsFailed: 1,
      unitsSkipped: 0,
      itemsDone: 30,
      itemsFailed: 0,
      itemsSkipped: 0,
      itemsExpected: 120,
      elapsedSeconds: 10,
    });
    expect(line).toContain('videos 1/4 (1 failed)');
    expect(line).toContain('frames 30/120');
    expect(line).toContain('3.00 frames/s');
  });
});
