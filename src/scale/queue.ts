/**
 * Dynamic work on BullMQ (Redis): one BullMQ job per unit of a clipstream job, so any number of
 * workers on any number of machines share the units. Delivery is at least once (a stalled job
 * is handed out again); outputs are idempotent per unit (atomic final files, per-clip journals,
 * unit locks), which makes the results exactly once.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ClipstreamError } from '../errors.js';
import { signUnit } from './unit-trust.js';

export const DEFAULT_QUEUE = 'clipstream';

/**
 * What one BullMQ job carries: the clipstream job (a name in src/cli/jobs.ts), its unit, and that
 * job's parsed CLI arguments with local paths made absolute.
 */
export interface UnitJobData {
  job: string;
  unit: string;
  args: Record<string, unknown>;
  /** HMAC-SHA256 of job, unit and args with the queue's shared secret (see src/scale/unit-trust.ts), when it was queued with one. */
  sig?: string;
}

/** The Redis password when the `--redis` URL holds none. */
export const REDIS_PASSWORD_ENV = 'CLIPSTREAM_REDIS_PASSWORD';
/** PEM files for `rediss://`: the CA that signed the server's certificate, and a client certificate and key. */
export const REDIS_TLS_ENV = { ca: 'CLIPSTREAM_REDIS_CA', cert: 'CLIPSTREAM_REDIS_CERT', key: 'CLIPSTREAM_REDIS_KEY' } as const;

/**
 * A Redis URL fit to print: the password (or a lone user part, which some write a password in)
 * replaced by `***`. Works on text that is no valid URL too, since error messages quote those.
 *
 * @example redactRedisUrl('rediss://app:hunter2@10.0.0.5:6380/1') // 'rediss://app:***@10.0.0.5:6380/1'
 */
export function redactRedisUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, authority, rest] = m;
  const at = authority!.lastIndexOf('@');
  if (at < 0) return url;
  const user = authority!.slice(0, at);
  const colon = user.indexOf(':');
  return `${scheme}${colon < 0 ? '***' : `${user.slice(0, colon)}:***`}@${authority!.slice(at + 1)}${rest}`;
}

function readPem(env: NodeJS.ProcessEnv, name: string): Buffer {
  const file = env[name]!;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${name}=${file}: cannot read it (${(err as Error).message})`, { cause: err, where: { file } });
  }
}

/**
 * `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS) as BullMQ connection options.
 * A password the URL lacks comes from CLIPSTREAM_REDIS_PASSWORD; with `rediss://`, the server's
 * CA and a client certificate from CLIPSTREAM_REDIS_CA / _CERT / _KEY (PEM files; without a CA,
 * Node's own trusted CAs, NODE_EXTRA_CA_CERTS included). `option` names the flag in the error
 * (`--redis`). Errors print the URL without its password.
 */
export function redisConnection(url: string, option = '--redis', env: NodeJS.ProcessEnv = process.env): ConnectionOptions {
  let u: URL;
  const shown = redactRedisUrl(url);
  try {
    u = new URL(url);
  } catch {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option} expects a URL such as redis://host:6379 but received '${shown}'`, { where: { option } });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option} expects a redis:// or rediss:// URL but received '${shown}'`, { where: { option } });
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option}: '${u.pathname.slice(1)}' in '${shown}' is not a database number`, { where: { option } });
  const tlsEnv = Object.values(REDIS_TLS_ENV).filter((name) => env[name]);
  // A CA or client certificate set for a plain-text URL means TLS was wanted: say so rather than send the password in clear.
  if (u.protocol === 'redis:' && tlsEnv.length > 0)
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option} is '${shown}', plain text, but ${tlsEnv.join(', ')} is set: use rediss:// for TLS`, {
      where: { option },
    });
  if (Boolean(env[REDIS_TLS_ENV.cert]) !== Boolean(env[REDIS_TLS_ENV.key]))
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${REDIS_TLS_ENV.cert} and ${REDIS_TLS_ENV.key} go together: set both for a client certificate, or neither`);
  const password = u.password ? decodeURIComponent(u.password) : env[REDIS_PASSWORD_ENV] || undefined;
  const tls =
    u.protocol === 'rediss:'
      ? Object.fromEntries(Object.entries(REDIS_TLS_ENV).flatMap(([k, name]) => (env[name] ? [[k, readPem(env, name)]] : [])))
      : undefined;
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
    // BullMQ's workers block on Redis; they must not give up on a command.
    maxRetriesPerRequest: null,
  };
}

/** What went wrong talking to Redis, in words that say what to change. */
function redisFailure(shown: string, err: Error, tls: boolean): string {
  const m = err.message.split('\n')[0]!;
  if (/^WRONGPASS|invalid password|invalid username-password/i.test(m))
    return `Redis at ${shown} refused the password (${m}): check the password in the URL (redis://:PASSWORD@host:port) or in ${REDIS_PASSWORD_ENV}`;
  if (/^NOAUTH|Authentication required/i.test(m))
    return `Redis at ${shown} wants a password (${m}): give it in the URL (redis://:PASSWORD@host:port) or in ${REDIS_PASSWORD_ENV}`;
  // TLS 1.3 servers report a missing client certificate as an alert, or (depending on timing) as a closed connection below.
  if (tls && /certificate required/i.test(m))
    return `cannot reach Redis at ${shown} over TLS: ${m} (the server wants a client certificate: set ${REDIS_TLS_ENV.cert} and ${REDIS_TLS_ENV.key})`;
  if (/certificate|self[- ]signed|unable to verify|alert|ssl|tls|wrong version number/i.test(m))
    return `cannot reach Redis at ${shown} over TLS: ${m} (the server's CA goes in ${REDIS_TLS_ENV.ca}, a client certificate in ${REDIS_TLS_ENV.cert} and ${REDIS_TLS_ENV.key})`;
  // Both ends of a TLS mismatch see only a closed or silent connection.
  if (tls && /ECONNRESET|ETIMEDOUT|Connection is closed|socket disconnected/i.test(m))
    return `cannot reach Redis at ${shown} over TLS: ${m} (a server that wants a client certificate closes the connection without one: set ${REDIS_TLS_ENV.cert} and ${REDIS_TLS_ENV.key}; a plain-text port never answers TLS: use redis://)`;
  if (!tls && /ECONNRESET|Connection is closed/i.test(m)) return `cannot reach Redis at ${shown}: ${m} (if that port speaks TLS, use rediss://)`;
  return `cannot reach Redis at ${shown}: ${m}`;
}

