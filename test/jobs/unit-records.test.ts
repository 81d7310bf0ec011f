/**
 * The one record store (src/sinks/unit-records.ts): records written atomically by concurrent
 * writers (real child processes), a damaged or cut-short record file counted as no record (its
 * unit redone), and tables rebuilt under the lock that equal one run's whatever the interleaving.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonRecords, UnitRecords } from '../../src/sinks/unit-records.js';
import { writeCsvAtomic } from '../../src/util/csv.js';

interface Payload {
  id: string;
  n: number;
  by: string;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'unit-records-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));
const IDS = Array.from({ length: 24 }, (_, i) => `u${String(i).padStart(2, '0')}`);

/** The table of a folder: one row per listed unit, pending when it has no record. */
const writeTable = (out: string, records: Map<string, Payload>) =>
  writeCsvAtomic(
    join(out, 'table.csv'),
    ['id', 'n'],
    IDS.map((id) => ({ id, n: records.get(id)?.n ?? '' })),
  );

/** A child process that records its share of the units, each followed by a table rebuild under the lock (one Node process per writer). */
const WRITER = `
import { jsonRecords, UnitRecords } from ${JSON.stringify(dist('sinks/unit-records.js'))};
import { writeCsvAtomic } from ${JSON.stringify(dist('util/csv.js'))};
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
const [out, who, list, size] = process.argv.slice(1);
const ids = list.split(',');
const big = size === 'big';
const store = new UnitRecords(join(out, 'records'), jsonRecords(), { tablesLock: join(out, '.tables.lock'), owner: who });
const all = ${JSON.stringify(IDS)};
for (const id of ids) {
  await store.write(id, { id, n: Number(id.slice(1)) * 10, by: big ? 'x'.repeat(40_000_000) : 'w' });
  if (big) continue;
  await store.rebuild(async (records) => {
    // Two rebuilds at once (the other writer's inside ours) fail here: the marker exists.
    await writeFile(join(out, 'rebuilding'), who, { flag: 'wx' });
    // Slow enough that an unlocked rebuild of the other writer would interleave and leave a stale table.
    await new Promise((r) => setTimeout(r, 10));
    await writeCsvAtomic(join(out, 'table.csv'), ['id', 'n'], all.map((u) => ({ id: u, n: records.get(u)?.n ?? '' })));
    await rm(join(out, 'rebuilding'));
  });
}
`;

function runWriter(script: string, args: string[]): { done: Promise<number | null>; kill: () => void } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { done: new Promise((resolve) => child.once('exit', (code) => resolve(code))), kill: () => child.kill('SIGKILL') };
}

describe('UnitRecords', () => {
  it('two processes writing different units at once leave every record whole, never rebuild together, and leave the tables of one run', async () => {
    const out = join(dir, 'two');
    await mkdir(out, { recursive: true });
    const a = runWriter(WRITER, [out, 'a', IDS.filter((_, i) => i % 2 === 0).join(','), '']);
    const b = runWriter(WRITER, [out, 'b', IDS.filter((_, i) => i % 2 === 1).join(','), '']);
    expect(await Promise.all([a.done, b.done])).toEqual([0, 0]);
    const store = new UnitRecords<Payload>(join(out, 'records'), jsonRecords());
    const records = await store.readAll();
    expect([...records.keys()]).toEqual(IDS);
    for (const id of IDS) expect(records.get(id)).toEqual({ id, n: Number(id.slice(1)) * 10, by: 'w' });
    // No temp file and no lock left behind.
    expect((await readdir(join(out, 'records'))).sort()).toEqual(IDS.map((id) => `${id}.json`));
    expect(await readdir(out)).not.toContain('.tables.lock');

    // One run over the same units: the same table, byte for byte.
    const ref = join(dir, 'one');
    const one = new UnitRecords<Payload>(join(ref, 'records'), jsonRecords());
    for (const id of IDS) await one.write(id, { id, n: Number(id.slice(1)) * 10, by: 'w' });
    await one.rebuild((r) => writeTable(ref, r));
    expect(await readFile(join(out, 'table.csv'), 'utf8')).toBe(await readFile(join(ref, 'table.csv'), 'utf8'));
  });

  it('a writer killed mid-write leaves the whole record or none, never part of one', async () => {
    const out = join(dir, 'killed');
    await mkdir(out, { recursive: true });
    const w = runWriter(WRITER, [out, 'k', 'u00', 'big']);
    // Kill it while its 40 MB record is being written (or just after).
    const store = new UnitRecords<Payload>(join(out, 'records'), jsonRecords());
    const until = Date.now() + 30_000;
    while (Date.now() < until && (await readdir(join(out, 'records')).catch(() => [] as string[])).length === 0) await new Promise((r) => setTimeout(r, 2));
    w.kill();
    await w.done;
    const got = await store.read('u00');
    if (got !== null) expect(got.by.length).toBe(40_000_000);
    expect(await store.fileNames()).toEqual(got === null ? new Set() : new Set(['u00.json']));
  });

  it('a cut-short or foreign record file counts as no record: said once, its unit redone', async () => {
    const out = join(dir, 'torn');
    const bad: string[] = [];
    const check = (v: unknown) => typeof (v as Payload | null)?.id === 'string';
    const store = new UnitRecords<Payload>(join(out, 'records'), jsonRecords({ check }), { onBad: (path) => bad.push(path) });
    await store.write('a', { id: 'a', n: 1, by: 'w' });
    await store.write('b', { id: 'b', n: 2, by: 'w' });
    const whole = await readFile(store.path('b'));
    await writeFile(store.path('b'), whole.subarray(0, whole.length - 6)); // cut short (a copy, a full disk)
    await writeFile(store.path('c'), '{"something":"else"}\n'); // parses, but is no record
    expect([...(await store.readAll()).keys()]).toEqual(['a']);
    expect(bad).toEqual([store.path('b'), store.path('c')]);
    // Said once per file as it is: a second listing does not say it again.
    expect([...(await store.readAll()).keys()]).toEqual(['a']);
    expect(bad).toHaveLength(2);
    expect(await store.read('b')).toBeNull();
    // Redone: written anew, read again.
    await store.write('b', { id: 'b', n: 2, by: 'again' });
    expect((await store.readAll()).get('b')).toEqual({ id: 'b', n: 2, by: 'again' });
    expect(await store.readMany(['c', 'b', 'a'])).toEqual(
      new Map([
        ['b', { id: 'b', n: 2, by: 'again' }],
        ['a', { id: 'a', n: 1, by: 'w' }],
      ]),
    );
  });

  it('reads a record changed on disk by another writer, and keeps unchanged ones without rereading', async () => {
    const out = join(dir, 'cache');
    const mine = new UnitRecords<Payload>(join(out, 'records'), jsonRecords());
    const theirs = new UnitRecords<Payload>(join(out, 'records'), jsonRecords());
    await mine.write('a', { id: 'a', n: 1, by: 'me' });
    expect((await mine.readAll()).get('a')?.by).toBe('me');
    await theirs.write('a', { id: 'a', n: 1, by: 'them, longer' });
    expect((await mine.readAll()).get('a')?.by).toBe('them, longer');
    await theirs.remove('a');
    expect((await mine.readAll()).size).toBe(0);
    expect(await mine.hasAll(['a'])).toBe(false);
  });

  it('refuses a unit id that cannot name a file in its folder', () => {
    const store = new UnitRecords<Payload>(join(dir, 'names'), jsonRecords());
    for (const id of ['', '..', 'a/b']) expect(() => store.path(id)).toThrow(/cannot name a record file/);
  });
});
