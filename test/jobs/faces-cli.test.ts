import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/run-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-faces-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a node command with a hard limit: a process that does not exit by itself is killed and reported as such. */
function runBounded(args: string[], limitMs = 30_000) {
  const r = spawnSync(process.execPath, args, {
    cwd: REPO,
    env: { ...process.env, CLIPSTREAM_HOME: '/nonexistent/clipstream-test-model-cache' },
    encoding: 'utf8',
    timeout: limitMs,
  });
  return { code: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
}

describe('faces: a bad detector option ends the process', () => {
  it.each([
    ['--score_threshold=2', '--score_threshold: expected number between 0 and 1'],
    ['--nms_threshold=1.5', '--nms_threshold: expected number between 0 and 1'],
    ['--min_face_size=-1', '--min_face_size: expected number between 0 and 100000'],
    ['--detector_input_size=8', '--detector_input_size: expected integer between 32 and 8192'],
  ])('clipstream faces %s prints one error line and exits 2 (no worker thread left behind)', (flag, message) => {
    const r = runBounded([BIN, 'faces', `--input_dir=${dir}`, `--output_dir=${join(dir, 'out')}`, flag, '--quiet']);
    expect(r.signal, `still running after 30 s; stderr: ${r.stderr}`).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain(message);
  });

  it('loadFaceDetector that refuses its options closes the model runner it opened (the library exits too)', () => {
    // An input size only the detector checks (no job option in front of it): the runner's worker thread must not outlive the error.
    const script = join(dir, 'load.mjs');
    writeFileSync(
      script,
      `import(${JSON.stringify(join(REPO, 'dist/faces/detector.js'))}).then((m) => m.loadFaceDetector('models/face_detector_synthetic.onnx', { inputSize: 4 })).then(() => console.log('loaded'), (e) => console.log('refused: ' + e.message));\n`,
    );
    const r = runBounded([script]);
    expect(r.signal, `still running after 30 s; stdout: ${r.stdout}`).toBeNull();
    expect(r.stdout).toMatch(/^refused: .*options\.inputSize/);
    expect(r.code).toBe(0);
  });
});
