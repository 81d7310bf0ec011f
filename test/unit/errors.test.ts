/**
 * One error vocabulary: every error class of the library is a ClipstreamError with a code of the
 * documented list (src/errors.ts ERROR_CODES), and a plain `new Error(` in src/ is allowed only
 * at the internal-invariant sites listed below, each with a comment saying why.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ClipstreamError, ERROR_CODES, isErrorCode, toClipstreamError } from '../../src/errors.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

async function sourceFiles(dir = SRC): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

const rel = (p: string) => relative(SRC, p).split('\\').join('/');

/**
 * One instance of each exported error class, built as the library builds it: a class not listed
 * here fails the walk below, so a new error class gets its code checked too.
 */
const SAMPLES: Record<string, (C: new (...args: never[]) => Error) => Error> = {
  ClipstreamError: (C) => new (C as typeof ClipstreamError)('ERR_IO', 'x'),
  InvalidOptionError: (C) => new (C as unknown as new (m: string, o: string) => Error)('bad', 'options.x'),
  DiskFullError: (C) => new (C as unknown as new (m: string, o?: object) => Error)('disk full'),
  ToolFailure: (C) =>
    new (C as unknown as new (b: string, w: string, r: object) => Error)('ffmpeg', 'cannot decode', { code: 1, signal: null, killedBy: undefined, stderr: '' }),
  UnitRefusedError: (C) => new (C as unknown as new (r: string) => Error)('a path outside the allowed roots'),
  ShardSourceError: (C) => new (C as unknown as new (u: string, m: string) => Error)('a.tar', 'cannot open'),
  HttpPermanentError: (C) => new (C as unknown as new (m: string, nf?: boolean) => Error)('HTTP 404', true),
  HttpGaveUp: (C) => new (C as unknown as new (c: unknown, n: number) => Error)(new Error('reset'), 3),
  PermanentUnitError: (C) => new (C as unknown as new (m: string, c: string) => Error)('no such job', 'ERR_INVALID_OPTION'),
  UnitBusyError: (C) => new (C as unknown as new (m: string) => Error)('locked by another run'),
  HandedBackError: (C) => new (C as unknown as new (u: string) => Error)('unit-1'),
  TarFormatError: (C) => new (C as unknown as new (m: string) => Error)('Unexpected end of data'),
};

/**
 * The plain `new Error(` sites allowed in src/: internal invariants or signals that never reach
 * a user as they are. Each says why in a comment at the site.
 */
const PLAIN_ERROR_ALLOWED: Record<string, string[]> = {
  // The abort reason of a destroyed stage, seen only by the stage's own work.
  'stage/generator.ts': ["this.abort.abort(err ?? new Error('stage destroyed'));"],
  // Never thrown: its stack points a child's failure at the caller of runTool.
  'media/process.ts': ["const callerStack = new Error('runTool caller');"],
  // Node's errno shape (`code: 'ENOENT'`), which the tar reader turns into "does not exist; skipped".
  'shards/shard-source.ts': ["if (code === 'ENOENT') return Object.assign(new Error(message, { cause }), { code });"],
  // The tar reader's own misuse of the parser: a bug, not an input.
  'shards/tar-parse.ts': ["if (!pending) throw new Error('tar parser: body() without a member');"],
};

describe('errors', () => {
  it('every code in the documented list says what kind of failure it is', () => {
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^ERR_[A-Z_]+$/);
      expect(meaning.length).toBeGreaterThan(10);
    }
    expect(isErrorCode('ERR_IO')).toBe(true);
    expect(isErrorCode('ENOENT')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('wrapping keeps a ClipstreamError as it is, and a failed system call is ERR_IO whatever the caller was at', async () => {
    const own = new ClipstreamError('ERR_PROBE', 'cannot probe a.mp4', { where: { file: 'a.mp4' } });
    expect(toClipstreamError(own, 'ERR_DECODE', { key: 'k' })).toMatchObject({ code: 'ERR_PROBE', where: { file: 'a.mp4', key: 'k' } });
    const missing = await readFile(join(SRC, 'no-such-file')).catch((e: unknown) => e);
    expect(toClipstreamError(missing, 'ERR_DECODE')).toMatchObject({ code: 'ERR_IO', cause: missing });
    expect(toClipstreamError(new Error('boom'), 'ERR_DECODE').code).toBe('ERR_DECODE');
  });

  it('every error class exported by a module of src/ is a ClipstreamError with a code from the list', async () => {
    const seen: string[] = [];
    const problems: string[] = [];
    for (const file of await sourceFiles()) {
      // The binary's entry point runs the CLI when imported.
      if (rel(file) === 'cli/run.ts') continue;
      const mod = (await import(file)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value !== 'function' || !(value.prototype instanceof Error || value === ClipstreamError)) continue;
        if (seen.includes(name)) continue;
        seen.push(name);
        if (value !== ClipstreamError && !(value.prototype instanceof ClipstreamError)) {
          problems.push(`${rel(file)}: ${name} does not extend ClipstreamError`);
          continue;
        }
        const make = SAMPLES[name];
        if (!make) {
          problems.push(`${rel(file)}: ${name} has no sample in test/unit/errors.test.ts SAMPLES`);
          continue;
        }
        const e = make(value as new (...args: never[]) => Error);
        if (!(e instanceof ClipstreamError) || !isErrorCode(e.code)) problems.push(`${rel(file)}: ${name} carries code ${String((e as ClipstreamError).code)}`);
      }
    }
    expect(problems).toEqual([]);
    // The walk found the classes (a broken walk would pass the check above vacuously).
    expect(seen).toEqual(
      expect.arrayContaining(['ClipstreamError', 'InvalidOptionError', 'ToolFailure', 'HttpGaveUp', 'PermanentUnitError', 'TarFormatError']),
    );
  });

  it('no class in src/ extends Error directly but ClipstreamError itself', async () => {
    const direct: string[] = [];
    for (const file of await sourceFiles()) {
      const text = await readFile(file, 'utf8');
      // Classes a module does not export escape the walk above; their base is checked here.
      for (const m of text.matchAll(/class (\w+) extends (\w+)/g)) {
        if (m[1] !== 'ClipstreamError' && ['Error', 'TypeError', 'RangeError', 'UnrecoverableError'].includes(m[2]!))
          direct.push(`${rel(file)}: class ${m[1]} extends ${m[2]}`);
      }
    }
    expect(direct).toEqual([]);
  });

  it('every ERR_ code written in src/ is in the documented list', async () => {
    const unknown: string[] = [];
    for (const file of await sourceFiles()) {
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/'(ERR_[A-Z_]+)'/g)) if (!isErrorCode(m[1])) unknown.push(`${rel(file)}: ${m[1]}`);
    }
    expect(unknown).toEqual([]);
  });

  it('a plain `new Error(` in src/ is only at an allowed internal site', async () => {
    const found: Record<string, string[]> = {};
    for (const file of await sourceFiles()) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      // Code only: a doc comment's example may show a user's own `throw new Error(...)`.
      const plain = lines.map((l) => l.trim()).filter((l) => /\bnew Error\(/.test(l) && !l.startsWith('*') && !l.startsWith('//'));
      if (plain.length) found[rel(file)] = plain;
    }
    expect(found).toEqual(PLAIN_ERROR_ALLOWED);
  });
});
