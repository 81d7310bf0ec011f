/**
 * Issue 9, item 12: `kill -9` in the middle of `clipstream clips`. Finished clips are final
 * the moment they are encoded; the rerun removes the dead run's temporary files, encodes
 * only the clips that were not finished, and ends with what an uninterrupted run makes.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeSource } from '../helpers/clip-sources.js';
import { runCli, startCli } from '../helpers/run-cli.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-kill-'));
  await makeSource(join(dir, 'long.mp4'), { seconds: 12, fps: 25, size: '320x240', audioHz: 440 });
  await writeFile(join(dir, 'sources.csv'), 'video_id,path\nlong,long.mp4\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const args = (out: string) => [
  'clips',
  `--sources=${join(dir, 'sources.csv')}`,
  `--out_dir=${join(dir, out)}`,
  '--clip_len_s=1',
  '--num_clips_per_chunk=1',
  '--preset=slower',
  '--quiet',
];

async function listAll(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(root, join(d, e.name)));
    }
  };
  await walk(root);
  return out.sort();
}

const finished = async (out: string) => (await readdir(join(dir, out, 'clips')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
const md5 = async (f: string) =>
  createHash('md5')
    .update(await readFile(f))
    .digest('hex');

it('a rerun after SIGKILL encodes only the unfinished clips, leaves no temp files, and equals an uninterrupted run', async () => {
  const child = startCli(args('killed'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 60_000;
  while ((await finished('killed')).length < 4) {
    if (Date.now() > deadline) throw new Error(`no 4 clips in 60 s: ${stderr}`);
    await sleep(10);
  }
  // Kill while the next clip is being written, so the dead run leaves a temp file behind.
  while (!(await listAll(join(dir, 'killed'))).some((f) => f.includes('.tmp-')) && Date.now() < deadline) await sleep(5);
  child.kill('SIGKILL');
  await exited;
  const kept = (await finished('killed')).length;
  expect(kept).toBeGreaterThanOrEqual(4);
  expect(kept).toBeLessThan(12);
  // What the killed run was writing is left behind under temporary names (its ffmpeg died with it).
  const junk = (await listAll(join(dir, 'killed'))).filter((f) => f.includes('.tmp-'));
  expect(junk.length, 'the kill left no temp file to clean up').toBeGreaterThan(0);

  const rerun = runCli(args('killed'));
  expect(rerun.code, rerun.stderr).toBe(0);
  expect(rerun.stderr).toContain(`12 clips (${12 - kept} made now, ${kept} already there)`);
  const files = await listAll(join(dir, 'killed'));
  expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
  expect(files.filter((f) => f.startsWith('.work'))).toEqual([]);

  const clean = runCli(args('clean'));
  expect(clean.code, clean.stderr).toBe(0);
  // The run logs are one per run: the killed run's says it did not finish, the rerun's that it did.
  const isLog = (f: string) => /^log_.*\.json$/.test(f);
  const logs = await Promise.all(files.filter(isLog).map(async (f) => JSON.parse(await readFile(join(dir, 'killed', f), 'utf8')) as { finished: boolean }));
  expect(logs.map((l) => l.finished).sort()).toEqual([false, true]);
  expect((await listAll(join(dir, 'clean'))).filter((f) => !isLog(f))).toEqual(files.filter((f) => !isLog(f)));
  for (const f of await finished('clean')) expect(await md5(join(dir, 'killed', 'clips', f)), f).toBe(await md5(join(dir, 'clean', 'clips', f)));
  for (const t of ['clips.csv', 'videos.csv', 'span_issues.csv']) {
    const norm = (s: string) => s.replaceAll(join(dir, 'killed'), '<out>').replaceAll(join(dir, 'clean'), '<out>');
    expect(norm(await readFile(join(dir, 'killed', t), 'utf8')), t).toBe(norm(await readFile(join(dir, 'clean', t), 'utf8')));
  }
}, 180_000);
