/**
 * Reading an output's tables without holding them: CSV rows streamed one at a time, and a scratch
 * store that sorts rows into one JSON-lines file per key (a video, a group) with a bounded buffer,
 * read back one row at a time. So the report's memory follows the page it writes, not the table.
 */
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { ClipstreamError } from '../errors.js';
import { exists } from '../util/fs.js';

export type Row = Record<string, string>;

/** The rows of a CSV file, one at a time (header names as keys, fields trimmed); nothing when the file is absent. */
export async function* csvRows(path: string): AsyncGenerator<Row> {
  if (!(await exists(path))) return;
  const parser = createReadStream(path).pipe(
    parse({ columns: (h: string[]) => h.map((c) => c.trim()), bom: true, trim: true, relax_quotes: true, relax_column_count: true, skip_empty_lines: true }),
  );
  try {
    for await (const row of parser) yield row as Row;
  } catch (err) {
    throw new ClipstreamError('ERR_FORMAT', `${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  }
}

/** The header of a CSV file ([] when absent or empty). */
export async function csvColumns(path: string): Promise<string[]> {
  if (!(await exists(path))) return [];
  const stream = createReadStream(path, { encoding: 'utf8', end: 1 << 20 });
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    lines.close();
    stream.destroy();
    const parsed = parse(line.replace(/^\uFEFF/, ''), { trim: true, relax_quotes: true });
    const rec: string[] = [];
    for await (const r of parsed) rec.push(...(r as string[]));
    return rec;
  }
  return [];
}

/** Rows sorted into one file per key, through a buffer of at most `limit` rows. */
export class Scratch {
  private buffer = new Map<string, string[]>();
  private held = 0;
  constructor(
    readonly dir: string,
    private readonly limit = 2000,
  ) {}

  async add(key: string, row: unknown): Promise<void> {
    let list = this.buffer.get(key);
    if (!list) {
      list = [];
      this.buffer.set(key, list);
    }
    list.push(JSON.stringify(row));
    if (++this.held >= this.limit) await this.flush();
  }

  async flush(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const [key, lines] of this.buffer) await appendFile(join(this.dir, `${key}.jsonl`), `${lines.join('\n')}\n`);
    this.buffer = new Map();
    this.held = 0;
  }

  /** The rows of `key`, one at a time, in the order they were added. */
  async *read<T>(key: string): AsyncGenerator<T> {
    const path = join(this.dir, `${key}.jsonl`);
    if (!(await exists(path))) return;
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) if (line) yield JSON.parse(line) as T;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A number from a table field; NaN for an empty or non-numeric one. */
export function num(v: string | undefined): number {
  if (v === undefined || v.trim() === '') return Number.NaN;
  const n = Number(v);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** A table's boolean: true, 1, yes (any case). */
export function truthy(v: string | undefined): boolean {
  return /^(true|1|yes)$/i.test((v ?? '').trim());
}
