/**
 * Dynamic work on BullMQ (Redis): one BullMQ job per unit of a clipstream job, so any number of
 * workers on any number of machines share the units. Delivery is at least once (a stalled job
 * is handed out again); outputs are idempotent per unit (atomic final files, per-clip journals,
 * unit locks), which makes the results exactly once.
 */
import { createHash } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ClipstreamError } from '../errors.js';
import type { JobName } from '../run/runner.js';

export const DEFAULT_QUEUE = 'clipstream';

/**
 * What one BullMQ job carries: the clipstream job (a name in src/cli/jobs.ts), its unit, and that
 * job's parsed CLI arguments with local paths made absolute.
 */
export interface UnitJobData {
  job: JobName;
  unit: string;
  args: Record<string, unknown>;
}

/**
 * `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS) as BullMQ connection options.
 * `option` names the flag in the error (`--redis`).
 */
export function redisConnection(url: string, option = '--redis'): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option} expects a URL such as redis://host:6379 but received '${url}'`, { where: { option } });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option} expects a redis:// or rediss:// URL but received '${url}'`, { where: { option } });
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `${option}: '${u.pathname.slice(1)}' in '${url}' is not a database number`, { where: { option } });
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's workers block on Redis; they must not give up on a command.
    maxRetriesPerRequest: null,
  };
}

/** Fails fast, naming the URL, when Redis cannot be reached (ioredis would retry forever). */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const conn = redisConnection(url) as Record<string, unknown>;
  const client = new Redis({ ...conn, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, lazyConnect: true });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `cannot reach Redis at ${url}: ${(err as Error).message}`, { cause: err, where: { file: url } });
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
}

/** Puts one job per unit on the queue. Returns how many were new and how many were there already. */
export async function addUnits(
  redis: string,
  job: JobName,
  units: string[],
  args: Record<string, unknown>,
  options: AddOptions = {},
): Promise<{ added: number; existing: number }> {
  await checkRedis(redis);
  const queue = new Queue<UnitJobData>(options.queue ?? DEFAULT_QUEUE, { connection: redisConnection(redis) });
  try {
    const jobs = units.map((unit) => {
      const data: UnitJobData = { job, unit, args };
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
