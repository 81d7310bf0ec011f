import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCounted } from '../helpers/segments.js';
import { runCli, startCli } from '../helpers/run-cli.js';

const FIXTURE = 'fixtures/segments/matte_move.mp4';
let dir: string;
let reference: Buffer;
const base = (out: string, ...more: string[]) => ['segments', `--input=${FIXTURE}`, `--output=${out}`, '--segment_seconds=1', '--quiet', ...more];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-cli-'));
  const out = join(dir, 'ref', 'matted.mp4');
  const r = runCli(base(out));
  expect(r.code, r.stderr).toBe(0);
  reference = await readFile(out);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clipstream segments (CLI)', () => {
  it("runs the README's first command", async () => {
    const out = join(dir, 'readme', 'matted.mp4');
    const r = runCli(['segments', `--input=${FIXTURE}`, `--output=${out}`, '--segment_seconds=2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    expect(r.stderr).toMatch(/1\/1 video\(s\) complete; 3 segment\(s\) run, 0 reused/);
    const p = await probeCounted(out);
    expect(Number(p.video.nb_read_frames)).toBe(150);
    expect(p.audio).not.toBeNull();
  });

  it.each([
    [['--segment_seconds=0'], /--segment_seconds/],
    [['--state=warm'], /--state/],
    [['--audio=maybe'], /--audio/],
    [['--downsample_ratio=2'], /--downsample_ratio/],
    [['--bit_rate=fast'], /--bit_rate/],
  ])('refuses %j with a one-line error naming the flag, exit 2', (extra, flag) => {
    const r = runCli(base(join(dir, 'bad.mp4'), ...extra));
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(flag);
    expect(r.stderr.split('\n')[0]).toMatch(/^clipstream segments: error: segments: /);
  });

  it('refuses a missing --output and both --input and --input_dir', () => {
    expect(runCli(['segments', `--input=${FIXTURE}`]).stderr).toMatch(/missing required option --output/);
    const both = runCli(['segments', `--input=${FIXTURE}`, '--output=x.mp4', '--input_dir=a', '--output_dir=b']);
    expect(both.code).toBe(2);
  });

  // Kill points: while segment 0 is being encoded, after 3 records, and after the last record (join/remux).
  it.each([
    ['while the first segment is encoded', (work: string) => readdirSafe(work).some((n) => n.startsWith('.seg_000000.mp4.tmp-'))],
    ['after three records', (work: string) => existsSync(join(work, 'records', 'seg_000002.json'))],
    ['after the last record', (work: string) => existsSync(join(work, 'records', 'seg_000005.json'))],
  ])('kill -9 %s, then rerun: the output equals an uninterrupted run', async (_name, when) => {
    const out = join(dir, `kill-${_name.replace(/\W+/g, '-')}`, 'matted.mp4');
    const work = out.replace(/\.mp4$/, '.segments');
    const child = startCli(base(out));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let killed = false;
    while (!killed) {
      if (child.exitCode !== null) break;
      if (when(work)) {
        child.kill('SIGKILL');
        killed = true;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    expect(killed, 'the run ended before the kill point').toBe(true);
    const r = runCli(base(out));
    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.compare(await readFile(out), reference)).toBe(0);
    // Nothing half-written is left behind.
    expect(readdirSafe(work).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(readdirSafe(join(work, 'records')).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('the four steps alone (split, infer, join, remux) give the same output as one command', async () => {
    const out = join(dir, 'steps', 'matted.mp4');
    for (const step of ['split', 'infer', 'join', 'remux']) {
      const r = runCli(['segments', step, ...base(out).slice(1)]);
      expect(r.code, `${step}: ${r.stderr}`).toBe(0);
    }
    expect(Buffer.compare(await readFile(out), reference)).toBe(0);
    const work = out.replace(/\.mp4$/, '.segments');
    const list = await readFile(join(work, 'source', 'file_list.txt'), 'utf8');
    expect(list.trim().split('\n')).toHaveLength(6);
    const first = await probeCounted(join(work, 'source', 'output_000.mp4'));
    expect(Number(first.video.nb_read_frames)).toBe(25);
    expect(JSON.parse(await readFile(join(work, 'processed.json'), 'utf8'))['seg_000005.mp4']).toBe(true);
  });
});

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
