import type { JobFigures, Side } from '../../scripts/gpu-check.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// scripts/gpu-check.sh in quick mode on this machine, and its comparer (scripts/gpu-compare.ts) on outputs that must
// and must not agree. Where there is no GPU (CI, this machine), every GPU side runs the job's own CPU fallback, and
// the script must say so, with the reason, and still compare. Truth: the recipe of the quick work (2 clips bundled,
// spans of 100 and 150 frames, a 100-frame face video sampled every 4th frame, the 150-frame segments fixture, counted
// by ffprobe here), what this machine has (nvidia-smi on PATH, the CUDA provider library on disk), and outputs
// perturbed by a Python msgpack_numpy / cv2 / ffmpeg writer by known amounts.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PY = '/usr/bin/python3';
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const COMPARE = join(ROOT, 'scripts', 'gpu-compare.ts');
const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function runTool(cmd: string, args: string[], timeout = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const compare = async (...args: string[]) => {
  const r = await runTool(TSX, [COMPARE, ...args]);
  return { ...r, json: r.stdout.trim() ? (JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>) : null };
};

type Job = JobFigures & { gpu: Side; cpu: Side };

let scratch: string;
let work: string;
let check: Result;
let line: Record<string, unknown> & { jobs: Record<string, Job> };

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'clipstream-gpu-check-test-'));
  work = join(scratch, 'work');
  check = await runTool(join(ROOT, 'scripts', 'gpu-check.sh'), ['--quick', `--work_dir=${work}`, '--keep'], 280_000);
  const last = check.stdout.trim().split('\n').pop() ?? '';
  line = JSON.parse(last);
}, 300_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const onPath = (tool: string) => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, tool)));

