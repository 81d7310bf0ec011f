import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Duplex, Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import { checkStages, itemStage, Slots, type ItemFailure } from '../../src/stage/index.js';

interface Item {
  key: string;
  n: number;
  doubled?: number;
  failure?: ItemFailure;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const items = (ns: number[]): Item[] => ns.map((n) => ({ key: `k${n}`, n }));

async function run(source: Item[], ...stages: Duplex[]): Promise<Item[]> {
  const out: Item[] = [];
  const sink = new Writable({
    objectMode: true,
    write(item: Item, _enc, cb) {
      out.push(item);
      cb();
    },
  });
  await pipeline([Readable.from(source), ...stages, sink]);
  return out;
}

describe('itemStage', () => {
  it('runs the step per item, at most `concurrency` at once, in input order', async () => {
    let running = 0;
    let most = 0;
    const double = itemStage<Item>({ name: 'double', needs: ['n'], adds: ['doubled'], concurrency: 3 }, async (item) => {
      running++;
      most = Math.max(most, running);
      await sleep(item.n % 2 ? 30 : 5);
      item.doubled = item.n * 2;
      running--;
    });
    const out = await run(items([1, 2, 3, 4, 5, 6, 7]), double);
    expect(out.map((i) => i.doubled)).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(most).toBe(3);
  });

  it('marks a failing item with the one failure field and passes it on untouched by later stages', async () => {
    const seen: string[] = [];
    const first = itemStage<Item>({ name: 'first', code: 'ERR_DECODE' }, async (item) => {
      if (item.n === 2) throw new Error('broken');
    });
    const second = itemStage<Item>({ name: 'second' }, async (item) => {
      seen.push(item.key);
    });
    const out = await run(items([1, 2, 3]), first, second);
    expect(seen).toEqual(['k1', 'k3']);
    const f = out[1]!.failure!;
    expect(f.stage).toBe('first');
    expect(f.status).toBe('failed');
    expect(f.error).toBeInstanceOf(ClipstreamError);
    expect(f.error.code).toBe('ERR_DECODE');
    expect(f.error.where.key).toBe('k2');
    expect(out[0]!.failure).toBeUndefined();
  });

  it("stops the pipeline with onError: 'throw', and lets a function decide per error", async () => {
    const failing = (onError: 'throw' | ((e: ClipstreamError) => 'throw' | 'skip')) =>
      itemStage<Item>({ name: 'fail', onError }, async (item) => {
        if (item.n === 2) throw new ClipstreamError('ERR_DECODE_TIMEOUT', 'stalled');
      });
    await expect(run(items([1, 2, 3]), failing('throw'))).rejects.toThrow('stalled');
    await expect(
      run(
        items([1, 2, 3]),
        failing((e) => (e.code === 'ERR_DECODE_TIMEOUT' ? 'throw' : 'skip')),
      ),
    ).rejects.toThrow('stalled');
    const out = await run(
      items([1, 2, 3]),
      failing((e) => (e.code === 'ERR_DECODE' ? 'throw' : 'skip')),
    );
    expect(out.map((i) => i.failure?.stage)).toEqual([undefined, 'fail', undefined]);
  });

  it('passes items it does not accept through, and can put another item in its place', async () => {
    const stage = itemStage<Item>({ name: 'odd', accepts: (i) => i.n % 2 === 1 }, async (item) => ({ key: item.key, n: -item.n }));
    const out = await run(items([1, 2, 3]), stage);
    expect(out.map((i) => i.n)).toEqual([-1, 2, -3]);
  });

  it('shares Slots between stages: no more steps at once than slots', async () => {
    const slots = new Slots(2);
    let running = 0;
    let most = 0;
    const step = async () => {
      running++;
      most = Math.max(most, running);
      await sleep(10);
      running--;
    };
    const a = itemStage<Item>({ name: 'a', concurrency: 2, slots }, step);
    const b = itemStage<Item>({ name: 'b', concurrency: 2, slots }, step);
    await run(items([1, 2, 3, 4, 5, 6]), a, b);
    expect(most).toBe(2);
  });

  it('declares its contract: checkStages refuses a composition out of order', () => {
    const decode = itemStage<Item>({ name: 'decode', needs: ['n'], adds: ['doubled'] }, async () => {});
    const use = itemStage<Item>({ name: 'use', needs: ['doubled'] }, async () => {});
    expect(() => checkStages([use, decode], ['n'])).toThrow(/stage 'use' needs 'doubled', which stage 'decode' adds only after it/);
    expect(checkStages([decode, use], ['n'])).toHaveLength(2);
  });
});

describe('"How to write a stage" (src/stage/index.ts)', () => {
  it('its @example runs against the built package and prints what its comment says', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const doc = readFileSync(join(root, 'src', 'stage', 'index.ts'), 'utf8');
    const lines = doc.slice(doc.indexOf(' * @example') + ' * @example'.length, doc.indexOf(' * @module')).split('\n');
    const code = lines.map((l) => l.replace(/^ \* ?/, '')).join('\n');
    const expected = /\/\/ (\[\[.*\]\])\s*$/.exec(code.trim())?.[1];
    expect(expected).toBeDefined();
    // Inside the package, so that `import ... from 'clipstream'` is the package itself (dist/, built by the global setup).
    const file = join(root, `stage-example.tmp-${process.pid}.mjs`);
    writeFileSync(file, code);
    try {
      const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' });
      expect(out.trim()).toBe(expected);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
