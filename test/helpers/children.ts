/**
 * Finding the media tools this test process started (directly or through the spawn helper),
 * to stop or kill them from outside as a swap storm, a paused VM or the OOM killer would.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

function parentOf(pid: number): { ppid: number; comm: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), comm };
  } catch {
    return null;
  }
}

/** Pids of the live descendants of this process whose command name is `comm` (e.g. 'ffmpeg'). */
export function descendantsNamed(comm: string, root = process.pid): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const me = parentOf(pid);
    if (!me || me.comm !== comm) continue;
    for (let p = me.ppid, depth = 0; p > 1 && depth < 16; depth++) {
      if (p === root) {
        found.push(pid);
        break;
      }
      p = parentOf(p)?.ppid ?? 0;
    }
  }
  return found;
}

/** Waits until a descendant named `comm` runs (polling /proc), and returns its pid. */
export async function waitForChild(comm: string, timeoutMs = 60_000, exclude: ReadonlySet<number> = new Set()): Promise<number> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const pid = descendantsNamed(comm).find((p) => !exclude.has(p));
    if (pid !== undefined) return pid;
    await sleep(5);
  }
  throw new Error(`no ${comm} child appeared within ${timeoutMs} ms`);
}
