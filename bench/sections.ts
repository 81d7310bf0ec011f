/**
 * Where the bench's time goes, section by section: wall seconds, CPU seconds (this process, its
 * reaped children: the child runs, ffmpeg, the CLI processes; the spawn helper while it runs) and
 * the load average at the start and end of each section. On a shared machine the wall time is
 * inflated by other processes; the CPU time much less, so `cpu / cores` estimates what the
 * section would take alone on an idle machine when it keeps every core busy.
 *
 * @example
 * const clock = new SectionClock();
 * clock.start('decode'); ...; clock.start('infer'); ...; clock.stop();
 * console.log(clock.summary(2));
 */
import { loadavg } from 'node:os';
import { cpuSeconds } from './measure.js';

export interface SectionTime {
  section: string;
  wallSeconds: number;
  cpuSeconds: number | null;
  loadAtStart: number;
  loadAtEnd: number;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

const line = (s: SectionTime) =>
  `  ${s.section.padEnd(14)} ${s.wallSeconds.toFixed(1).padStart(7)} s wall  ${s.cpuSeconds === null ? '      ?' : s.cpuSeconds.toFixed(1).padStart(7)} s CPU  load ${s.loadAtStart.toFixed(1)} → ${s.loadAtEnd.toFixed(1)}`;

export class SectionClock {
  readonly times: SectionTime[] = [];
  private open: { section: string; t: number; cpu: number | null; load: number } | null = null;

  /** `log`, when given, gets each section's line as it closes (a run stopped early still shows where its time went). */
  constructor(private readonly log?: (s: string) => void) {}

  /** Closes the section running, if any, and starts `section`. */
  start(section: string): void {
    this.stop();
    this.open = { section, t: performance.now(), cpu: cpuSeconds(), load: loadavg()[0]! };
  }

  /** Closes the section running, if any. */
  stop(): void {
    const o = this.open;
    if (!o) return;
    this.open = null;
    const cpu = cpuSeconds();
    this.times.push({
      section: o.section,
      wallSeconds: r2((performance.now() - o.t) / 1000),
      cpuSeconds: o.cpu === null || cpu === null ? null : r2(cpu - o.cpu),
      loadAtStart: r2(o.load),
      loadAtEnd: r2(loadavg()[0]!),
    });
    this.log?.(`   [${line(this.times.at(-1)!).trim()}]`);
  }

  /** One line per section, and the totals with the idle estimate Σ max(cpu / cores, serial floor). */
  summary(cores: number): string {
    const lines = this.times.map(line);
    const wall = this.times.reduce((n, s) => n + s.wallSeconds, 0);
    const cpu = this.times.every((s) => s.cpuSeconds !== null) ? this.times.reduce((n, s) => n + s.cpuSeconds!, 0) : null;
    lines.push(
      `  ${'total'.padEnd(14)} ${wall.toFixed(1).padStart(7)} s wall  ${cpu === null ? '      ?' : cpu.toFixed(1).padStart(7)} s CPU` +
        (cpu === null ? '' : ` (CPU / ${cores} cores = ${(cpu / cores).toFixed(1)} s: the wall time on an idle machine if every core were kept busy)`),
    );
    return lines.join('\n');
  }
}
