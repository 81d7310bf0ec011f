/**
 * What a worker accepts from the queue. Anyone who can write to the Redis a worker reads can put
 * a unit there, so a unit's job options are input to check, not instructions: they must be
 * options of the job's own CLI spec with the types that spec gives, local paths must be absolute
 * (queue add makes them so) and are normalised, and nothing that runs a program (a `pipe:`
 * shard, an executable such as `--ffmpeg_path`) is run unless the worker's owner allowed it.
 * Optionally each unit is signed (HMAC-SHA256) by whoever queued it, and a worker holding the
 * same secret runs only units whose signature verifies.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isAbsolute, normalize } from 'node:path';
import type { CommandSpec, OptionSpec } from '../util/args.js';
import { ClipstreamError } from '../errors.js';
import { expandShardUrls, isRemoteShard } from '../shards/shard-source.js';

/** The environment variable holding the shared secret units are signed with. */
export const QUEUE_SECRET_ENV = 'CLIPSTREAM_QUEUE_SECRET';

/** What a worker lets queued units do beyond reading and writing files. */
export interface TrustPolicy {
  /** Run any `pipe:` command or executable a unit names (`--allow_commands`). */
  allowCommands?: boolean;
  /**
   * Run those that start with one of these (`--allow_command_prefix`): a `pipe:` command whose
   * text starts with the prefix (written with or without `pipe:`) and goes on without a second
   * command (no `; & | $ \` < >`, quote, backslash or line break after the prefix), or an
   * executable whose normalised absolute path starts with it. Plain text: end a folder with `/`.
   */
  commandPrefixes?: readonly string[];
  /** When set, only units whose signature verifies with this key are run. */
  secret?: string;
}

/** A unit the worker will not run; the message is the one-line reason the queue records. */
export class UnitRefusedError extends ClipstreamError {
  constructor(reason: string) {
    super('ERR_BAD_ARGUMENT', `refused: ${reason}`);
    this.name = 'UnitRefusedError';
  }
}

/** What travels per unit (see UnitJobData in ./queue.ts), as far as trust is concerned. */
export interface QueuedUnit {
  job: string;
  unit: string;
  args: Record<string, unknown>;
  /** HMAC-SHA256 (hex) of `signedText`, present when the unit was queued with a secret. */
  sig?: string;
}

// Never taken from the queue: they make sense for one plain run only (queue add drops them too).
export const NOT_QUEUED = ['quiet', 'rank', 'world'];
// Flags that also take a model name: a bare name (no '/') is a name, not a path.
export const MODEL_NAME_FLAG = /model|detector/;
// webdataset's `::` list separator, outside an IPv6 literal's brackets (as in src/shards/shard-source.ts).
const LIST_SEPARATOR = /::(?![^[]*\])/;
// After an allowed prefix, a shell could be talked into a second command or a redirection by these.
const SHELL_CONTROL = /[;&|`$()<>\n\r'"\\]/;
const PIPE = 'pipe:';

/** True for an option that names a program the job runs (`--ffmpeg_path`, `--yt_dlp_path`, a future `--sox_path` "binary"). */
export function isExecutableOption(o: OptionSpec): boolean {
  return /(^|_)(ffmpeg|ffprobe|yt_dlp)_path$/.test(o.name) || (o.type === 'string' && /\b(binary|executable)\b/i.test(o.description));
}

/** The text a unit's signature covers: job, unit and options, keys sorted at every depth. */
export function signedText(u: Pick<QueuedUnit, 'job' | 'unit' | 'args'>): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return JSON.stringify([u.job, u.unit, sorted(u.args)]);
}

/** The unit's signature with `secret` (hex HMAC-SHA256 of `signedText`). */
export function signUnit(secret: string, u: Pick<QueuedUnit, 'job' | 'unit' | 'args'>): string {
  return createHmac('sha256', secret).update(signedText(u)).digest('hex');
}

function verifies(secret: string, u: QueuedUnit): boolean {
  if (typeof u.sig !== 'string' || !/^[0-9a-f]{64}$/.test(u.sig)) return false;
  return timingSafeEqual(Buffer.from(signUnit(secret, u), 'hex'), Buffer.from(u.sig, 'hex'));
}

/** A value as a reason quotes it: JSON (so a line break stays on the line), cut at 160 characters. */
function quote(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

function typeFits(o: OptionSpec, v: unknown): boolean {
  switch (o.type) {
    case 'string':
      return typeof v === 'string';
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'boolean':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
  }
}

const TYPE_WORDS: Record<OptionSpec['type'], string> = {
  string: 'a string',
  'string[]': 'a list of strings',
  boolean: 'true or false',
  number: 'a number',
  integer: 'an integer',
};

/**
 * A unit's options checked against the job's CLI spec, as `parseArgs` would have left them:
 * every key an option of the spec (not one of `NOT_QUEUED`), every value of that option's
 * type, defaults filled in, required ones present.
 */
export function checkUnitOptions(spec: CommandSpec, args: unknown): Record<string, unknown> {
  if (!args || typeof args !== 'object' || Array.isArray(args)) throw new UnitRefusedError(`its ${spec.name} options are ${quote(args)}, not an object`);
  const byName = new Map(spec.options.map((o) => [o.name, o]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    const o = byName.get(k);
    if (!o || NOT_QUEUED.includes(k)) throw new UnitRefusedError(`${spec.name} has no option --${k.slice(0, 80)} that a queued unit may set`);
    if (!typeFits(o, v)) throw new UnitRefusedError(`${spec.name} --${k} takes ${TYPE_WORDS[o.type]}, not ${quote(v)}`);
    out[k] = v;
  }
  for (const o of spec.options) {
    if (out[o.name] === undefined && o.default !== undefined && !NOT_QUEUED.includes(o.name)) out[o.name] = o.default;
    if (o.required && out[o.name] === undefined) throw new UnitRefusedError(`${spec.name} needs --${o.name}, which the unit does not set`);
  }
  return out;
}

/** One local path of a unit, normalised; URLs, `pipe:`, 'none' and model names as they are. */
function normalisedPath(flag: string, v: string): string {
  if (v === '' || v === 'none' || isRemoteShard(v)) return v;
  if (LIST_SEPARATOR.test(v))
    return v
      .split(LIST_SEPARATOR)
      .map((x) => normalisedPath(flag, x))
      .join('::');
  if (MODEL_NAME_FLAG.test(flag) && !v.includes('/')) return v;
  if (!isAbsolute(v))
    throw new UnitRefusedError(
      `--${flag} ${quote(v)} is not an absolute path (queue add makes local paths absolute; a worker does not guess what a relative one meant)`,
    );
  return normalize(v);
}

/** The commands a value would run: its `pipe:` shards after brace and `::` expansion. */
function pipeCommands(flag: string, v: string): string[] {
  if (!v.includes(PIPE)) return [];
  let parts: string[];
  try {
    parts = expandShardUrls(v);
  } catch (err) {
    throw new UnitRefusedError(`--${flag} ${quote(v)} names a pipe: command that does not expand: ${(err as Error).message}`);
  }
  return parts.filter((p) => p.startsWith(PIPE));
}

function allowedCommand(policy: TrustPolicy, command: string, kind: 'pipe' | 'executable'): boolean {
  if (policy.allowCommands) return true;
  for (const raw of policy.commandPrefixes ?? []) {
    // An empty prefix would allow everything: that is --allow_commands, said plainly.
    if (raw === '') continue;
    if (kind === 'executable') {
      if (command.startsWith(raw)) return true;
      continue;
    }
    const prefix = raw.startsWith(PIPE) ? raw.slice(PIPE.length) : raw;
    if (prefix.trim() !== '' && command.startsWith(prefix) && !SHELL_CONTROL.test(command.slice(prefix.length))) return true;
  }
  return false;
}

function refuseCommand(policy: TrustPolicy, what: string): never {
  const how = policy.commandPrefixes?.length
    ? `it matches none of this worker's --allow_command_prefix values (${policy.commandPrefixes.map((p) => quote(p)).join(', ')})`
    : 'this worker runs no command from the queue (start it with --allow_commands, or --allow_command_prefix=<prefix> for those it may run)';
  throw new UnitRefusedError(`${what}, and ${how}`);
}

