/**
 * Progress of any job (units: shards or videos; items: clips or frames), and the one display
 * every command uses: on a terminal a bar redrawn in place, elsewhere a plain line now and then.
 */
export interface JobProgress {
  job: string;
  unitNoun: string;
  itemNoun: string;
  unitsTotal: number;
  /** Units with a result (done, skipped or failed). */
  unitsDone: number;
  unitsFailed: number;
  unitsSkipped: number;
  itemsDone: number;
  itemsFailed: number;
  itemsSkipped: number;
  /** Items the units hold, when known ahead, for an ETA. */
  itemsExpected: number | null;
  elapsedSeconds: number;
}

const NOUNS: Record<string, [string, string]> = {
  extract: ['shard', 'clip'],
  clips: ['video', 'clip'],
  faces: ['video', 'clip'],
  segments: ['video', 'frame'],
};

export function emptyProgress(job: string, unitsTotal: number, itemsExpected: number | null, unitNoun?: string, itemNoun?: string): JobProgress {
  const [u, i] = NOUNS[job] ?? ['unit', 'item'];
  return {
    job,
    unitNoun: unitNoun ?? u,
    itemNoun: itemNoun ?? i,
    unitsTotal,
    unitsDone: 0,
    unitsFailed: 0,
    unitsSkipped: 0,
    itemsDone: 0,
    itemsFailed: 0,
    itemsSkipped: 0,
    itemsExpected,
    elapsedSeconds: 0,
  };
}

export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** One status line: units, items, items/s and the ETA (from the expected items when known, else from units). */
export function progressLine(p: JobProgress): string {
  const items = p.itemsDone + p.itemsFailed + p.itemsSkipped;
  const rate = p.elapsedSeconds > 0 ? items / p.elapsedSeconds : 0;
  let eta = NaN;
  if (p.itemsExpected !== null && rate > 0) eta = Math.max(0, p.itemsExpected - items) / rate;
  else if (p.unitsDone > 0) eta = ((p.unitsTotal - p.unitsDone) * p.elapsedSeconds) / p.unitsDone;
  const total = p.itemsExpected !== null ? `/${p.itemsExpected}` : '';
  const problems = p.itemsFailed + p.itemsSkipped > 0 ? ` (${p.itemsFailed} failed, ${p.itemsSkipped} skipped)` : '';
  const unitProblems = p.unitsFailed > 0 ? ` (${p.unitsFailed} failed)` : '';
  return (
    `${p.unitNoun}s ${p.unitsDone}/${p.unitsTotal}${unitProblems} | ${p.itemNoun}s ${items}${total}${problems} | ` +
    `${rate.toFixed(2)} ${p.itemNoun}s/s | elapsed ${clock(p.elapsedSeconds)} | ETA ${clock(eta)}`
  );
}

/**
 * Progress display: on a terminal a bar redrawn in place (at most 10 times a second);
 * elsewhere (CI logs, files) a plain line every `intervalSeconds` and at every finished unit.
 */
export class ProgressDisplay {
  private lastDraw = 0;
  private lastUnits = -1;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly intervalSeconds = 10,
  ) {}

  update(p: JobProgress): void {
    const now = Date.now();
    if (this.stream.isTTY) {
      if (now - this.lastDraw < 100 && p.unitsDone === this.lastUnits) return;
      const width = this.stream.columns ?? 100;
      const frac = p.unitsTotal > 0 ? p.unitsDone / p.unitsTotal : 0;
      const barWidth = 20;
      const filled = Math.round(frac * barWidth);
      const line = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${progressLine(p)}`;
      this.stream.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length))}\x1b[K`);
      this.drawn = true;
    } else {
      if (now - this.lastDraw < this.intervalSeconds * 1000 && p.unitsDone === this.lastUnits) return;
      this.stream.write(`${progressLine(p)}\n`);
    }
    this.lastDraw = now;
    this.lastUnits = p.unitsDone;
  }

  finish(): void {
    if (this.drawn) this.stream.write('\n');
  }
}
