/** The run logs (`log_<host>_<pid>_<ms>.json`) in an output folder: per unit, the latest result. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunLog {
  file: string;
  job: string;
  timestamp: number;
  finished: boolean;
  results: Record<string, unknown>[];
}

/** Every run log of `job` in `dir`, oldest first (an unreadable one is skipped with a warning). */
export async function runLogs(dir: string, job: string, warn: (m: string) => void): Promise<RunLog[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^log_.*\.json$/.test(n));
  const logs: RunLog[] = [];
  for (const file of names) {
    try {
      const j = JSON.parse(await readFile(join(dir, file), 'utf8')) as Partial<RunLog>;
      if (j.job !== job) continue;
      logs.push({ file, job, timestamp: Number(j.timestamp) || 0, finished: Boolean(j.finished), results: Array.isArray(j.results) ? j.results : [] });
    } catch (err) {
      warn(`report: ${join(dir, file)} is not a readable run log: ${(err as Error).message}`);
    }
  }
  return logs.sort((a, b) => a.timestamp - b.timestamp);
}

/** The latest result of each unit over the logs. */
export function latestResults(logs: RunLog[]): Map<string, Record<string, unknown>> {
  const m = new Map<string, Record<string, unknown>>();
  for (const l of logs) for (const r of l.results) m.set(String(r.unit ?? ''), r);
  return m;
}