/**
 * What a worker runs for a unit it took from the queue, or a `UnitRefusedError` with the reason:
 * the signature verified (with `policy.secret`), the options checked against `spec`, the
 * definition's `pathArgs` (and an absolute unit id) normalised, and every `pipe:` command and
 * executable allowed by the policy.
 */
export function admitUnit(
  spec: CommandSpec,
  pathArgs: readonly string[],
  u: QueuedUnit,
  policy: TrustPolicy = {},
): { unit: string; args: Record<string, unknown> } {
  if (policy.secret) {
    if (u.sig === undefined) throw new UnitRefusedError(`the unit carries no signature, and this worker runs only units signed with its ${QUEUE_SECRET_ENV}`);
    if (!verifies(policy.secret, u))
      throw new UnitRefusedError(`the unit's signature does not verify with this worker's ${QUEUE_SECRET_ENV} (queued without that secret, or changed since)`);
  }
  if (typeof u.unit !== 'string' || u.unit === '') throw new UnitRefusedError(`the unit id ${quote(u.unit)} is not a non-empty string`);
  const args = checkUnitOptions(spec, u.args);
  // Commands first: of all the reasons to refuse a unit, running something is the one to name.
  for (const o of spec.options) {
    const v = args[o.name];
    if (isExecutableOption(o)) {
      if (typeof v !== 'string' || v === '') continue;
      if (!isAbsolute(v)) throw new UnitRefusedError(`--${o.name} ${quote(v)} is not an absolute path to a program`);
      const path = normalize(v);
      if (!allowedCommand(policy, path, 'executable')) refuseCommand(policy, `--${o.name} names the program ${quote(path)}`);
      args[o.name] = path;
      continue;
    }
    // Every command the options name, not only this unit's: a unit runs with them all in hand.
    for (const s of typeof v === 'string' ? [v] : Array.isArray(v) ? (v as string[]) : []) {
      for (const c of pipeCommands(o.name, s)) {
        if (!allowedCommand(policy, c.slice(PIPE.length), 'pipe')) refuseCommand(policy, `--${o.name} names the command ${quote(c)}`);
      }
    }
  }
  if (u.unit.startsWith(PIPE) && !allowedCommand(policy, u.unit.slice(PIPE.length), 'pipe')) refuseCommand(policy, `the unit is the command ${quote(u.unit)}`);
  for (const flag of pathArgs) {
    const v = args[flag];
    if (typeof v === 'string') args[flag] = normalisedPath(flag, v);
    else if (Array.isArray(v)) args[flag] = v.map((x: string) => normalisedPath(flag, x));
  }
  const unit = !isRemoteShard(u.unit) && isAbsolute(u.unit) ? normalize(u.unit) : u.unit;
  return { unit, args };
}
