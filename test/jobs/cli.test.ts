import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, formatHelp } from '../../src/util/args.js';
import { commands, extractSpec } from '../../src/cli/commands.js';
import { emptyProgress, ProgressDisplay, progressLine, type JobProgress } from '../../src/util/progress.js';
import { FIXTURE_CLIPS_DIR } from '../../fixtures/index.js';
import { readFeatureShard } from '../../src/sinks/feature-shard.js';
import { REPO, runCli } from '../helpers/run-cli.js';

describe('parseArgs (python-fire style)', () => {
  it.each([
    [['--tar_path=a.tar', '--out_path=o'], { tar_path: ['a.tar'], out_path: 'o' }],
    [['--tar_path', 'a.tar', '--out_path', 'o'], { tar_path: ['a.tar'], out_path: 'o' }],
    [['--tar-path=a.tar', '--out-path=o'], { tar_path: ['a.tar'], out_path: 'o' }],
    [['--tar_path=a.tar', '--tar_path=b.tar', '--out_path=o'], { tar_path: ['a.tar', 'b.tar'], out_path: 'o' }],
    [['--tar_path=a', '--out_path=o', '--overwrite'], { overwrite: true }],
    [['--tar_path=a', '--out_path=o', '--overwrite', 'false'], { overwrite: false }],
    [['--tar_path=a', '--out_path=o', '--no-overwrite'], { overwrite: false }],
    [['--tar_path=a', '--out_path=o', '--batch_size', '16'], { batch_size: 16 }],
    [['--tar_path=a', '--out_path=o'], { batch_size: 8, format: 'msgpack', device: 'auto' }],
  ])('%j', (argv, expected) => {
    expect(parseArgs(argv, extractSpec)).toMatchObject(expected);
  });

  it.each([
    [['--out_path=o'], 'extract: missing required option --tar_path'],
    [['--tar_path=a', '--out_path=o', '--batch_size=two'], "extract: option --batch_size expects an integer but received 'two'"],
    [['--tar_path=a', '--out_path=o', '--batch_size=1.5'], "extract: option --batch_size expects an integer but received '1.5'"],
    [['--tar_path=a', '--out_path=o', '--batch'], 'extract: unknown option --batch (did you mean --batch_size?)'],
    [['--tar_path=a', '--out_path'], 'extract: option --out_path needs a value'],
    [['a.tar'], "extract: unexpected argument 'a.tar'"],
    [['--tar_path=a', '--out_path=o', '--overwrite=maybe'], "extract: option --overwrite expects true or false but received 'maybe'"],
  ])('%j fails: %s', (argv, message) => {
    expect(() => parseArgs(argv, extractSpec)).toThrow(message);
  });

  it('help lists every option of every command', () => {
    for (const spec of commands) {
      const help = formatHelp(spec);
      for (const o of spec.options) expect(help).toContain(`--${o.name}`);
    }
  });
});

describe('CLI errors name the flag, for every command (cliMessage)', () => {
  it('maps library option paths back to the flags that feed them', async () => {
    const { cliMessage } = await import('../../src/util/args.js');
    const { InvalidOptionError } = await import('../../src/errors.js');
    const { clipsSpec } = await import('../../src/cli/clips-command.js');
    const { extractSpec } = await import('../../src/cli/commands.js');
    expect(
      cliMessage(
        new InvalidOptionError('Expected number between 0 and 3600 for options.clipLenS but received -1 of type number', 'options.clipLenS'),
        clipsSpec,
      ),
    ).toBe('--clip_len_s: expected number between 0 and 3600 but received -1 of type number');
    // A flag whose library option has another name (`--min_duration` feeds minDurationSeconds).
    expect(
      cliMessage(
        new InvalidOptionError(
          'Expected number between 0 and 3600 for options.minDurationSeconds but received -1 of type number',
          'options.minDurationSeconds',
        ),
        extractSpec,
      ),
    ).toBe('--min_duration: expected number between 0 and 3600 but received -1 of type number');
    // Only the first line, and messages without an option are left alone.
    expect(cliMessage(new Error('first\n    at stack'), extractSpec)).toBe('first');
  });
});

