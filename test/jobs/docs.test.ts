/**
 * The docs are true: generated options tables and example includes are current, every runnable
 * block of README.md and docs/*.md runs on the shipped fixtures and writes what it says, every
 * shell block that is not run says why, and every link between the pages leads somewhere.
 * How blocks are marked: docs/testing.md, "The docs are tested".
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docFiles, generate, optionsTable, SPECS, updateDocs } from '../../scripts/docs-options.js';
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';
import { BIN, REPO } from '../helpers/run-cli.js';

const TSX = pathToFileURL(join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
/** The address the queue blocks name; replaced by the test's own redis-server. */
const DOC_REDIS = 'redis://127.0.0.1:6379';
/** A shell block that is not run says so, and why, on one of its first two lines. */
const NOT_RUN = /^# not run by the tests: \S/;

interface Block {
  file: string;
  line: number;
  lang: string;
  body: string;
  writes: string[];
}

function blocksOf(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    const claim = /^<!-- writes: (.+) -->$/.exec(lines[i + 1] ?? '');
    out.push({ file: relative(REPO, file), line: start + 1, lang: open[1]!, body: `${body.join('\n')}\n`, writes: claim ? claim[1]!.trim().split(/\s+/) : [] });
  }
  return out;
}

const FILES = docFiles();
const BLOCKS = FILES.flatMap(blocksOf);
const RUN = BLOCKS.filter((b) => b.lang === 'sh' || b.lang === 'ts' || b.lang === 'python');
const SHELL_NOT_RUN = BLOCKS.filter((b) => ['bash', 'shell', 'console', 'zsh'].includes(b.lang));

/** What stands for `npx` and `npm` in the blocks: this checkout's CLI and tsx; the install and the suite are this run. */
const PRELUDE = `set -eo pipefail
npx() { case "$1" in
  clipstream) shift; node ${JSON.stringify(BIN)} "$@";;
  tsx) shift; node --import ${JSON.stringify(TSX)} "$@";;
  *) echo "docs test: npx $1 is not provided" >&2; return 127;;
esac; }
npm() { case "$1" in
  ci|test) echo "docs test: 'npm $1' is what this test run already is; not repeated" >&2;;
  *) echo "docs test: npm $1 is not provided" >&2; return 127;;
esac; }
`;

function missingPython(body: string): string | null {
  const mods = [...body.matchAll(/^\s*(?:import|from) ([\w., ]+?)(?: import .*)?$/gm)].flatMap((m) => m[1]!.split(',').map((s) => s.trim().split(/[. ]/)[0]!));
  for (const mod of new Set(mods)) {
    if (spawnSync('/usr/bin/python3', ['-c', `import ${mod}`]).status !== 0)
      return `python module ${mod} is missing (apt-get install python3-${mod.toLowerCase()})`;
  }
  return null;
}

describe('generated parts of the docs', () => {
  it('every options table and example include is current (npm run docs:options)', () => {
    expect(updateDocs(true)).toEqual([]);
  });

  it('a table that differs from its command spec is rewritten, so the check above can fail', () => {
    const spec = SPECS.find((s) => s.name === 'extract')!;
    const stale = `<!-- options: extract -->\n${optionsTable(spec).replace('required', 'optional')}\n<!-- /options -->\n`;
    expect(generate(stale, 'x.md')).not.toBe(stale);
    expect(generate(generate(stale, 'x.md'), 'x.md')).toBe(generate(stale, 'x.md'));
    expect(() => generate('<!-- options: nope -->\n<!-- /options -->', 'x.md')).toThrow(/x\.md: <!-- options: nope --> names no command/);
  });

  it('every command the CLI has is documented by a generated table', () => {
    const text = FILES.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(SPECS.filter((s) => !text.includes(`<!-- options: ${s.name} -->`)).map((s) => s.name)).toEqual([]);
  });

  it('the API reference (npm run docs) covers every entry point the package exports', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string }> };
    const typedoc = JSON.parse(readFileSync(join(REPO, 'typedoc.json'), 'utf8')) as { entryPoints: string[] };
    const sources = Object.values(pkg.exports)
      .map((e) => e.types)
      .filter((t): t is string => typeof t === 'string' && t.endsWith('.d.ts'))
      .map((t) => t.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts'));
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((s) => !typedoc.entryPoints.includes(s))).toEqual([]);
  });

  it('the README is at most 250 lines and opens with the two commands', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    const first = BLOCKS.find((b) => b.file === 'README.md')!;
    expect(first.lang).toBe('sh');
    expect(first.body).toMatch(/npx clipstream extract --tar_path="fixtures\/shards\/[^"]+" --out_path=out\n/);
    expect(first.body).toMatch(/^npm test$/m);
  });
});

