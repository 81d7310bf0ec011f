/**
 * The public surface: the entry points of package.json `exports`, each pinned by name and kind in
 * api/exports.json. A change to what an entry point exports fails here until the report is
 * regenerated (`npm run api`) and committed, so every change of the surface shows in review.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ApiReport, apiReport, entryPoints, formatReport, REPORT_FILE } from '../../scripts/api-report.js';
import { REPO } from '../helpers/run-cli.js';

const REGENERATE = 'the public surface changed: run `npm run api` and commit api/exports.json (review the diff: it is the API change)';
const ROOT_LIMIT = 60;
const VALUE_KINDS = new Set(['class', 'function', 'const', 'enum']);

/** Names that once leaked through the root export and are internals of one module. */
const INTERNALS = ['decodeArgs', 'unpickle', 'frameKey', 'shardJournalPath', 'lockPathFor', 'liveChildProcesses', 'shardIncompletePath', 'completedIndices'];

function differences(want: ApiReport, have: ApiReport): string[] {
  const out: string[] = [];
  for (const entry of new Set([...Object.keys(want), ...Object.keys(have)])) {
    const w = want[entry];
    const h = have[entry];
    if (!w) out.push(`+ entry point ${entry}`);
    else if (!h) out.push(`- entry point ${entry}`);
    else
      for (const name of new Set([...Object.keys(w), ...Object.keys(h)])) {
        if (w[name] === h[name]) continue;
        out.push(
          !w[name] ? `+ ${entry}: ${name} (${h[name]})` : !h[name] ? `- ${entry}: ${name} (${w[name]})` : `~ ${entry}: ${name} ${w[name]} -> ${h[name]}`,
        );
      }
  }
  return out;
}

describe('the API report (api/exports.json)', () => {
  const committed = JSON.parse(readFileSync(REPORT_FILE, 'utf8')) as ApiReport;
  const current = apiReport();

  it('matches what the entry points export', () => {
    const diff = differences(committed, current);
    expect(diff, `${REGENERATE}\n${diff.join('\n')}`).toEqual([]);
    expect(formatReport(current), REGENERATE).toBe(readFileSync(REPORT_FILE, 'utf8'));
  });

  it(`keeps the root export small (at most ${ROOT_LIMIT} names) and the internals out of every entry point`, () => {
    expect(Object.keys(current.clipstream ?? {}).length).toBeGreaterThan(0);
    expect(Object.keys(current.clipstream!).length).toBeLessThanOrEqual(ROOT_LIMIT);
    for (const [entry, names] of Object.entries(current)) for (const name of INTERNALS) expect(names, `${entry} exports ${name}`).not.toHaveProperty(name);
  });

  it('has one package.json `exports` entry for each file of src/entries/ and for src/index.ts', () => {
    const sources = entryPoints().map((e) => e.source);
    const files = readdirSync(join(REPO, 'src', 'entries')).map((f) => join(REPO, 'src', 'entries', f));
    expect([...sources].sort()).toEqual([join(REPO, 'src', 'index.ts'), ...files].sort());
  });

  it('each entry point loads from dist/ by its package name and holds the values the report lists', () => {
    // Node resolves the package's own name through `exports` (self-reference), as a user's import does.
    const names = entryPoints().map((e) => e.name);
    const script = `const out = {}; for (const n of ${JSON.stringify(names)}) out[n] = Object.keys(await import(n)).sort(); console.log(JSON.stringify(out));`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8' })) as Record<
      string,
      string[]
    >;
    for (const name of names) {
      const values = Object.entries(committed[name] ?? {})
        .filter(([, kind]) => kind.split('+').some((k) => VALUE_KINDS.has(k)))
        .map(([n]) => n)
        .sort();
      expect(loaded[name], name).toEqual(values);
    }
  });
});
