/**
 * A full disk is a fault of the run, not of an item (issue 18, defect 17 and item 6): on a
 * small tmpfs the test mounts (as root; skipped with a message otherwise), extract and clips
 * stop with one line naming the path and the space needed, exit non-zero, leave no partial
 * file under a final name, and once space is freed the rerun is byte-identical to a clean run.
 * An existing output that does not parse is redone, not skipped.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SHARDS } from '../../fixtures/index.js';
import { extract } from '../../src/jobs/extract.js';
import { makeSource } from '../helpers/clip-sources.js';
import { runCli } from '../helpers/run-cli.js';

const quiet = () => {};
let dir: string;
const mounted = new Set<string>();
let canMount = false;

function mountTmpfs(at: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at], { stdio: 'pipe' });
    mounted.add(at);
    return true;
  } catch {
    return false;
  }
}

function unmount(at: string): void {
  execFileSync('umount', [at]);
  mounted.delete(at);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'full-disk-'));
  if (process.getuid?.() === 0) {
    await mkdir(join(dir, 'probe'));
    canMount = mountTmpfs(join(dir, 'probe'), '64k');
    if (canMount) unmount(join(dir, 'probe'));
  }
  if (!canMount) console.warn('full-disk tests skipped: mounting a tmpfs needs root (and CAP_SYS_ADMIN)');
});
afterAll(async () => {
  for (const m of mounted) unmount(m);
  await rm(dir, { recursive: true, force: true });
});

/** Every file under `root`, relative, sorted. */
async function files(root: string): Promise<string[]> {
  return ((await readdir(root, { recursive: true, withFileTypes: true })) as Array<{ isFile(): boolean; parentPath?: string; path?: string; name: string }>)
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path ?? '', d.name).slice(root.length + 1))
    .sort();
}

describe('extract on a full disk', () => {
  it('stops with one line naming the shard and the space needed, leaves no partial shard, and the rerun is byte-identical', async (ctx) => {
    if (!canMount) ctx.skip();
    const refOut = join(dir, 'ref');
    // Both models: a 15 KB shard, its journal as big, on a 24 KB file system.
    await extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: refOut, onWarning: quiet });
    const ref = await readFile(join(refOut, 'shard-000000.msgpack'));

    const small = join(dir, 'small');
    await mkdir(small);
    expect(mountTmpfs(small, '24k')).toBe(true);
    const out = join(small, 'out');
    const args = ['extract', `--tar_path=${FIXTURE_SHARDS[0]}`, `--out_path=${out}`, '--quiet'];
    const full = runCli(args);
    expect(full.code).not.toBe(0);
    const lines = full.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/no space left on device \(needs [\d.]+ KiB, [\d.]+ (B|KiB) free\); free some space and run again/);
    expect(lines[0]).toContain(join(out, 'shard-000000.msgpack'));
    // Nothing under the final name; the journal is kept for the rerun.
    expect(await files(out)).not.toContain('shard-000000.msgpack');

    execFileSync('mount', ['-o', 'remount,size=1m', small]);
    const again = runCli(args);
    expect(again.stderr).toContain('1 shard(s) written');
    expect(again.code).toBe(0);
    expect((await readFile(join(out, 'shard-000000.msgpack'))).equals(ref)).toBe(true);
    expect((await files(out)).filter((f) => !f.startsWith('log_'))).toEqual(['shard-000000.msgpack']);
    unmount(small);
  });

  it('an existing shard that does not parse (truncated) is redone, not skipped as "output exists"', async () => {
    const ref = await readFile(join(dir, 'ref', 'shard-000000.msgpack'));
    const out = join(dir, 'truncated');
    await mkdir(out);
    await writeFile(join(out, 'shard-000000.msgpack'), ref.subarray(0, Math.floor(ref.length / 2)));
    const warnings: string[] = [];
    const report = await extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: out, onWarning: (w) => warnings.push(w.message) });
    expect(report.shards[0]!.status).toBe('written');
    expect(report.clipsWritten).toBeGreaterThan(0);
    expect(warnings.join('\n')).toMatch(/is not a whole feature shard/);
    expect((await readFile(join(out, 'shard-000000.msgpack'))).equals(ref)).toBe(true);
  });
});

