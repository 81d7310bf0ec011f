/**
 * `extract` on tars made by other tools or damaged, and on bad options (issue 9: items 9, 11,
 * 16, 17, 18, 19, 21, 24), through the real CLI and the library.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS, fixtureClipPath } from '../../fixtures/index.js';
import { extract } from '../../src/jobs/extract.js';
import { completedIndices, readFeatureShard } from '../../src/sinks/feature-shard.js';
import { END_OF_ARCHIVE, member } from '../helpers/tar.js';
import { runCli, startCli } from '../helpers/run-cli.js';
import { setTimeout as sleep } from 'node:timers/promises';

const good = FIXTURE_CLIPS.filter((c) => !c.corrupt && !c.tooShort);
const quiet = () => {};
/** Audio features only: the fastest real run (the video is not decoded). */
const FAST = ['--visual_model=none', '--quiet'];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-robust-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function clip(i: number): Promise<Buffer> {
  return readFile(fixtureClipPath(good[i]!.file));
}

/** A shard-NNNNNN.tar (+ .json listing `listed`) from raw members. */
async function shard(folder: string, name: string, members: Buffer[], listed?: string[]): Promise<string> {
  const tar = join(folder, `${name}.tar`);
  await writeFile(tar, Buffer.concat(members));
  if (listed) await writeFile(join(folder, `${name}.json`), JSON.stringify(listed.map((f, i) => ({ filename: f, id: `id${i}`, segment: [0, 10] }))));
  return tar;
}

async function runLog(out: string): Promise<{ shard_results: Array<Record<string, unknown>> }> {
  const logs = (await readdir(out)).filter((f) => f.startsWith('log_')).sort();
  return JSON.parse(await readFile(join(out, logs[logs.length - 1]!), 'utf8'));
}

