/** `clipstream worker` processes for the queue tests, and polling until a condition holds. */
import type { ChildProcess } from 'node:child_process';
import { startCli } from './run-cli.js';

export interface Running {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `clipstream worker` on `queue`. `lockSeconds` is the BullMQ job lock: short where a test
 * kills a worker (its unit comes back quickly), long where none is killed (a machine under load
 * must not lose units in hand to the stalled check).
 */
export function startWorker(redis: string, queue: string, lockSeconds: number, ...extra: string[]): Running {
  const child = startCli(['worker', `--redis=${redis}`, `--queue=${queue}`, `--lock_seconds=${lockSeconds}`, ...extra]);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) =>
    child.on('close', (code, signal) => {
      // Named in the failure message of a test that expected an exit code.
      if (signal) err += `[the worker ended on ${signal}]\n`;
      r(code);
    }),
  );
  return { child, stderr: () => err, exited };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every 20 ms until it holds; fails naming `what` after `ms`. */
export async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
