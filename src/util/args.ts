import { ClipstreamError } from '../errors.js';

export interface OptionSpec {
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'string[]';
  description: string;
  default?: string | number | boolean;
  required?: boolean;
  /**
   * The library option this flag feeds, when it is not the flag's camelCase (`min_duration` ->
   * `minDurationSeconds`): errors the library raises about that option then name the flag. This
   * is how the seeds' spellings stay CLI aliases of the one library name: `--out_path` (extract),
   * `--out_dir` (clips, bundle) and `--output_dir` feed `outputDir`; `--num_workers` feeds
   * `parallelDecoders` (extract) or `parallelVideos` (faces), `--num_processes` `parallelVideos` (clips).
   */
  library?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  examples: string[];
}

export type ParsedArgs = Record<string, string | number | boolean | string[]>;

function badArg(message: string): ClipstreamError {
  return new ClipstreamError('ERR_INVALID_OPTION', message);
}

/**
 * Parses `--key=value`, `--key value`, `--flag`, `--no-flag` (python-fire style, as seed 004's
 * CLI is called). Dashes and underscores in keys are the same (`--tar-path` = `--tar_path`).
 * Unknown options and wrong types are errors that name the option.
 *
 * @example parseArgs(['--tar_path=a.tar', '--batch_size', '4'], spec) // { tar_path: 'a.tar', batch_size: 4 }
 */
export function parseArgs(argv: string[], spec: CommandSpec): ParsedArgs {
  const byName = new Map(spec.options.map((o) => [o.name, o]));
  const out: ParsedArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--'))
      throw badArg(`${spec.name}: unexpected argument '${arg}' (options are written --name=value; see 'clipstream ${spec.name} --help')`);
    const eq = arg.indexOf('=');
    let key = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replace(/-/g, '_');
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let opt = byName.get(key);
    if (!opt && key.startsWith('no_') && value === undefined && byName.get(key.slice(3))?.type === 'boolean') {
      key = key.slice(3);
      opt = byName.get(key)!;
      value = 'false';
    }
    if (!opt) {
      const near = [...byName.keys()].filter((k) => k.includes(key) || key.includes(k));
      throw badArg(`${spec.name}: unknown option --${key}${near.length ? ` (did you mean ${near.map((k) => `--${k}`).join(', ')}?)` : ''}`);
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (opt.type === 'boolean') {
        if (next === 'true' || next === 'false') {
          value = next;
          i++;
        } else value = 'true';
      } else {
        if (next === undefined || next.startsWith('--')) throw badArg(`${spec.name}: option --${key} needs a value`);
        value = next;
        i++;
      }
    }
    out[key] = convert(spec.name, opt, value, out[key]);
  }
  for (const opt of spec.options) {
    if (out[opt.name] === undefined && opt.default !== undefined) out[opt.name] = opt.default;
    if (opt.required && out[opt.name] === undefined) throw badArg(`${spec.name}: missing required option --${opt.name}`);
  }
  return out;
}

function convert(command: string, opt: OptionSpec, value: string, previous: ParsedArgs[string] | undefined): ParsedArgs[string] {
  switch (opt.type) {
    case 'string':
      return value;
    case 'string[]':
      return [...((previous as string[] | undefined) ?? []), value];
    case 'boolean':
      if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
      if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
      throw badArg(`${command}: option --${opt.name} expects true or false but received '${value}'`);
    case 'number':
    case 'integer': {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (opt.type === 'integer' && !Number.isInteger(n))) {
        throw badArg(`${command}: option --${opt.name} expects ${opt.type === 'integer' ? 'an integer' : 'a number'} but received '${value}'`);
      }
      return n;
    }
  }
}

/** Help text for one command. */
export function formatHelp(spec: CommandSpec): string {
  const width = Math.max(...spec.options.map((o) => o.name.length + 2 + (o.type === 'boolean' ? 0 : 8)));
  const lines = [`clipstream ${spec.name}: ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:'];
  for (const o of spec.options) {
    const left = `--${o.name}${o.type === 'boolean' ? '' : '=<value>'}`.padEnd(width + 2);
    const def = o.default !== undefined ? ` (default: ${String(o.default)})` : o.required ? ' (required)' : '';
    lines.push(`  ${left}  ${o.description}${def}`);
  }
  lines.push(`  ${'--help'.padEnd(width + 2)}  Show this help`);
  if (spec.examples.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * The CLI flag that feeds a library option path (`options.windowSeconds` -> `--window_seconds`),
 * or null when no flag of `spec` does. Paths that already are flags are returned as they are.
 */
export function flagFor(spec: CommandSpec, optionPath: string): string | null {
  if (optionPath.startsWith('--')) return optionPath;
  const last = optionPath.slice(optionPath.lastIndexOf('.') + 1);
  const o = spec.options.find((x) => x.library === last) ?? spec.options.find((x) => x.library === undefined && camel(x.name) === last);
  return o ? `--${o.name}` : null;
}

/**
 * An error as a CLI user reads it: one line, naming the flag instead of the library option
 * (`Expected integer ... for options.batchSize ...` -> `--batch_size: expected integer ...`).
 * The one mechanism every command's errors go through (cli/main.ts).
 */
export function cliMessage(err: unknown, spec: CommandSpec | undefined): string {
  // Detail lines stay (a list of mismatched tensors); a stack trace pasted into a message does not.
  const lines = (err instanceof Error ? err.message : String(err)).split('\n');
  const stack = lines.findIndex((l, i) => i > 0 && /^\s+at /.test(l));
  const message = (stack < 0 ? lines : lines.slice(0, stack)).join('\n').trim();
  const path = (err as { where?: { option?: string } } | null)?.where?.option;
  const flag = spec && path ? flagFor(spec, path) : null;
  // A command that already spoke in flags (clips rewrites its own messages) is left as it said it.
  if (!path || !flag || (!message.includes(path) && message.includes(flag))) return message;
  const without = message.replace(` for ${path}`, '');
  if (without !== message) return `${flag}: ${without.charAt(0).toLowerCase()}${without.slice(1)}`;
  const replaced = message.split(path).join(flag);
  return replaced.startsWith(flag) ? replaced : `${flag}: ${replaced}`;
}
