/** The extract part of the report: the feature shards and, from the run logs, per shard what was written, skipped and failed, and why. */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ReportContext } from './context.js';
import { counts, esc, moreNote, table } from './html.js';
import { latestResults, runLogs } from './logs.js';
import type { Section } from './section.js';

const SHARD_FILE = /^shard-.+\.(msgpack|json)$/;

async function shardFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => SHARD_FILE.test(n)).sort();
}

export async function hasExtract(dir: string): Promise<boolean> {
  if ((await shardFiles(dir)).some((n) => n.endsWith('.msgpack'))) return true;
  return (await runLogs(dir, 'extract', () => {})).length > 0;
}

interface ClipIssue {
  key?: string;
  filename?: string;
  reason?: string;
  code?: string;
}

export async function extractSection(ctx: ReportContext): Promise<Section> {
  const dir = ctx.outputDir;
  const results = latestResults(await runLogs(dir, 'extract', ctx.warn));
  const files = await shardFiles(dir);
  const rows: Record<string, unknown>[] = [];
  const issues: Record<string, unknown>[] = [];
  let written = 0;
  let skipped = 0;
  let failed = 0;
  let issueCount = 0;
  let unitsFailed = 0;
  const seen = new Set<string>();
  for (const r of results.values()) {
    const out = typeof r.output === 'string' ? basename(r.output) : '';
    if (out) seen.add(out);
    const sk = Array.isArray(r.skipped) ? (r.skipped as ClipIssue[]) : [];
    const fa = Array.isArray(r.failed) ? (r.failed as ClipIssue[]) : [];
    written += Number(r.written) || 0;
    skipped += sk.length;
    failed += fa.length;
    if (r.outcome === 'failed') unitsFailed++;
    const size = out
      ? await stat(join(dir, out)).then(
          (s) => s.size,
          () => null,
        )
      : null;
    rows.push({
      shard: r.shard ?? r.unit,
      status: r.outcome === 'failed' ? `failed: ${String(r.error ?? '')}` : String(r.status ?? r.outcome ?? ''),
      written: r.written ?? 0,
      skipped: sk.length,
      failed: fa.length,
      output: out ? `${out}${size === null ? ' (missing)' : ` (${size} bytes)`}` : '',
    });
    for (const [kind, list] of [
      ['failed', fa],
      ['skipped', sk],
    ] as const) {
      for (const c of list) {
        if (issueCount++ < ctx.limits.maxRows)
          issues.push({ shard: r.shard ?? r.unit, clip: c.key ?? c.filename, kind, code: c.code ?? '', reason: c.reason ?? '' });
      }
    }
  }
  for (const f of files) if (!seen.has(f)) rows.push({ shard: f, status: 'no run log', written: '', skipped: '', failed: '', output: f });
  const shards = files.filter((f) => f.endsWith('.msgpack') || results.size > 0).length;
  const html = [
    '<h2 id="extract">Extract: feature shards</h2>',
    counts([
      ['shards', 'feature shards', shards],
      ['extract_written', 'clips written', written],
      ['extract_skipped', 'clips skipped', skipped],
      ['extract_failed', 'clips failed', failed],
      ['extract_units_failed', 'shards failed', unitsFailed],
    ]),
    '<h3>Shards</h3>',
    table(['shard', 'status', 'written', 'skipped', 'failed', 'output'], rows, 'data-table="shards"'),
    issues.length
      ? `<h3>Clips failed or skipped, and why</h3>${table(['shard', 'clip', 'kind', 'code', 'reason'], issues, 'data-table="extract-issues"')}`
      : '',
    moreNote(issueCount - issues.length, 'failed or skipped clips'),
    results.size === 0 ? `<div class="more">no run log of extract in ${esc(dir)}: counts of written and failed clips are unknown</div>` : '',
  ].join('\n');
  return {
    name: 'extract',
    title: 'Extract',
    html,
    counts: { shards, extract_written: written, extract_skipped: skipped, extract_failed: failed, extract_units_failed: unitsFailed },
  };
}