describe('bad options: exit 2, one line naming the flag, before anything is opened (items 16, 19, 24)', () => {
  it.each([
    ['--window_seconds=0', '--window_seconds: expected number between 0.1 and 3600'],
    ['--min_duration=-1', '--min_duration: expected number between 0 and 3600'],
    ['--decode_timeout=0', '--decode_timeout: expected number between 0.001 and 86400'],
    ['--crop=diagonal', "--crop: expected one of 'top-left', 'center'"],
    ['--threads=-2', '--threads: expected integer between 1 and 1024'],
    ['--resize=nice', "--resize: expected one of 'exact', 'fast'"],
    ['--color_matrix=bt709', "--color_matrix: expected one of 'bt601', 'source'"],
  ])('%s', (flag, message) => {
    const r = runCli(['extract', `--tar_path=${join(dir, 'none.tar')}`, `--out_path=${join(dir, 'o16')}`, flag, '--quiet']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(lines).toHaveLength(2); // the error, and where to find usage
  });

  it('--out_path=/proc/x: one line, exit 2, no recursive mkdir spinning', () => {
    const t0 = Date.now();
    const r = runCli(['extract', `--tar_path=${join(dir, 'none.tar')}`, '--out_path=/proc/x/y', '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^clipstream extract: error: --out_path: cannot create the folder \/proc\/x/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('--out_path naming a file: exit 2', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const r = runCli(['extract', `--tar_path=${join(dir, 'none.tar')}`, `--out_path=${file}`, '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out_path: ${file} exists and is not a folder`);
  });

  it('a model of the wrong kind: the models are closed and the run exits (1) instead of hanging', () => {
    const t0 = Date.now();
    const r = runCli(['extract', `--tar_path=${join(dir, 'none.tar')}`, `--out_path=${join(dir, 'o-kind')}`, '--visual_model=vggish_small.onnx', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/expected a visual model but its metadata says 'audio'/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('--device=auto without CUDA is quiet; --device=cuda and --verbose say it once', async () => {
    const folder = await mkdtemp(join(dir, 'dev-'));
    const tar = await shard(folder, 'shard-000000', [member(good[0]!.file, await clip(0)), END_OF_ARCHIVE]);
    const cuda = (extra: string[]) =>
      runCli(['extract', `--tar_path=${tar}`, `--out_path=${join(folder, `o${extra.join('')}`)}`, ...FAST, ...extra]).stderr.split(
        'CUDA execution provider could not be loaded',
      ).length - 1;
    expect(cuda(['--device=auto'])).toBe(0);
    expect(cuda(['--device=cuda'])).toBe(1);
    expect(cuda(['--device=auto', '--verbose'])).toBe(1);
  });
});

describe('shards that produce no output or are damaged (items 9, 11, 17)', () => {
  it('a shard that is not a tar is reported as "no output", and the exit code says so', async () => {
    const folder = await mkdtemp(join(dir, 'noout-'));
    const tar = join(folder, 'shard-000000.tar');
    await writeFile(tar, Buffer.alloc(3000, 0x41));
    const out = join(folder, 'out');
    const r = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('0 shard(s) written');
    expect(r.stderr).toContain('1 with no output');
    expect((await runLog(out)).shard_results[0]).toMatchObject({ status: 'no output', output: null });
    expect((await readdir(out)).filter((f) => !f.startsWith('log_'))).toEqual([]);
  });

  it('a directory member carrying data costs only itself: every clip written, no journal, exit 0', async () => {
    const folder = await mkdtemp(join(dir, 'dirdata-'));
    const names = [good[0]!.file, good[1]!.file, good[2]!.file];
    const tar = await shard(
      folder,
      'shard-000000',
      [
        member(names[0]!, await clip(0)),
        member('clips/', await clip(3), '5'),
        member(names[1]!, await clip(1)),
        member(names[2]!, await clip(2)),
        END_OF_ARCHIVE,
      ],
      names,
    );
    const out = join(folder, 'out');
    const r = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(r.code).toBe(0);
    expect((await readFeatureShard(join(out, 'shard-000000.msgpack'))).map((x) => x.filename)).toEqual(names);
    expect((await readdir(out)).filter((f) => f.includes('journal'))).toEqual([]);
  });

  it('a tar cut at a member boundary: warned, logged incomplete with the missing clips; reruns say so until the tar is replaced', async () => {
    const folder = await mkdtemp(join(dir, 'cut-'));
    const names = [good[0]!.file, good[1]!.file, good[2]!.file];
    const whole = [member(names[0]!, await clip(0)), member(names[1]!, await clip(1)), member(names[2]!, await clip(2)), END_OF_ARCHIVE];
    const tar = await shard(folder, 'shard-000000', whole.slice(0, 1), names);
    const out = join(folder, 'out');
    const first = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(first.code).toBe(3);
    expect(first.stderr).toContain(`is incomplete: 2 of 3 clips listed in`);
    expect(first.stderr).toContain(names[2]);
    const log = (await runLog(out)).shard_results[0]!;
    expect(log.status).toBe('written (incomplete)');
    expect((log.incomplete as { missing: string[] }).missing).toEqual(names.slice(1));
    expect((await readFeatureShard(join(out, 'shard-000000.msgpack'))).map((x) => x.filename)).toEqual(names.slice(0, 1));
    const marker = JSON.parse(await readFile(join(out, 'shard-000000.incomplete.json'), 'utf8'));
    expect(marker.missing).toEqual(names.slice(1));

    // Same tar again: skipped, but never silently.
    const again = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/exists but is incomplete .* skipped as the tar is unchanged/);
    expect((await runLog(out)).shard_results[0]!.status).toBe('skipped (output exists, incomplete)');

    // The tar replaced by a whole one: redone, complete, the marker gone.
    await writeFile(tar, Buffer.concat(whole));
    const fixed = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(fixed.code).toBe(0);
    expect((await readFeatureShard(join(out, 'shard-000000.msgpack'))).map((x) => x.filename)).toEqual(names);
    expect((await readdir(out)).filter((f) => f.includes('incomplete'))).toEqual([]);
  });

  it('a 0-byte tar with a json: no output, every listed clip named missing', async () => {
    const folder = await mkdtemp(join(dir, 'zero-'));
    const names = [good[0]!.file, good[1]!.file];
    const tar = await shard(folder, 'shard-000000', [], names);
    const out = join(folder, 'out');
    const r = runCli(['extract', `--tar_path=${tar}`, `--out_path=${out}`, ...FAST]);
    expect(r.code).toBe(3);
    const log = (await runLog(out)).shard_results[0]!;
    expect(log.status).toBe('no output');
    expect((log.incomplete as { missing: string[] }).missing).toEqual(names);
  });
});

describe('resume by position; keys in records (items 18, 21)', () => {
  it('a key that appears twice (not adjacent): interrupted + resumed gives the records of an uninterrupted run', async () => {
    const folder = await mkdtemp(join(dir, 'twice-'));
    const a = good[0]!.file;
    const b = good[1]!.file;
    const c = good[2]!.file;
    const tar = await shard(folder, 'shard-000000', [
      member(a, await clip(0)),
      member(b, await clip(1)),
      member(a, await clip(3)),
      member(c, await clip(2)),
      END_OF_ARCHIVE,
    ]);
    const common = { tarPath: tar, visualModel: null, onWarning: quiet, parallelDecoders: 1, batchSize: 1 };
    await extract({ ...common, outputDir: join(folder, 'ref') });
    const ref = await readFile(join(folder, 'ref', 'shard-000000.msgpack'));
    expect(await readFeatureShard(join(folder, 'ref', 'shard-000000.msgpack'))).toHaveLength(4);

    // Stop when the second clip passes (the first is journalled by then, the second 'a' is not), then run again.
    const ctl = new AbortController();
    await extract({ ...common, outputDir: join(folder, 'out'), signal: ctl.signal, onProgress: (p) => p.clipsDone >= 2 && ctl.abort() }).catch(() => {});
    const journalled = await completedIndices(join(folder, 'out'), 'shard-000000');
    expect(journalled.has(0)).toBe(true);
    expect(journalled.has(2)).toBe(false);
    await extract({ ...common, outputDir: join(folder, 'out') });
    expect((await readFile(join(folder, 'out', 'shard-000000.msgpack'))).equals(ref)).toBe(true);

    // The same with kill -9 of the CLI once the first clip is journalled.
    const killed = join(folder, 'killed');
    const child = startCli(['extract', `--tar_path=${tar}`, `--out_path=${killed}`, '--visual_model=none', '--quiet', '--num_workers=1', '--batch_size=1']);
    const exited = new Promise((r) => child.on('close', r));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await completedIndices(killed, 'shard-000000').catch(() => new Set<number>())).size < 1) await sleep(10);
    child.kill('SIGKILL');
    await exited;
    const r = runCli(['extract', `--tar_path=${tar}`, `--out_path=${killed}`, '--visual_model=none', '--quiet', '--num_workers=1', '--batch_size=1']);
    expect(r.code).toBe(0);
    expect((await readFile(join(killed, 'shard-000000.msgpack'))).equals(ref)).toBe(true);
  });

  it('records carry __key__ (cam1/plain_0 vs cam2/plain_0), Python reads it, and key.video.mp4 is found', async () => {
    const folder = await mkdtemp(join(dir, 'keys-'));
    const tar = await shard(folder, 'shard-000000', [
      member('cam1/plain_0.mp4', await clip(0)),
      member('cam2/plain_0.mp4', await clip(1)),
      member('multi_0.video.mp4', await clip(2)),
      END_OF_ARCHIVE,
    ]);
    const out = join(folder, 'out');
    const report = await extract({ tarPath: tar, outputDir: out, visualModel: null, onWarning: quiet });
    expect(report.clipsFailed).toBe(0);
    const recs = await readFeatureShard(join(out, 'shard-000000.msgpack'));
    expect(recs.map((r) => r.__key__)).toEqual(['cam1/plain_0', 'cam2/plain_0', 'multi_0']);
    const py = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        [
          'import sys, msgpack, msgpack_numpy',
          "recs = msgpack.unpackb(open(sys.argv[1], 'rb').read(), object_hook=msgpack_numpy.decode)",
          "print(','.join(r['__key__'] + ':' + r['filename'] for r in recs))",
        ].join('\n'),
        join(out, 'shard-000000.msgpack'),
      ],
      { encoding: 'utf8' },
    );
    expect(py.trim()).toBe('cam1/plain_0:plain_0.mp4,cam2/plain_0:plain_0.mp4,multi_0:multi_0.video.mp4');
  });
});
