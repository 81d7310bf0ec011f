/**
 * Writes the generated parts of the docs, so that they cannot drift from the code:
 *
 * - every options table, from the same `CommandSpec` the CLI parses (src/cli/*-command.ts), between
 *   `<!-- options: NAME -->` and `<!-- /options -->` (NAME is the spec's name: `extract`, `models fetch`, ...);
 * - every example script shown in the docs, copied from its file, between
 *   `<!-- include: examples/FILE.ts -->` and `<!-- /include -->`.
 *
 *   npm run docs:options            rewrite README.md and docs/*.md in place
 *   npm run docs:options -- --check list the files that are out of date and exit 1 (test/jobs/docs.test.ts does the same)
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec, OptionSpec } from '../src/util/args.js';
import { commands } from '../src/cli/commands.js';
import { modelsFetchSpec, modelsListSpec } from '../src/cli/models-fetch-command.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Every command spec a docs page may show, by its name. */
export const SPECS: readonly CommandSpec[] = [...commands, modelsFetchSpec, modelsListSpec];

/** The markdown files that may hold generated parts. */
export function docFiles(root = REPO): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(root, 'docs', f));
  return [join(root, 'README.md'), ...docs];
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultCell(o: OptionSpec): string {
  if (o.required) return 'required';
  if (o.default === undefined) return '';
  return `\`${String(o.default)}\``;
}

/** The options table of one command, as markdown (no trailing newline). */
export function optionsTable(spec: CommandSpec): string {
  const rows = spec.options.map((o) => {
    const flag = `\`--${o.name}\``;
    // A flag spelled as the seeds did (`--out_path`) names the library option it feeds (`outputDir`).
    const library = o.library ? ` (library: \`${o.library}\`)` : '';
    return `| ${flag} | ${o.type === 'boolean' ? 'flag' : o.type} | ${defaultCell(o)} | ${cell(o.description)}${library} |`;
  });
  return ['| option | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

const OPTIONS = /(<!-- options: ([^>]+?) -->\n)([\s\S]*?)(<!-- \/options -->)/g;
const INCLUDE = /(<!-- include: ([^>]+?) -->\n)([\s\S]*?)(<!-- \/include -->)/g;

/** `text` with every generated part rewritten; throws naming `file` for a marker that names nothing. */
export function generate(text: string, file: string, root = REPO): string {
  return text
    .replace(OPTIONS, (_all, open: string, name: string, _old: string, close: string) => {
      const spec = SPECS.find((s) => s.name === name.trim());
      if (!spec) throw new Error(`${file}: <!-- options: ${name} --> names no command (known: ${SPECS.map((s) => s.name).join(', ')})`);
      return `${open}${optionsTable(spec)}\n${close}`;
    })
    .replace(INCLUDE, (_all, open: string, path: string, _old: string, close: string) => {
      const body = readFileSync(join(root, path.trim()), 'utf8').trimEnd();
      return `${open}\`\`\`ts\n${body}\n\`\`\`\n${close}`;
    });
}

/** The files whose generated parts are out of date (relative paths); rewrites them unless `check`. */
export function updateDocs(check: boolean, root = REPO): string[] {
  const stale: string[] = [];
  for (const file of docFiles(root)) {
    const text = readFileSync(file, 'utf8');
    const fresh = generate(text, relative(root, file), root);
    if (fresh === text) continue;
    stale.push(relative(root, file));
    if (!check) writeFileSync(file, fresh);
  }
  return stale;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  const stale = updateDocs(check);
  if (check && stale.length) {
    process.stderr.write(`docs out of date (run npm run docs:options): ${stale.join(', ')}\n`);
    process.exit(1);
  }
  process.stdout.write(stale.length ? `${check ? 'stale' : 'rewrote'}: ${stale.join(', ')}\n` : 'docs up to date\n');
}
