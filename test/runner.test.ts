import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClipstreamError, toClipstreamError } from '../src/errors.js';
import { checkStages, declareStage } from '../src/run/contract.js';
import { failItem } from '../src/run/on-error.js';
import { progressLine } from '../src/run/progress.js';
import { runJob, type UnitResult } from '../src/run/runner.js';
import { exists } from '../src/util/fs.js';

const tmp = () => mkdtemp(join(tmpdir(), 'clipstream-runner-'));

/** A toy job: each unit writes out/<unit>.txt; a unit is done when its file exists. */
async function toyJob(dir: string, units: string[], extra: { only?: string[]; rank?: number; world?: number; fail?: string; signal?: AbortSignal } = {}) {
  const ran: string[] = [];
  const out = await runJob(
    {
      job: 'clips',
      units,
      unitId: (u) => u,
      logDir: dir,
      only: extra.only,
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
