import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Whether a process with this pid is alive on this host (EPERM: alive, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Alive and not a zombie (a killed orphan stays one until whoever adopted it reaps it); without /proc, pidAlive. */
export function pidRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so read after the last ')'.
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return !existsSync('/proc/self');
  }
}

/** What /proc says of a process: CPU time used by all its threads, and whether any of them waits for the CPU or the disk, or is stopped. */
export interface CpuSample {
  /** utime + stime of every thread, in clock ticks (USER_HZ, 100 on Linux). */
  cpuTicks: number;
  /** Some thread is runnable (R), in uninterruptible IO (D, a swap storm) or stopped (T/t: SIGSTOP, a debugger). */
  waitingToRun: boolean;
  stopped: boolean;
}

/** Milliseconds per clock tick of /proc's CPU times (USER_HZ is 100 on every Linux ABI). */
export const MS_PER_TICK = 10;

/**
 * Reads /proc/<pid>/task/<tid>/stat for each thread; null where /proc cannot tell (not Linux,
 * the process gone). Synchronous: a few small reads, taken only by a watchdog tick.
 */
export function sampleCpu(pid: number): CpuSample | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let cpuTicks = 0;
  let waitingToRun = false;
  let stopped = false;
  let seen = 0;
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      continue; // a thread that ended meanwhile
    }
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so parse after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = f[0];
    cpuTicks += Number(f[11]) + Number(f[12]);
    if (state === 'R' || state === 'D') waitingToRun = true;
    if (state === 'T' || state === 't') stopped = true;
    seen++;
  }
  return seen > 0 ? { cpuTicks, waitingToRun: waitingToRun || stopped, stopped } : null;
}