describe('progress display', () => {
  // The job runner's progress (src/util/progress.ts), as extract's CLI shows it since issue 10.
  const p: JobProgress = { ...emptyProgress('extract', 4, 128), unitsDone: 1, itemsDone: 30, itemsFailed: 1, itemsSkipped: 1, elapsedSeconds: 16 };
  it('shows shards, clips/s and an ETA from the expected clip count', () => {
    expect(progressLine(p)).toBe('shards 1/4 | clips 32/128 (1 failed, 1 skipped) | 2.00 clips/s | elapsed 00:16 | ETA 00:48');
  });

  function fakeStream(isTTY: boolean) {
    const chunks: string[] = [];
    return {
      chunks,
      stream: {
        isTTY,
        columns: 200,
        write: (s: string) => {
          chunks.push(s);
          return true;
        },
      } as unknown as NodeJS.WriteStream,
    };
  }

  it('redraws one line in place on a terminal', () => {
    const { chunks, stream } = fakeStream(true);
    const d = new ProgressDisplay(stream);
    d.update(p);
    d.update({ ...p, unitsDone: 2 });
    d.finish();
    expect(chunks[0]!.startsWith('\r[#####...............] shards 1/4')).toBe(true);
    expect(chunks.slice(0, 2).every((c) => !c.includes('\n'))).toBe(true);
    expect(chunks.at(-1)).toBe('\n');
  });

  it('prints plain periodic lines when not a terminal, and at every finished shard', () => {
    const { chunks, stream } = fakeStream(false);
    const d = new ProgressDisplay(stream, 3600);
    d.update(p);
    d.update({ ...p, itemsDone: 31 }); // same shard count, within the interval: nothing
    d.update({ ...p, unitsDone: 2 });
    expect(chunks).toHaveLength(2);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
  });
});

describe('the clipstream binary', () => {
  it('prints help for the program and for every command, exit 0', () => {
    const top = runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of commands) expect(top.stdout).toContain(c.name);
    for (const c of commands) {
      const r = runCli([c.name, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: clipstream ${c.name}`);
    }
  });

  it.each([
    [['extract', '--out_path=o'], 'missing required option --tar_path'],
    [['extract', '--tar_path=a.tar', '--out_path=o', '--batch_size=0'], '--batch_size: expected integer between 1 and 1024 but received 0 of type number'],
    [['extract', '--tar_path=a.tar', '--out_path=o', '--device=tpu'], "--device: expected 'auto', 'cpu', 'cuda' or 'cuda:N' but received 'tpu'"],
    [['frobnicate'], "unknown command 'frobnicate'"],
  ])('exits 2 on bad arguments: %j', (args, message) => {
    const r = runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('bundle turns a folder of clips into shards that extract reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-cli-bundle-'));
    const b = runCli(['bundle', `--input_dir=${FIXTURE_CLIPS_DIR}`, `--out_dir=${join(dir, 'shards')}`, '--shard_size=5']);
    expect(b.code).toBe(0);
    expect((await readdir(join(dir, 'shards'))).filter((f) => f.endsWith('.tar'))).toEqual(['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar']);
    const e = runCli([
      'extract',
      `--tar_path=${join(dir, 'shards', 'shard-{000000..000002}.tar')}`,
      `--out_path=${join(dir, 'feats')}`,
      '--audio_model=none',
      '--quiet',
    ]);
    expect(e.code).toBe(0);
    expect(e.stderr).toContain('3 shard(s) written');
    const recs = [0, 1, 2].map((i) => readFeatureShard(join(dir, 'feats', `shard-00000${i}.msgpack`)));
    expect((await Promise.all(recs)).flat()).toHaveLength(9);
  });
});

describe('README', () => {
  it('opens with the two commands, and the main one runs on the fixtures', async () => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const firstBlock = /```(?:bash|sh)?\n([\s\S]*?)```/.exec(readme)![1]!;
    const lines = firstBlock.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    expect(lines).toContain('npm test');
    // The first line may begin with `npm ci &&`; the install is what the test run already did.
    const extractLine = lines.find((l) => l.includes('npx clipstream extract'))!.replace(/^.*?&&\s*/, '');
    expect(extractLine).toContain('--tar_path="fixtures/shards/shard-{000000..000001}.tar"');
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-readme-'));
    const cmd = extractLine.replace(/--out_path=\S+/, `--out_path=${dir}`);
    const out = execFileSync('bash', ['-c', `${cmd} --quiet 2>&1`], { cwd: REPO, encoding: 'utf8' });
    expect(out).toContain('2 shard(s) written');
    // Two models, one device decision: at most one CUDA warning, and none of ONNX Runtime's own error log.
    expect(out.split('CUDA execution provider could not be loaded').length - 1).toBeLessThanOrEqual(1);
    expect(out).not.toContain('[E:onnxruntime');
    expect((await readdir(dir)).filter((f) => f.endsWith('.msgpack'))).toEqual(['shard-000000.msgpack', 'shard-000001.msgpack']);
  });

  it('docs/library.md shows the ETL example exactly as examples/etl-pipeline.ts, which runs', async () => {
    const readme = await readFile(join(REPO, 'docs', 'library.md'), 'utf8');
    const example = await readFile(join(REPO, 'examples', 'etl-pipeline.ts'), 'utf8');
    expect(readme).toContain(example.trim());
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-etl-'));
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/etl-pipeline.ts', dir], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(out).toContain('shard-000000: 4 clips');
    expect(out).toContain('shard-000001: 5 clips');
  });
});