describe('scripts/gpu-check.sh --quick', () => {
  it('prints one JSON line, exits 0, and every job agrees with its CPU run', () => {
    expect(check.code, check.stderr.slice(-3000)).toBe(0);
    expect(check.stdout.trim().split('\n')).toHaveLength(1);
    expect(line.check).toBe('gpu-check');
    expect(line.mode).toBe('quick');
    expect(line.agree).toBe(true);
    expect(line.exit).toBe(0);
    expect(Object.keys(line.jobs).sort()).toEqual(['clips', 'extract', 'faces', 'segments']);
    const host = line.host as { cores: number; load_avg_start: number[]; load_avg_end: number[] };
    expect(host.cores).toBeGreaterThan(0);
    expect(host.load_avg_start).toHaveLength(3);
    expect(host.load_avg_end).toHaveLength(3);
    for (const [name, job] of Object.entries(line.jobs)) {
      expect(job.error, name).toBeUndefined();
      expect(job.agree, `${name}: ${job.problems.join('; ')}`).toBe(true);
      expect(job.problems, name).toEqual([]);
      expect(job.compared, name).toBeGreaterThan(0);
      expect(job.max_abs_diff, name).not.toBeNull();
      expect(job.max_abs_diff!, name).toBeLessThanOrEqual(name === 'segments' ? 1 / 255 : 1e-3);
      for (const side of [job.cpu, job.gpu]) {
        expect(side.wall_s, name).toBeGreaterThan(0);
        // CPU seconds of the process, the spawn helper and ffmpeg (Linux /proc).
        expect(side.cpu_s, name).toBeGreaterThan(0);
        expect(side.per_s, name).toBeCloseTo(side.items / side.wall_s, 1);
      }
      expect(job.cpu.used, name).toBe(name === 'clips' ? 'libx264' : 'cpu');
      // The same work on both sides.
      expect(job.gpu.items, name).toBe(job.cpu.items);
    }
  });

  it('did the quick work of its recipe', async () => {
    const { jobs } = line;
    expect(jobs.extract!.cpu).toMatchObject({ items: 2, unit: 'clips' });
    // Spans long_clip-B_0_100 and long_clip-B_150_300 of a 300-frame source.
    expect(jobs.clips!.cpu).toMatchObject({ items: 250, unit: 'frames' });
    const frames = async (f: string) =>
      Number(
        (await runTool(FFPROBE, ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', f]))
          .stdout,
      );
    expect(jobs.faces!.cpu).toMatchObject({ items: (await frames(join(ROOT, 'fixtures', 'faces', 'face_gap.mp4'))) / 4, unit: 'sampled frames' });
    expect(jobs.segments!.cpu).toMatchObject({ items: await frames(join(ROOT, 'fixtures', 'segments', 'matte_move.mp4')), unit: 'frames' });
  });

  it('asked for the GPU on the GPU side, and says plainly what was missing when it ran on the CPU fallback', () => {
    const gpu = line.gpu as { name: string | null; note: string | null };
    const ort = line.onnxruntime as { cuda_provider_library: string | null; note: string | null };
    const ff = line.ffmpeg as { path: string; nvenc: string[] };
    const hasSmi = onPath('nvidia-smi');
    if (!hasSmi) {
      expect(gpu.name).toBeNull();
      expect(gpu.note).toMatch(/nvidia-smi not found/);
    }
    const lib = join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
    if (existsSync(lib)) expect(ort.cuda_provider_library).not.toBeNull();
    else {
      expect(ort.cuda_provider_library).toBeNull();
      expect(ort.note).toMatch(/^cuda provider library absent: onnxruntime-node's CUDA libraries are not installed .*docs\/gpu\.md/);
    }
    for (const [name, job] of Object.entries(line.jobs)) {
      expect(job.gpu.requested, name).toBe(name === 'clips' ? 'h264_nvenc' : 'cuda:0');
      const ranOnGpu = name === 'clips' ? job.gpu.used.startsWith('h264_nvenc') : job.gpu.used.startsWith('cuda');
      if (!hasSmi) expect(ranOnGpu, name).toBe(false);
      if (ranOnGpu) expect(job.gpu_skipped, name).toBeNull();
      else {
        expect(job.gpu.used, name).toBe(name === 'clips' ? 'libx264' : 'cpu');
        expect(job.gpu_skipped, name).toMatch(/^ran on the CPU fallback/);
        if (name !== 'clips' && !existsSync(lib)) expect(job.gpu_skipped, name).toContain('cuda provider library absent');
        if (name === 'clips' && ff.nvenc.length > 0 && !hasSmi) expect(job.gpu_skipped, name).toContain('nvidia-smi not found');
      }
    }
    expect(line.gpu_ran).toBe(Object.values(line.jobs).every((j) => j.gpu_skipped === null));
  });

  it('refuses a bad option with exit 2 and names it', async () => {
    const r = await runTool(join(ROOT, 'scripts', 'gpu-check.sh'), ['--device=gpu7']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad option --device=gpu7');
    expect(r.stdout).toBe('');
  });
});

describe('scripts/gpu-compare.ts', () => {
  // Adds `delta` to one value of the first visual layer of the first record (or drops the record), in Python.
  const perturb = async (from: string, to: string, delta: number | 'drop') => {
    await mkdir(to, { recursive: true });
    const py = [
      'import sys, msgpack, msgpack_numpy as m',
      'src, dst, delta = sys.argv[1], sys.argv[2], sys.argv[3]',
      'recs = msgpack.unpackb(open(src, "rb").read(), object_hook=m.decode, raw=False)',
      'if delta == "drop":',
      '    recs = recs[1:]',
      'else:',
      '    layer = recs[0]["visual_features"][0]["feat_array"]["layer_0"]',
      '    layer = layer.copy(); layer.flat[7] += float(delta)',
      '    recs[0]["visual_features"][0]["feat_array"]["layer_0"] = layer',
      'open(dst, "wb").write(msgpack.packb(recs, default=m.encode, use_bin_type=True))',
    ].join('\n');
    const r = await runTool(PY, ['-c', py, join(from, 'shard-000000.msgpack'), join(to, 'shard-000000.msgpack'), String(delta)]);
    expect(r.code, r.stderr).toBe(0);
  };
  const features = () => join(work, 'out', 'extract', 'cpu');

  it('features: a value moved by 2e-3 disagrees (exit 1), by 4e-4 agrees (exit 0), and the differences are measured', async () => {
    await perturb(features(), join(scratch, 'f-far'), 2e-3);
    const far = await compare('features', features(), join(scratch, 'f-far'));
    expect(far.code).toBe(1);
    expect(far.json).toMatchObject({ kind: 'features', agree: false });
    expect(far.json!.max_abs_diff as number).toBeGreaterThan(1.9e-3);
    expect(far.json!.max_abs_diff as number).toBeLessThan(2.1e-3);
    expect((far.json!.problems as string[]).join()).toMatch(/visual_features\[0\]\.layer_0\[7\] differs/);

    await perturb(features(), join(scratch, 'f-near'), 4e-4);
    const near = await compare('features', features(), join(scratch, 'f-near'));
    expect(near.code).toBe(0);
    expect(near.json).toMatchObject({ kind: 'features', agree: true, problems: [] });
    expect(near.json!.max_abs_diff as number).toBeGreaterThan(3.9e-4);
    expect(near.json!.max_abs_diff as number).toBeLessThan(4.1e-4);
    // A tighter tolerance turns the same pair into a disagreement.
    expect((await compare('features', features(), join(scratch, 'f-near'), '--tolerance=1e-4')).code).toBe(1);
  });

  it('features: a missing record disagrees', async () => {
    await perturb(features(), join(scratch, 'f-drop'), 'drop');
    const r = await compare('features', features(), join(scratch, 'f-drop'));
    expect(r.code).toBe(1);
    expect((r.json!.problems as string[]).join()).toMatch(/record .* only in the first output/);
  });

  it('frames: clips of 10 and 11 frames disagree, equal counts agree, a missing clip disagrees', async () => {
    const make = async (dir: string, name: string, n: number) => {
      await mkdir(dir, { recursive: true });
      const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=25', '-frames:v', String(n), '-pix_fmt', 'yuv420p', join(dir, name)];
      expect((await runTool(FFMPEG, args)).code).toBe(0);
    };
    const a = join(scratch, 'v-a');
    const b = join(scratch, 'v-b');
    const c = join(scratch, 'v-c');
    await make(a, 'x_0_10.mp4', 10);
    await make(b, 'x_0_10.mp4', 11);
    await make(c, 'x_0_10.mp4', 10);
    await make(c, 'x_10_20.mp4', 10);
    const differ = await compare('frames', a, b);
    expect(differ.code).toBe(1);
    expect(differ.json).toMatchObject({ kind: 'frames', agree: false, compared: 1 });
    expect((differ.json!.problems as string[])[0]).toBe('x_0_10.mp4: 10 frames in the first output, 11 in the second');
    expect((await compare('frames', a, a)).json).toMatchObject({ agree: true, compared: 1 });
    const missing = await compare('frames', c, a);
    expect(missing.code).toBe(1);
    expect((missing.json!.problems as string[]).join()).toContain('x_10_20.mp4 only in the first output');
  });

  it('faces: a detector score moved by 2e-3 disagrees; the kept outputs of the check agree', async () => {
    const cpu = join(work, 'out', 'faces', 'cpu');
    const moved = join(scratch, 'faces-moved');
    await cp(cpu, moved, { recursive: true });
    const py = [
      'import sys, csv',
      'p = sys.argv[1]',
      'rows = list(csv.DictReader(open(p)))',
      'rows[0]["det_score_mean"] = repr(float(rows[0]["det_score_mean"]) + 2e-3)',
      'w = csv.DictWriter(open(p, "w", newline=""), fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)',
    ].join('\n');
    expect((await runTool(PY, ['-c', py, join(moved, 'metadata.csv')])).code).toBe(0);
    const r = await compare('faces', cpu, moved);
    expect(r.code).toBe(1);
    expect((r.json!.problems as string[]).join()).toMatch(/det_score_mean differs by 0\.00[12]/);
    expect((await compare('faces', cpu, join(work, 'out', 'faces', 'gpu'))).code).toBe(0);
  });

  it('pixels: 2 levels apart disagree, 1 level agrees', async () => {
    const py = [
      'import sys, os, numpy as np, cv2',
      'root = sys.argv[1]',
      'base = (np.arange(24 * 32 * 3).reshape(24, 32, 3) % 200).astype(np.uint8)',
      'for name, d in (("a", 0), ("b", 1), ("c", 2)):',
      '    os.makedirs(os.path.join(root, name), exist_ok=True)',
      '    img = base.copy(); img[5, 6, 1] += d',
      '    cv2.imwrite(os.path.join(root, name, "000001.png"), img)',
    ].join('\n');
    const dir = join(scratch, 'png');
    expect((await runTool(PY, ['-c', py, dir])).code).toBe(0);
    const one = await compare('pixels', join(dir, 'a'), join(dir, 'b'));
    expect(one.code).toBe(0);
    expect(one.json!.max_abs_diff as number).toBeCloseTo(1 / 255, 6);
    const two = await compare('pixels', join(dir, 'a'), join(dir, 'c'));
    expect(two.code).toBe(1);
    expect(two.json).toMatchObject({ agree: false, max_abs_diff: 2 / 255 });
  });

  it('a folder that cannot be read is exit 2, not an agreement', async () => {
    await mkdir(join(scratch, 'bad'), { recursive: true });
    await writeFile(join(scratch, 'bad', 'shard-000000.msgpack'), 'x');
    const r = await compare('features', join(scratch, 'bad'), join(scratch, 'bad'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gpu-compare: .*shard-000000\.msgpack/);
  });
});