describe('blocks that are not run', () => {
  it.each(SHELL_NOT_RUN.map((b) => [`${b.file}:${b.line}`, b] as const))('%s says why it is not run', (_name, b) => {
    expect(
      b.body
        .split('\n')
        .slice(0, 2)
        .some((l) => NOT_RUN.test(l)),
    ).toBe(true);
  });
});

describe('links between the pages', () => {
  const slug = (heading: string) =>
    heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
  const anchors = (file: string) => {
    const seen = new Map<string, number>();
    const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    return [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => {
      const s = slug(m[1]!);
      const n = seen.get(s) ?? 0;
      seen.set(s, n + 1);
      return n ? `${s}-${n}` : s;
    });
  };
  const links = FILES.flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => m[1]!)
      .filter((target) => !/^[a-z]+:/.test(target))
      .map((target) => [`${relative(REPO, file)} -> ${target}`, file, target] as const),
  );
  it.each(links)('%s', (_name, file, target) => {
    const [path, anchor] = target.split('#') as [string, string | undefined];
    const to = path ? resolve(dirname(file), path) : file;
    expect(existsSync(to), `${to} does not exist`).toBe(true);
    if (anchor) expect(anchors(to)).toContain(anchor);
  });
});

describe('every runnable block runs on the shipped fixtures', () => {
  let work: string;
  let redis: RedisServer | undefined;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'clipstream-docs-'));
    await symlink(join(REPO, 'fixtures'), join(work, 'fixtures'));
    await writeFile(join(work, 'package.json'), '{ "type": "module" }\n');
    // `import ... from 'clipstream'` in a block resolves to this checkout (its package exports).
    await mkdir(join(work, 'node_modules'));
    await symlink(REPO, join(work, 'node_modules', 'clipstream'));
    if (!NO_REDIS && RUN.some((b) => b.body.includes(DOC_REDIS))) redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('has blocks to run', () => {
    expect(RUN.filter((b) => b.lang === 'sh').length).toBeGreaterThan(5);
    expect(RUN.filter((b) => b.lang === 'ts').length).toBeGreaterThan(3);
  });

  it.for(RUN.map((b, i) => [`${b.file}:${b.line} (${b.lang})`, b, i] as const))('%s', { timeout: 300_000 }, async ([, b, i], ctx) => {
    let r: ReturnType<typeof spawnSync>;
    if (b.lang === 'sh') {
      if (b.body.includes(DOC_REDIS) && !redis) ctx.skip(NO_REDIS ?? 'no redis');
      const body = redis ? b.body.split(DOC_REDIS).join(redis.url) : b.body;
      r = spawnSync('bash', ['-c', PRELUDE + body], { cwd: work, encoding: 'utf8', timeout: 300_000 });
    } else if (b.lang === 'ts') {
      const file = join(work, `block-${i}.ts`);
      await writeFile(file, b.body);
      r = spawnSync(process.execPath, ['--import', TSX, file], { cwd: work, encoding: 'utf8', timeout: 300_000 });
    } else {
      const missing = missingPython(b.body);
      if (missing) ctx.skip(missing);
      r = spawnSync('/usr/bin/python3', ['-c', b.body], { cwd: work, encoding: 'utf8', timeout: 60_000 });
    }
    expect(r.status, `${b.file}:${b.line} exited ${r.status} (${r.signal ?? ''}):\n${String(r.stderr).slice(-3000)}`).toBe(0);
    for (const path of b.writes) expect(existsSync(join(work, path)), `${b.file}:${b.line} claims to write ${path}`).toBe(true);
  });
});
