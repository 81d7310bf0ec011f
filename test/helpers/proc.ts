import { readFileSync } from 'node:fs';

/** A process's state letter from /proc (`R`, `S`, `T` when stopped, ...), or null when it is gone. */
export function procState(pid: number): string | null {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return t.slice(t.lastIndexOf(')') + 2).split(' ')[0]!;
  } catch {
    return null;
  }
}
