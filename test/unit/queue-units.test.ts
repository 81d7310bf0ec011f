/** The queue's generic parts without Redis: how a unit's result maps to the queue's answer, and which arguments travel absolute. */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOB_DEFINITIONS } from '../../src/cli/jobs.js';
import { absolutePath, unitArgs } from '../../src/cli/queue-command.js';
import { definitionRunner, PermanentUnitError, UnitBusyError, unitVerdict } from '../../src/scale/worker.js';
import type { JobDefinition } from '../../src/run/job-definition.js';
import type { UnitResult } from '../../src/stage/job-run.js';

describe('unitVerdict: a unit result of any job as the queue sees it', () => {
  const r = (x: Partial<UnitResult>): UnitResult => ({ unit: 'u', outcome: 'done', status: 'written', ...x });
  it.each<[string, Partial<UnitResult> | undefined, string]>([
    ['done', {}, 'done'],
    ['finished by an earlier run', { outcome: 'skipped', status: 'skipped (output exists)' }, 'done'],
    ['locked by another live run', { outcome: 'skipped', status: 'skipped (locked)', lockedBy: 'locked by another run: pid 7' }, 'busy'],
    ['a missing input', { outcome: 'failed', status: 'missing', error: 'Shard x.tar does not exist; skipped' }, 'permanent'],
    ['marked permanent by the job', { outcome: 'failed', status: 'failed', error: 'bad', permanent: true }, 'permanent'],
    ['a code no retry fixes', { outcome: 'failed', status: 'failed', error: 'bad', code: 'ERR_INVALID_OPTION' }, 'permanent'],
    ['a failing source', { outcome: 'failed', status: 'failed (source)', error: 'the command exited with code 1' }, 'retry'],
    ['not run (the run stopped first)', { outcome: 'failed', status: 'not run' }, 'retry'],
    ['no result at all', undefined, 'retry'],
  ])('%s → %s', (_, x, kind) => {
    expect(unitVerdict(x === undefined ? undefined : r(x), 'u').kind).toBe(kind);
  });
  it('the reason is the error, else the status', () => {
    expect(unitVerdict(r({ outcome: 'failed', status: 'failed (source)', error: 'HTTP 503' }), 'u')).toEqual({ kind: 'retry', reason: 'HTTP 503' });
    expect(unitVerdict(r({ outcome: 'failed', status: 'decode failed' }), 'u')).toEqual({ kind: 'retry', reason: 'decode failed' });
  });
});

describe('definitionRunner: runs a unit with its definition', () => {
  const seen: Array<Record<string, unknown>> = [];
  const fake = (result: Partial<UnitResult> | Error): JobDefinition<{ x: number }> => ({
    name: 'clips',
    spec: { name: 'clips', summary: '', usage: '', options: [{ name: 'x', type: 'string', description: 'a number, as text' }], examples: [] },
    optionsFromArgs: (a) => ({ x: Number(a.x) }),
    pathArgs: [],
    listUnits: async () => ['a', 'b'],
    run: async (o) => {
      seen.push(o as unknown as Record<string, unknown>);
      if (result instanceof Error) throw result;
      return { run: { units: [{ unit: o.only![0]!, outcome: 'done', status: 'ok', ...result }] } as never };
    },
  });
  const signal = new AbortController().signal;
  it('passes the options, only the unit, onLocked wait and the signal; done gives the summary', async () => {
    const run = definitionRunner({ clips: fake({ summary: '3 clips' }) }, { models: 'M' });
    expect(await run({ job: 'clips', unit: 'b', args: { x: '4' } }, signal)).toMatchObject({ unit: 'b', summary: '3 clips' });
    expect(seen.at(-1)).toMatchObject({ x: 4, only: ['b'], onLocked: 'wait', models: 'M', signal });
  });
  it('a permanent failure is UnrecoverableError, a busy unit UnitBusyError, a transient one a plain error', async () => {
    const job = { job: 'clips' as const, unit: 'a', args: {} };
    await expect(definitionRunner({ clips: fake({ outcome: 'failed', status: 'missing' }) })(job, signal)).rejects.toBeInstanceOf(PermanentUnitError);
    await expect(definitionRunner({ clips: fake({ outcome: 'skipped', status: 'skipped (locked)' }) })(job, signal)).rejects.toBeInstanceOf(UnitBusyError);
    const transient = definitionRunner({ clips: fake({ outcome: 'failed', status: 'failed', error: 'ffmpeg was killed by SIGSEGV' }) })(job, signal);
    await expect(transient).rejects.toThrow('ffmpeg was killed by SIGSEGV');
    await expect(transient).rejects.not.toBeInstanceOf(PermanentUnitError);
    const badOption = Object.assign(new Error('--crf must be a number'), { code: 'ERR_INVALID_OPTION' });
    await expect(definitionRunner({ clips: fake(badOption) })(job, signal)).rejects.toBeInstanceOf(PermanentUnitError);
    await expect(definitionRunner({})(job, signal)).rejects.toThrow("this worker does not know the job 'clips'");
  });
});

describe('queue add: arguments that travel with each unit', () => {
  it('local paths become absolute; URLs, pipe: commands, none and model names stay', () => {
    expect(absolutePath('out_path', 'out')).toBe(resolve('out'));
    expect(absolutePath('tar_path', ['s/a-{0..1}.tar', 'http://h/b.tar'])).toEqual([resolve('s/a-{0..1}.tar'), 'http://h/b.tar']);
    expect(absolutePath('tar_path', 'a.tar::pipe:cat b.tar')).toBe(`${resolve('a.tar')}::pipe:cat b.tar`);
    expect(absolutePath('visual_model', 'slowfast_8x8_r50')).toBe('slowfast_8x8_r50');
    expect(absolutePath('visual_model', 'models/x.onnx')).toBe(resolve('models/x.onnx'));
    expect(absolutePath('audio_model', 'none')).toBe('none');
  });
  it("drops the queue's own options and resolves the definition's pathArgs only", () => {
    const def = JOB_DEFINITIONS.extract!;
    const args = unitArgs(def, { tar_path: ['s.tar'], out_path: 'o', format: 'json', redis: 'redis://h', queue: 'q', attempts: 2, backoff_seconds: 1 });
    expect(args).toEqual({ tar_path: [resolve('s.tar')], out_path: resolve('o'), format: 'json' });
  });
});
