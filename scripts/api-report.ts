/**
 * The API report: every entry point of package.json `exports`, with the name and kind of each
 * thing it exports, read from the TypeScript sources by the compiler. The committed report is
 * api/exports.json; test/jobs/api-report.test.ts fails when the surface and the report differ.
 *
 *   npm run api            rewrite api/exports.json from the sources
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REPORT_FILE = join(ROOT, 'api', 'exports.json');

/** Entry point (`clipstream`, `clipstream/models`, ...) -> export name -> kind. */
export type ApiReport = Record<string, Record<string, string>>;

/** The entry points of package.json `exports` with the source file each one is built from. */
export function entryPoints(): { name: string; source: string }[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
  const out: { name: string; source: string }[] = [];
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (typeof target !== 'object' || target === null) continue; // ./package.json
    const types = (target as Record<string, string>).types;
    if (!types?.startsWith('./dist/') || !types.endsWith('.d.ts')) throw new Error(`package.json exports["${key}"].types must be ./dist/....d.ts, is ${types}`);
    out.push({ name: key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`, source: join(ROOT, `src/${types.slice('./dist/'.length, -'.d.ts'.length)}.ts`) });
  }
  return out;
}

const KINDS: [ts.SymbolFlags, string][] = [
  [ts.SymbolFlags.Class, 'class'],
  [ts.SymbolFlags.Function, 'function'],
  [ts.SymbolFlags.Variable, 'const'],
  [ts.SymbolFlags.Enum, 'enum'],
  [ts.SymbolFlags.Interface, 'interface'],
  [ts.SymbolFlags.TypeAlias, 'type'],
  [ts.SymbolFlags.Namespace, 'namespace'],
];

function kindOf(symbol: ts.Symbol): string {
  const kinds = KINDS.filter(([flag]) => symbol.flags & flag).map(([, kind]) => kind);
  return kinds.length > 0 ? kinds.join('+') : 'unknown';
}

/** Reads the report from the sources (no build needed). */
export function apiReport(): ApiReport {
  const entries = entryPoints();
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (!config) throw new Error('api: cannot read tsconfig.build.json');
  const program = ts.createProgram(
    entries.map((e) => e.source),
    config.options,
  );
  const checker = program.getTypeChecker();
  const report: ApiReport = {};
  for (const entry of entries) {
    const file = program.getSourceFile(entry.source);
    const moduleSymbol = file && checker.getSymbolAtLocation(file);
    if (!moduleSymbol) throw new Error(`api: ${entry.name}: ${entry.source} is missing or exports nothing`);
    const names: Record<string, string> = {};
    for (const exported of checker.getExportsOfModule(moduleSymbol).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      names[exported.name] = kindOf(symbol);
    }
    report[entry.name] = names;
  }
  return report;
}

export function formatReport(report: ApiReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const report = apiReport();
  writeFileSync(REPORT_FILE, formatReport(report));
  for (const [entry, names] of Object.entries(report)) console.log(`${entry}: ${Object.keys(names).length} exports`);
}
