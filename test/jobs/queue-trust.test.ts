/**
 * What a worker trusts (issue 18, defect 16): a unit from the queue runs no `pipe:` command and
 * no program unless the worker's owner allowed it, its options are checked against the job's
 * own spec, optional HMAC signatures, and the queue over a real redis-server with a password
 * (`--requirepass`) and over TLS (a throwaway CA made by openssl).
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_DEFINITIONS } from '../../src/cli/jobs.js';
import { absolutePath, describeTrust, trustFromArgs } from '../../src/cli/queue-command.js';
import { checkRedis, queueStatus, redactRedisUrl, redisConnection, type UnitJobData } from '../../src/scale/queue.js';
import { admitUnit, signUnit, UnitRefusedError, type QueuedUnit, type TrustPolicy } from '../../src/scale/unit-trust.js';
import { definitionRunner, PermanentUnitError } from '../../src/scale/worker.js';
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';
import { BIN, REPO, runCli } from '../helpers/run-cli.js';
import { makeSmallShards } from '../helpers/scale-shards.js';
import type { Running } from '../helpers/workers.js';

if (NO_REDIS) console.warn(`queue-trust.test: ${NO_REDIS}`);

const extract = JOB_DEFINITIONS.extract!;
const clips = JOB_DEFINITIONS.clips!;
const admit = (def: typeof extract, u: Partial<QueuedUnit>, policy?: TrustPolicy) =>
  admitUnit(def.spec, def.pathArgs, { job: def.name, unit: '/s/shard-000000.tar', args: {}, ...u }, policy);
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UnitRefusedError);
    return (err as Error).message;
  }
  throw new Error('expected the unit to be refused');
};

describe('admitUnit: what a worker runs of a queued unit', () => {
  const base = { tar_path: ['/s/shard-000000.tar'], out_path: '/o' };

  it('a pipe: shard is refused by default, naming the flag and the command, on one line', () => {
    const cmd = 'pipe:touch /tmp/pwned; cat shard.tar';
    const m = refusal(() => admit(extract, { unit: cmd, args: { ...base, tar_path: [cmd] } }));
    expect(m).toBe(
      `refused: --tar_path names the command ${JSON.stringify(cmd)}, and this worker runs no command from the queue ` +
        '(start it with --allow_commands, or --allow_command_prefix=<prefix> for those it may run)',
    );
    // Hidden in a `::` list, behind a brace, or as the unit id alone: the same. Any command in the
    // options refuses the unit, whichever shard it is: a run holds them all.
    expect(refusal(() => admit(extract, { args: { ...base, tar_path: ['/s/a.tar::pipe:id'] } }))).toContain('"pipe:id"');
    expect(refusal(() => admit(extract, { args: { ...base, tar_path: ['{pipe:id,/s/a}.tar'] } }))).toContain('"pipe:id.tar"');
    expect(refusal(() => admit(extract, { unit: 'pipe:id', args: base }))).toContain('the unit is the command "pipe:id"');
    // A line break in the command stays on the reason's line.
    expect(refusal(() => admit(extract, { args: { ...base, tar_path: ['pipe:cat a.tar\ntouch x'] } }))).not.toContain('\n');
  });

  it('--allow_commands runs any; a prefix runs commands that start with it and go on without a second command', () => {
    const args = { ...base, tar_path: ['pipe:touch /tmp/pwned; cat shard.tar'] };
    expect(admit(extract, { args }, { allowCommands: true }).args.tar_path).toEqual(args.tar_path);
    const prefix = { commandPrefixes: ['pipe:aws s3 cp s3://bucket/'] };
    const ok = 'pipe:aws s3 cp s3://bucket/shard-000001.tar -';
    expect(admit(extract, { unit: ok, args: { ...base, tar_path: [ok] } }, prefix).unit).toBe(ok);
    // Without `pipe:` in the prefix too.
    expect(admit(extract, { unit: ok, args: { ...base, tar_path: [ok] } }, { commandPrefixes: ['aws s3 cp '] }).unit).toBe(ok);
    for (const bad of [
      'pipe:aws s3 cp s3://bucket/x.tar - ; touch /tmp/pwned',
      'pipe:aws s3 cp s3://bucket/x.tar - | sh',
      'pipe:aws s3 cp s3://bucket/$(id).tar -',
      'pipe:aws s3 cp s3://bucket/x.tar - > /etc/passwd',
      'pipe:aws s3 cp s3://bucket/`id`.tar -',
      'pipe:aws s3 cp s3://other/x.tar -',
    ])
      expect(
        refusal(() => admit(extract, { args: { ...base, tar_path: [bad] } }, prefix)),
        bad,
      ).toContain("it matches none of this worker's --allow_command_prefix values");
  });

  it('a program named by the queue (--ffmpeg_path, --yt_dlp_path) is refused by default, allowed by prefix on its normalised path', () => {
    const args = { sources: '/d/sources.csv', out_dir: '/d/out', clip_len_s: 4 };
    expect(refusal(() => admit(clips, { unit: 'v', args: { ...args, ffmpeg_path: '/tmp/evil' } }))).toContain('--ffmpeg_path names the program "/tmp/evil"');
    expect(refusal(() => admit(clips, { unit: 'v', args: { ...args, yt_dlp_path: '/tmp/evil' } }))).toContain('--yt_dlp_path names the program');
    const allow = { commandPrefixes: ['/usr/bin/'] };
    expect(admit(clips, { unit: 'v', args: { ...args, ffmpeg_path: '/usr/bin/ffmpeg' } }, allow).args.ffmpeg_path).toBe('/usr/bin/ffmpeg');
    // `..` cannot walk out of an allowed folder.
    expect(refusal(() => admit(clips, { unit: 'v', args: { ...args, ffmpeg_path: '/usr/bin/../../tmp/evil' } }, allow))).toContain('"/tmp/evil"');
    expect(admit(clips, { unit: 'v', args }).args.ffmpeg_path).toBeUndefined();
  });

  it("options are checked against the job's own spec: unknown, wrong type, queue-only and missing required ones are refused", () => {
    expect(refusal(() => admit(extract, { args: { ...base, evil: 1 } }))).toBe('refused: extract has no option --evil that a queued unit may set');
    expect(refusal(() => admit(extract, { args: { ...base, rank: 0 } }))).toBe('refused: extract has no option --rank that a queued unit may set');
    expect(refusal(() => admit(extract, { args: { ...base, batch_size: '8' } }))).toBe('refused: extract --batch_size takes an integer, not "8"');
    expect(refusal(() => admit(extract, { args: { ...base, tar_path: '/s/a.tar' } }))).toBe(
      'refused: extract --tar_path takes a list of strings, not "/s/a.tar"',
    );
    expect(refusal(() => admit(extract, { args: { tar_path: ['/s/a.tar'] } }))).toBe('refused: extract needs --out_path, which the unit does not set');
    expect(refusal(() => admit(extract, { args: null as never }))).toBe('refused: its extract options are null, not an object');
    expect(refusal(() => admit(extract, { args: JSON.parse('{"__proto__": {"x": 1}}') }))).toContain('no option --__proto__');
  });

  it('paths are normalised, relative ones refused; defaults filled as the CLI would', () => {
    const a = admit(extract, { unit: '/s/x/../shard-000000.tar', args: { tar_path: ['/s/./x/../shard-{000000..000001}.tar'], out_path: '/o//feats/' } });
    expect(a.unit).toBe('/s/shard-000000.tar');
    expect(a.args).toMatchObject({ tar_path: ['/s/shard-{000000..000001}.tar'], out_path: '/o/feats/', format: 'msgpack', batch_size: 8, overwrite: false });
    expect(admit(extract, { args: { ...base, visual_model: 'slowfast_8x8_r50', audio_model: 'none' } }).args).toMatchObject({
      visual_model: 'slowfast_8x8_r50',
      audio_model: 'none',
    });
    expect(admit(extract, { args: { ...base, tar_path: ['https://h/s-{0..1}.tar'] } }).args.tar_path).toEqual(['https://h/s-{0..1}.tar']);
    expect(refusal(() => admit(extract, { args: { ...base, out_path: 'feats' } }))).toContain('--out_path "feats" is not an absolute path');
    expect(refusal(() => admit(extract, { args: { ...base, visual_model: 'models/x.onnx' } }))).toContain('is not an absolute path');
    // queue add normalises as the worker does, so the unit ids it lists are the worker's.
    expect(absolutePath('tar_path', '/s/./x/../a.tar')).toBe('/s/a.tar');
  });

  it('signed units: a worker with the secret runs only units whose signature verifies', () => {
    const u = { job: 'extract' as const, unit: '/s/shard-000000.tar', args: base };
    const sig = signUnit('k1', u);
    expect(signUnit('k1', { ...u, args: { out_path: '/o', tar_path: ['/s/shard-000000.tar'] } }), 'key order does not matter').toBe(sig);
    expect(admit(extract, { ...u, sig }, { secret: 'k1' }).unit).toBe(u.unit);
    expect(refusal(() => admit(extract, u, { secret: 'k1' }))).toContain('the unit carries no signature');
    expect(refusal(() => admit(extract, { ...u, sig: signUnit('k2', u) }, { secret: 'k1' }))).toContain('does not verify');
    expect(refusal(() => admit(extract, { ...u, sig, args: { ...base, overwrite: true } }, { secret: 'k1' }))).toContain('does not verify');
    expect(refusal(() => admit(extract, { ...u, sig, unit: '/s/shard-000001.tar' }, { secret: 'k1' }))).toContain('does not verify');
  });

  it('definitionRunner fails a refused unit permanently, before the job sees it', async () => {
    let ran = 0;
    const def = {
      ...extract,
      run: async () => {
        ran++;
        return { run: { units: [] } } as never;
      },
    };
    const run = definitionRunner({ extract: def });
    const job: UnitJobData = { job: 'extract', unit: 'pipe:id', args: { tar_path: ['pipe:id'], out_path: '/o' } };
    await expect(run(job, new AbortController().signal)).rejects.toBeInstanceOf(PermanentUnitError);
    await expect(run(job, new AbortController().signal)).rejects.toThrow(/^refused: --tar_path names the command "pipe:id"/);
    expect(ran).toBe(0);
    await run.close?.();
  });

  it('worker flags: prefixes repeat or come as a comma list; an empty one is an error; the start line says what it trusts', () => {
    expect(trustFromArgs({ allow_command_prefix: ['pipe:cat /a/,/usr/bin/', 'pipe:gsutil cat '] }, {})).toEqual({
      allowCommands: false,
      commandPrefixes: ['pipe:cat /a/', '/usr/bin/', 'pipe:gsutil cat '],
      secret: undefined,
    });
    expect(() => trustFromArgs({ allow_command_prefix: ['pipe:'] }, {})).toThrow('--allow_command_prefix must not be empty');
    expect(describeTrust(trustFromArgs({}, { CLIPSTREAM_QUEUE_SECRET: 'k' }))).toBe(
      'runs no command from the queue, and only units signed with CLIPSTREAM_QUEUE_SECRET',
    );
    expect(describeTrust({ allowCommands: true })).toBe('runs any command a unit names (--allow_commands)');
  });
});

describe('Redis URLs: passwords from the environment, TLS files, never printed', () => {
  it('redactRedisUrl hides the password, also in text that is no valid URL', () => {
    expect(redactRedisUrl('rediss://app:hunter2@10.0.0.5:6380/1')).toBe('rediss://app:***@10.0.0.5:6380/1');
    expect(redactRedisUrl('redis://:hunter2@h:6379')).toBe('redis://:***@h:6379');
    expect(redactRedisUrl('redis://hunter2@h')).toBe('redis://***@h');
    expect(redactRedisUrl('redis://h:6379')).toBe('redis://h:6379');
    expect(redactRedisUrl('redis://:p@ss@h:1')).toBe('redis://:***@h:1');
    expect(() => redisConnection('http://u:hunter2@h:1')).toThrow("--redis expects a redis:// or rediss:// URL but received 'http://u:***@h:1'");
  });

  it('the password comes from the URL, else CLIPSTREAM_REDIS_PASSWORD; TLS files only with rediss://', () => {
    expect(redisConnection('redis://:a%40b@h:1', '--redis', { CLIPSTREAM_REDIS_PASSWORD: 'env' })).toMatchObject({ password: 'a@b' });
    expect(redisConnection('redis://h:1', '--redis', { CLIPSTREAM_REDIS_PASSWORD: 'env' })).toMatchObject({ password: 'env' });
    expect(redisConnection('redis://h:1', '--redis', {})).not.toHaveProperty('password');
    expect(redisConnection('rediss://h:1', '--redis', {})).toMatchObject({ tls: {} });
    expect(() => redisConnection('redis://h:1', '--redis', { CLIPSTREAM_REDIS_CA: '/x.pem' })).toThrow('use rediss:// for TLS');
    expect(() => redisConnection('rediss://h:1', '--redis', { CLIPSTREAM_REDIS_CA: '/nonexistent/ca.pem' })).toThrow(
      'CLIPSTREAM_REDIS_CA=/nonexistent/ca.pem: cannot read it',
    );
    expect(() => redisConnection('rediss://h:1', '--redis', { CLIPSTREAM_REDIS_CERT: '/c.pem' })).toThrow('go together');
  });
});

/** `clipstream worker` with its own environment (a password, TLS files, a secret). */
function startWorker(redis: string, queue: string, env: NodeJS.ProcessEnv, ...extra: string[]): Running {
  const child = spawn(process.execPath, [BIN, 'worker', `--redis=${redis}`, `--queue=${queue}`, '--lock_seconds=60', '--exit_when_drained', ...extra], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, exited };
}