/**
 * Fails fast, naming the URL (without its password), when Redis cannot be reached or refuses
 * this client (ioredis would retry forever).
 */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const conn = redisConnection(url) as Record<string, unknown>;
  const client = new Redis({ ...conn, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, lazyConnect: true });
  // ioredis reports a refused AUTH as an event, and the commands after it fail with less to say.
  let first: Error | null = null;
  client.on('error', (err: Error) => {
    first ??= err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const shown = redactRedisUrl(url);
    const cause = first ?? (err as Error);
    throw new ClipstreamError('ERR_IO', redisFailure(shown, cause, 'tls' in conn), { cause, where: { file: shown } });
  } finally {
    client.disconnect();
  }
}

/**
 * A stable BullMQ job id per (job, output folder, unit): adding the same units again is a no-op,
 * and a unit done once stays done. BullMQ ids may not contain ':'.
 */
export function unitJobId(data: UnitJobData): string {
  const out = String(data.args.out_path ?? data.args.out_dir ?? data.args.output_dir ?? '');
  return `${data.job}-${createHash('sha1')
    .update(JSON.stringify([out, String(data.args.format ?? ''), data.unit]))
    .digest('hex')}`;
}

export interface AddOptions {
  queue?: string;
  /** Tries per unit before it is marked failed; default 5. */
  attempts?: number;
  /** First retry delay (exponential backoff); default 5 s. */
  backoffMs?: number;
  /** Shared secret: each unit carries its HMAC signature, for workers that run only signed units. */
  secret?: string;
}

/** Puts one job per unit on the queue. Returns how many were new and how many were there already. */
export async function addUnits(
  redis: string,
  job: string,
  units: string[],
  args: Record<string, unknown>,
  options: AddOptions = {},
): Promise<{ added: number; existing: number }> {
  await checkRedis(redis);
  const queue = new Queue<UnitJobData>(options.queue ?? DEFAULT_QUEUE, { connection: redisConnection(redis) });
  try {
    const jobs = units.map((unit) => {
      const data: UnitJobData = { job, unit, args };
      if (options.secret) data.sig = signUnit(options.secret, data);
      return {
        name: `${job} ${unit}`,
        data,
        opts: {
          jobId: unitJobId(data),
          attempts: options.attempts ?? 5,
          backoff: { type: 'exponential', delay: options.backoffMs ?? 5000 },
          removeOnComplete: false,
          removeOnFail: false,
        },
      };
    });
    let added = 0;
    // addBulk keeps an existing job (same id) as it is; count what was really new.
    for (let i = 0; i < jobs.length; i += 500) {
      const slice = jobs.slice(i, i + 500);
      const before = await Promise.all(slice.map((j) => queue.getJob(j.opts.jobId)));
      await queue.addBulk(slice.filter((_, k) => !before[k]));
      added += before.filter((b) => !b).length;
    }
    return { added, existing: units.length - added };
  } finally {
    await queue.close();
  }
}

export interface QueueStatus {
  waiting: number;
  active: number;
  delayed: number;
  done: number;
  failed: number;
  /** Failed units with the last reason and tries made. */
  failures: Array<{ unit: string; reason: string; attempts: number }>;
  /** Units waiting for a retry after an error, with that error. */
  retrying: Array<{ unit: string; reason: string; attempts: number }>;
}

/** Counts of the queue's units by state, and why the failed ones failed. */
export async function queueStatus(redis: string, name = DEFAULT_QUEUE, limit = 50): Promise<QueueStatus> {
  await checkRedis(redis);
  const queue = new Queue<UnitJobData>(name, { connection: redisConnection(redis) });
  try {
    const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
    const failed = await queue.getFailed(0, limit - 1);
    const delayed = await queue.getDelayed(0, limit - 1);
    const row = (j: { data: UnitJobData; failedReason?: string; attemptsMade: number }) => ({
      unit: j.data?.unit ?? '?',
      reason: j.failedReason ?? '',
      attempts: j.attemptsMade,
    });
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      done: c.completed ?? 0,
      failed: c.failed ?? 0,
      failures: failed.map(row),
      retrying: delayed.filter((j) => j.failedReason).map(row),
    };
  } finally {
    await queue.close();
  }
}
