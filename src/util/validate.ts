import { InvalidOptionError } from '../errors.js';
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'object') return `value of type ${Array.isArray(value) ? 'array' : 'object'}`;
  return `${String(value)} of type ${typeof value}`;
}

/** Throws `Expected integer between 1 and 1024 for options.batchSize but received 0 of type number`. */
export function validateInteger(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range =
      Number.isFinite(min) && Number.isFinite(max)
        ? ` between ${min} and ${max}`
        : Number.isFinite(min)
          ? ` of at least ${min}`
          : Number.isFinite(max)
            ? ` of at most ${max}`
            : '';
    throw new InvalidOptionError(`Expected integer${range} for ${name} but received ${describe(value)}`, name);
  }
  return value;
}

export function validateNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = Number.isFinite(min) && Number.isFinite(max) ? ` between ${min} and ${max}` : Number.isFinite(min) ? ` of at least ${min}` : '';
    throw new InvalidOptionError(`Expected number${range} for ${name} but received ${describe(value)}`, name);
  }
  return value;
}

export function validateOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(`Expected one of ${allowed.map((a) => `'${a}'`).join(', ')} for ${name} but received ${describe(value)}`, name);
  }
  return value as T;
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidOptionError(`Expected non-empty string for ${name} but received ${describe(value)}`, name);
  }
  return value;
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidOptionError(`Expected boolean for ${name} but received ${describe(value)}`, name);
  }
  return value;
}

/**
 * Makes sure `path` is a folder this process can write, creating it and its parents one level
 * at a time. Not `mkdir({ recursive: true })`: on some paths (`/proc/x`) Node's recursive mkdir
 * retries forever at full CPU. Any problem is an InvalidOptionError naming `name`, one line.
 *
 * @example await ensureOutputDir('feats', '--out_path')
 */
export async function ensureOutputDir(path: string, name: string): Promise<string> {
  const full = resolve(path);
  const missing: string[] = [];
  let at = full;
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err));
    if (st instanceof Error) throw new InvalidOptionError(`${name}: cannot use ${at} (${st.code ?? st.message})`, name);
    if (st) {
      if (!st.isDirectory()) throw new InvalidOptionError(`${name}: ${at} exists and is not a folder`, name);
      break;
    }
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST' && (await stat(dir).catch(() => null))?.isDirectory()) continue;
      throw new InvalidOptionError(`${name}: cannot create the folder ${dir} (${e.code ?? e.message})`, name);
    }
  }
  try {
    await access(full, constants.W_OK);
  } catch (err) {
    throw new InvalidOptionError(`${name}: the folder ${full} is not writable (${(err as NodeJS.ErrnoException).code})`, name);
  }
  return full;
}