describe('clips on a full disk', () => {
  it('stops the run (exit non-zero, one line naming the path) instead of recording videos as failed; the rerun matches a clean run', async (ctx) => {
    if (!canMount) ctx.skip();
    const src = join(dir, 'src');
    await mkdir(src);
    for (const v of ['a', 'b', 'c', 'd']) await makeSource(join(src, `${v}.mp4`), { seconds: 6, audioHz: 440 });
    await writeFile(join(src, 'list.csv'), `path\n${['a', 'b', 'c', 'd'].map((v) => join(src, `${v}.mp4`)).join('\n')}\n`);
    const args = (out: string) => ['clips', `--sources=${join(src, 'list.csv')}`, `--out_dir=${out}`, '--clip_len_s=2', '--quiet'];
    const clean = runCli(args(join(dir, 'clips-ref')));
    expect(clean.code).toBe(0);

    const small = join(dir, 'small-clips');
    await mkdir(small);
    expect(mountTmpfs(small, '96k')).toBe(true);
    const out = join(small, 'out');
    const full = runCli(args(out));
    expect(full.code).not.toBe(0);
    const lines = full.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/: (no space left on device|disk quota exceeded) \(.*\); free some space and run again/);
    expect(lines.at(-1)).toContain(out);

    execFileSync('mount', ['-o', 'remount,size=8m', small]);
    const again = runCli(args(out));
    expect(again.code).toBe(0);
    const ref = join(dir, 'clips-ref', 'clips');
    const names = await readdir(ref);
    expect((await readdir(join(out, 'clips'))).sort()).toEqual(names.sort());
    for (const n of names) expect((await readFile(join(out, 'clips', n))).equals(await readFile(join(ref, n))), n).toBe(true);
    unmount(small);
  });
});

describe('segments on a full disk', () => {
  it('stops the run with one line naming the file instead of recording segments as failed; the rerun matches a clean run', async (ctx) => {
    if (!canMount) ctx.skip();
    const args = (out: string) => ['segments', '--input=fixtures/segments/matte_move.mp4', `--output=${out}`, '--segment_seconds=1', '--quiet'];
    expect(runCli(args(join(dir, 'seg-ref', 'out.mp4'))).code).toBe(0);
    const small = join(dir, 'small-seg');
    await mkdir(small);
    expect(mountTmpfs(small, '512k')).toBe(true);
    const full = runCli(args(join(small, 'out.mp4')));
    expect(full.code).not.toBe(0);
    const lines = full.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/: no space left on device \(.*\); free some space and run again/);
    expect(lines[0]).toContain(small);
    expect(await files(small)).not.toContain('out.mp4');

    execFileSync('mount', ['-o', 'remount,size=8m', small]);
    expect(runCli(args(join(small, 'out.mp4'))).code).toBe(0);
    expect((await readFile(join(small, 'out.mp4'))).equals(await readFile(join(dir, 'seg-ref', 'out.mp4')))).toBe(true);
    unmount(small);
  });
});

describe('faces on a full disk', () => {
  it('stops the run with one line naming the file instead of recording videos as failed; the rerun matches a clean run', async (ctx) => {
    if (!canMount) ctx.skip();
    const src = join(dir, 'faces-src');
    await mkdir(src);
    for (const v of ['a', 'b']) await makeSource(join(src, `${v}.mp4`), { seconds: 4, audioHz: 440 });
    const args = (out: string) => [
      'faces',
      `--input_dir=${src}`,
      `--output_dir=${out}`,
      '--detector=synthetic',
      '--device=cpu',
      '--threads=1',
      '--size=64',
      '--quiet',
    ];
    expect(runCli(args(join(dir, 'faces-ref'))).code).toBe(0);
    const small = join(dir, 'small-faces');
    await mkdir(small);
    expect(mountTmpfs(small, '64k')).toBe(true);
    const out = join(small, 'out');
    const full = runCli(args(out));
    expect(full.code).not.toBe(0);
    const lines = full.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/: no space left on device \(.*\); free some space and run again/);
    expect(lines[0]).toContain(out);

    execFileSync('mount', ['-o', 'remount,size=8m', small]);
    expect(runCli(args(out)).code).toBe(0);
    const ref = join(dir, 'faces-ref');
    const made = (await files(ref)).filter((f) => f.startsWith('clips/') || f === 'metadata.csv');
    expect(made.length).toBeGreaterThan(1);
    expect((await files(out)).filter((f) => f.startsWith('clips/') || f === 'metadata.csv')).toEqual(made);
    for (const f of made) expect((await readFile(join(out, f))).equals(await readFile(join(ref, f))), f).toBe(true);
    unmount(small);
  });
});