const EXTRACT = ['--device=cpu', '--window_seconds=4', '--batch_size=1'];
const PASSWORD = 'qu3ue-Pw_7f2c';

describe.skipIf(NO_REDIS !== null)('workers on a real redis-server: commands refused, password, TLS', () => {
  let dir: string;
  let shards: string[];
  const servers: RedisServer[] = [];
  const workers: Running[] = [];
  const server = async (o: Parameters<typeof startRedis>[0]) => {
    const s = await startRedis(o);
    servers.push(s);
    return s;
  };
  const run = (...a: Parameters<typeof startWorker>) => {
    const w = startWorker(...a);
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-queue-trust-'));
    shards = await makeSmallShards(dir, 3, 1);
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await Promise.all(servers.map((s) => s.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a default worker refuses a pipe: unit and a queued --ffmpeg_path (nothing runs); --allow_commands runs the pipe: unit', async () => {
    const redis = await server({});
    const marker = join(dir, 'pwned');
    const cmd = `pipe:touch ${marker}; cat ${shards[0]}`;
    const out = join(dir, 'refused');
    const add = runCli(['queue', 'add', 'extract', `--tar_path=${cmd}`, `--out_path=${out}`, ...EXTRACT, `--redis=${redis.url}`, '--queue=q']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain('note: these units run pipe: commands (--tar_path); workers refuse that');
    const evil = join(dir, 'evil-ffmpeg.sh');
    await writeFile(evil, `#!/bin/sh\ntouch ${marker}\nexit 1\n`);
    await chmod(evil, 0o755);
    const clipsAdd = runCli([
      'queue',
      'add',
      'clips',
      `--sources=${resolve(REPO, 'fixtures/sources/sources.csv')}`,
      `--out_dir=${join(dir, 'clips')}`,
      '--clip_len_s=4',
      '--num_videos=1',
      `--ffmpeg_path=${evil}`,
      `--redis=${redis.url}`,
      '--queue=q',
    ]);
    expect(clipsAdd.code, clipsAdd.stderr).toBe(0);

    const w = run(redis.url, 'q', {});
    expect(await w.exited, w.stderr()).toBe(0);
    expect(w.stderr()).toContain('runs no command from the queue');
    expect(w.stderr()).toContain(`failed ${cmd}: refused: --tar_path names the command ${JSON.stringify(cmd)}, and this worker runs no command from the queue`);
    expect(w.stderr()).toMatch(/failed \S+: refused: --ffmpeg_path names the program ".*evil-ffmpeg\.sh"/);
    expect(w.stderr()).toContain('stopped: 0 unit(s) done, 2 failed');
    expect(existsSync(marker), 'the queued command must not have run').toBe(false);
    expect(existsSync(out) ? await readdir(out) : []).toEqual([]);
    const s = await queueStatus(redis.url, 'q');
    expect(s).toMatchObject({ done: 0, failed: 2 });
    // Permanent: one try, and the reason is one line.
    for (const f of s.failures) {
      expect(f.attempts).toBe(1);
      expect(f.reason).toMatch(/^refused: [^\n]+$/);
    }

    const out2 = join(dir, 'allowed');
    const cmd2 = `pipe:touch ${marker}; cat ${shards[0]}`;
    expect(runCli(['queue', 'add', 'extract', `--tar_path=${cmd2}`, `--out_path=${out2}`, ...EXTRACT, `--redis=${redis.url}`, '--queue=allow']).code).toBe(0);
    const ok = run(redis.url, 'allow', {}, '--allow_commands');
    expect(await ok.exited, ok.stderr()).toBe(0);
    expect(ok.stderr()).toContain('runs any command a unit names (--allow_commands)');
    expect(ok.stderr()).toContain('stopped: 1 unit(s) done, 0 failed');
    expect(existsSync(marker)).toBe(true);
    expect(await readdir(out2)).toContain('shard-000000.msgpack');
  }, 240_000);

  it('--allow_command_prefix: a matching command runs, one that chains a second command is refused', async () => {
    const redis = await server({});
    const marker = join(dir, 'chained');
    const good = `pipe:cat ${shards[1]}`;
    const chained = `pipe:cat ${shards[2]}; touch ${marker}`;
    const out = join(dir, 'prefix');
    for (const tar of [good, chained])
      expect(runCli(['queue', 'add', 'extract', `--tar_path=${tar}`, `--out_path=${out}`, ...EXTRACT, `--redis=${redis.url}`, '--queue=p']).code).toBe(0);
    const w = run(redis.url, 'p', {}, `--allow_command_prefix=pipe:cat ${dir}/`);
    expect(await w.exited, w.stderr()).toBe(0);
    expect(w.stderr()).toContain('stopped: 1 unit(s) done, 1 failed');
    expect(w.stderr()).toContain(`failed ${chained}: refused: --tar_path names the command`);
    expect(existsSync(marker)).toBe(false);
    expect(await readdir(out)).toContain('shard-000001.msgpack');
  }, 240_000);

  it('with --requirepass: queue and worker work with the password from the URL or the environment; a bad unit fails alone; nothing prints the password', async () => {
    const redis = await server({ password: PASSWORD });
    const withPw = redis.url.replace('redis://', `redis://:${PASSWORD}@`);
    const out = join(dir, 'auth');
    const add = runCli(['queue', 'add', 'extract', `--tar_path=${shards[0]}`, `--out_path=${out}`, ...EXTRACT, `--redis=${withPw}`, '--queue=a']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain(`at ${redis.url.replace('redis://', 'redis://:***@')}`);
    expect(add.stderr).not.toContain(PASSWORD);
    // A unit written straight into Redis, past queue add's checks, with an option extract does not have.
    const q = new Queue<UnitJobData>('a', { connection: redisConnection(withPw) });
    await q.add('x', { job: 'extract', unit: shards[1]!, args: { tar_path: [shards[1]!], out_path: out, evil: 'yes' } }, { attempts: 3 });
    await q.close();

    const w = run(redis.url, 'a', { CLIPSTREAM_REDIS_PASSWORD: PASSWORD });
    expect(await w.exited, w.stderr()).toBe(0);
    expect(w.stderr()).toContain(`failed ${shards[1]}: refused: extract has no option --evil that a queued unit may set`);
    expect(w.stderr()).toContain('stopped: 1 unit(s) done, 1 failed');
    expect(w.stderr()).not.toContain(PASSWORD);
    expect(await readdir(out)).toContain('shard-000000.msgpack');

    const status = runCli(['queue', 'status', `--redis=${withPw}`, '--queue=a']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout.split('\n')[0]).toBe(
      `queue 'a' at ${redis.url.replace('redis://', 'redis://:***@')}: waiting 0, active 0, retrying 0, done 1, failed 1`,
    );
    expect(status.stdout + status.stderr).not.toContain(PASSWORD);
    const json = runCli(['queue', 'status', `--redis=${redis.url}`, '--queue=a', '--json'], { env: { CLIPSTREAM_REDIS_PASSWORD: PASSWORD } });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).not.toContain(PASSWORD);
  }, 240_000);

  it('a wrong or missing password is a one-line error at once, not a hang', async () => {
    const redis = await server({ password: PASSWORD });
    const started = Date.now();
    const wrong = runCli(['queue', 'status', `--redis=${redis.url.replace('redis://', 'redis://:not-it@')}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the password \(WRONGPASS/);
    expect(wrong.stderr).not.toContain('not-it');
    const none = startWorker(redis.url, 'a', {});
    workers.push(none);
    expect(await none.exited).toBe(1);
    expect(none.stderr().trim().split('\n')).toHaveLength(1);
    expect(none.stderr()).toContain(`Redis at ${redis.url} wants a password (NOAUTH`);
    expect(none.stderr()).toContain('CLIPSTREAM_REDIS_PASSWORD');
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('over TLS (rediss://, a client certificate, a password): a queued extract unit completes; without the CA a clear error', async () => {
    const redis = await server({ password: PASSWORD, tls: true });
    const tlsEnv = { CLIPSTREAM_REDIS_CA: redis.tls!.ca, CLIPSTREAM_REDIS_CERT: redis.tls!.cert, CLIPSTREAM_REDIS_KEY: redis.tls!.key };
    const env = { ...tlsEnv, CLIPSTREAM_REDIS_PASSWORD: PASSWORD };
    const out = join(dir, 'tls');
    const add = runCli(['queue', 'add', 'extract', `--tar_path=${shards[2]}`, `--out_path=${out}`, ...EXTRACT, `--redis=${redis.url}`, '--queue=t'], { env });
    expect(add.code, add.stderr).toBe(0);
    const w = run(redis.url, 't', env);
    expect(await w.exited, w.stderr()).toBe(0);
    expect(w.stderr()).toContain('stopped: 1 unit(s) done, 0 failed');
    expect(await readdir(out)).toContain('shard-000002.msgpack');
    const s = runCli(['queue', 'status', `--redis=${redis.url}`, '--queue=t'], { env });
    expect(s.stdout.split('\n')[0]).toContain('done 1, failed 0');

    const noCa = runCli(['queue', 'status', `--redis=${redis.url}`], { env: { CLIPSTREAM_REDIS_PASSWORD: PASSWORD } });
    expect(noCa.code).toBe(1);
    expect(noCa.stderr.trim().split('\n')).toHaveLength(1);
    expect(noCa.stderr).toContain(`cannot reach Redis at ${redis.url} over TLS`);
    expect(noCa.stderr).toContain('CLIPSTREAM_REDIS_CA');
    const noCert = runCli(['queue', 'status', `--redis=${redis.url}`], { env: { CLIPSTREAM_REDIS_CA: redis.tls!.ca, CLIPSTREAM_REDIS_PASSWORD: PASSWORD } });
    expect(noCert.code).toBe(1);
    expect(noCert.stderr.trim().split('\n')).toHaveLength(1);
    expect(noCert.stderr).toContain(`cannot reach Redis at ${redis.url} over TLS`);
    expect(noCert.stderr).toContain('set CLIPSTREAM_REDIS_CERT and CLIPSTREAM_REDIS_KEY');
    // Plain text against the TLS port: an error, not a hang.
    const plain = runCli(['queue', 'status', `--redis=${redis.url.replace('rediss:', 'redis:')}`], { env: { CLIPSTREAM_REDIS_PASSWORD: PASSWORD } });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('cannot reach Redis at redis://127.0.0.1');
    expect(plain.stderr).toContain('if that port speaks TLS, use rediss://');
  }, 240_000);

  it('signed queue: units added with CLIPSTREAM_QUEUE_SECRET run; a unit written without it is refused', async () => {
    const redis = await server({});
    const secret = 'shared-secret-for-the-test';
    const out = join(dir, 'signed');
    const add = runCli(['queue', 'add', 'extract', `--tar_path=${shards[1]}`, `--out_path=${out}`, ...EXTRACT, `--redis=${redis.url}`, '--queue=s'], {
      env: { CLIPSTREAM_QUEUE_SECRET: secret },
    });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain('signed with CLIPSTREAM_QUEUE_SECRET');
    const q = new Queue<UnitJobData>('s', { connection: redisConnection(redis.url) });
    await q.add('forged', { job: 'extract', unit: shards[2]!, args: { tar_path: [shards[2]!], out_path: out }, sig: 'ab'.repeat(32) });
    await q.close();
    const w = run(redis.url, 's', { CLIPSTREAM_QUEUE_SECRET: secret });
    expect(await w.exited, w.stderr()).toBe(0);
    expect(w.stderr()).toContain(`failed ${shards[2]}: refused: the unit's signature does not verify`);
    expect(w.stderr()).toContain('stopped: 1 unit(s) done, 1 failed');
    expect(await readdir(out)).toContain('shard-000001.msgpack');
    expect(await readdir(out)).not.toContain('shard-000002.msgpack');
  }, 240_000);

  it('checkRedis in the library names the URL without its password', async () => {
    const redis = await server({ password: PASSWORD });
    await expect(checkRedis(redis.url.replace('redis://', 'redis://:wrong@'))).rejects.toThrow(
      /^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the password/,
    );
  });
});
