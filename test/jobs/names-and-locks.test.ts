/**
 * Nothing too long, nothing stale (issue 18, defects 12 and 15, item 7), in every job through
 * the real CLI: a 250-byte file name (ASCII, and multi-byte UTF-8) no longer aborts clips,
 * faces or segments (names derived from it are cut to leave room, their tail hashed); a
 * finished run leaves no lock file; and a lock left by a dead process beside a final output,
 * of a unit this run never takes (another rank's), is removed by the next run that finds it.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARDS } from '../../fixtures/index.js';
import { fitName } from '../../src/util/names.js';
import { makeSource } from '../helpers/clip-sources.js';
import { runCli } from '../helpers/run-cli.js';

const ASCII = `${'a'.repeat(246)}.mp4`;
const UTF8 = `${'é'.repeat(123)}.mp4`;

let dir: string;
let input: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'names-locks-'));
  input = join(dir, 'in');
  await mkdir(input);
  await makeSource(join(input, ASCII), { seconds: 3, audioHz: 440 });
  await copyFile(join(input, ASCII), join(input, UTF8));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every path under `root` (files and folders), relative. */
async function walk(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String);
}

/** A lock as a process that has exited since would have left it. */
async function plantDeadLock(path: string): Promise<void> {
  const dead = spawnSync('/bin/true').pid!;
  await writeFile(path, JSON.stringify({ host: hostname(), pid: dead, started: new Date().toISOString(), owner: 'test' }));
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

it('fitName leaves a short name alone and cuts a long one at a character boundary, keeping its extension', () => {
  expect(Buffer.byteLength(ASCII)).toBe(250);
  expect(Buffer.byteLength(UTF8)).toBe(250);
  expect(fitName('talk.mp4')).toBe('talk.mp4');
  for (const n of [ASCII, UTF8]) {
    const f = fitName(n);
    expect(Buffer.byteLength(f)).toBeLessThanOrEqual(159);
    expect(f.endsWith('.mp4')).toBe(true);
    expect(f).not.toContain('\uFFFD');
  }
  expect(fitName(`${'a'.repeat(200)}x`)).not.toBe(fitName(`${'a'.repeat(200)}y`));
});

describe.each([
  {
    job: 'clips',
    args: (out: string) => ['clips', `--sources=${input}`, `--out_dir=${out}`, '--clip_len_s=1', '--quiet'],
    // The unit of the second source (é...), which rank 0 of 2 does not take.
    finalOfSecond: async (out: string) => {
      const units = (await readdir(join(out, '.units'))).filter((n) => n.startsWith('%C3')).sort();
      return join(out, '.units', units[0]!);
    },
    made: async (out: string) => (await readdir(join(out, 'clips'))).length,
  },
  {
    job: 'faces',
    args: (out: string) => [
      'faces',
      `--input_dir=${input}`,
      `--output_dir=${out}`,
      '--detector=synthetic',
      '--device=cpu',
      '--threads=1',
      '--size=64',
      '--quiet',
    ],
    finalOfSecond: async (out: string) => {
      const recs = (await readdir(join(out, 'faces-records'))).filter((n) => n.startsWith('é')).sort();
      return join(out, 'faces-records', recs[0]!);
    },
    made: async (out: string) => (await readdir(join(out, 'faces-records'))).filter((n) => n.endsWith('.msgpack')).length,
  },
  {
    job: 'segments',
    args: (out: string) => ['segments', `--input_dir=${input}`, `--output_dir=${out}`, '--segment_seconds=2', '--quiet'],
    finalOfSecond: async (out: string) => join(out, (await readdir(out)).filter((n) => n.startsWith('é') && n.endsWith('.mp4'))[0]!),
    made: async (out: string) => (await readdir(out)).filter((n) => n.endsWith('.mp4')).length,
  },
])('$job', ({ job, args, finalOfSecond, made }) => {
  it('runs every video with a 250-byte name (ASCII and UTF-8), leaves no lock, and the next run removes a dead lock beside a final output', async () => {
    const out = join(dir, job);
    const r = runCli(args(out));
    expect(r.stderr).not.toMatch(/ENAMETOOLONG/);
    expect(r.code).toBe(0);
    expect(await made(out)).toBeGreaterThanOrEqual(2);
    const names = await walk(out);
    for (const n of names) for (const part of n.split('/')) expect(Buffer.byteLength(part)).toBeLessThanOrEqual(255);
    expect(names.filter((n) => n.endsWith('.lock'))).toEqual([]);

    const final = await finalOfSecond(out);
    await plantDeadLock(`${final}.lock`);
    const again = runCli([...args(out), '--rank=0', '--world=2']);
    expect(again.code).toBe(0);
    expect(await exists(final)).toBe(true);
    expect(await exists(`${final}.lock`)).toBe(false);
    expect((await walk(out)).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });
});

describe('extract', () => {
  it('leaves no lock, and removes a dead lock beside a final shard that is not in its list', async () => {
    const out = join(dir, 'extract');
    const r = runCli(['extract', `--tar_path=${FIXTURE_SHARDS[0]}`, `--out_path=${out}`, '--visual_model=none', '--quiet']);
    expect(r.code).toBe(0);
    expect((await walk(out)).filter((n) => n.endsWith('.lock'))).toEqual([]);
    // A shard of another rank, finished by a run killed before it removed its lock.
    await copyFile(join(out, 'shard-000000.msgpack'), join(out, 'shard-000001.msgpack'));
    await plantDeadLock(join(out, 'shard-000001.msgpack.lock'));
    const again = runCli(['extract', `--tar_path=${FIXTURE_SHARDS[0]}`, `--out_path=${out}`, '--visual_model=none', '--quiet']);
    expect(again.code).toBe(0);
    expect(await exists(join(out, 'shard-000001.msgpack.lock'))).toBe(false);
  });
});
