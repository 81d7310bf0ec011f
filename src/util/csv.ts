/**
 * CSV reading and writing for every table clipstream reads or writes (clips' sources, spans
 * and tables, faces' metadata.csv), on `csv-parse` and `csv-stringify`.
 *
 * Reading: RFC 4180 quoting, a BOM dropped, header names and fields trimmed, blank lines
 * skipped, short rows filled with ''. A malformed table is an ERR_FORMAT naming the file
 * and the line. Writing: a header line, fields quoted only when they need it, `\n` line
 * ends, and one number format: `String(n)` (JavaScript's shortest round-trip form: `4.5`,
 * `10`, `0.333333`); booleans as `true`/`false`, null and undefined as empty. A writer that
 * wants fewer digits rounds its values first (faces rounds its measures to 7 significant
 * digits). Tables are written atomically, so a reader never sees half of one.
 *
 * @example
 * await writeCsvAtomic('out/videos.csv', ['video_id', 'num_clips'], [{ video_id: 'a', num_clips: 3 }]);
 * const rows = parseCsv(await readFile('out/videos.csv', 'utf8')); // [{ video_id: 'a', num_clips: '3' }]
 */
import { CsvError, parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { ClipstreamError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export type CsvRow = Record<string, string>;

export interface CsvReadOptions {
  /** Field separator; default `,` (`\t` for TSV). */
  delimiter?: string;
  /** The file the text came from, for messages. */
  file?: string;
}

/** A row with the line it starts on (1-based, the header is line 1). */
export interface CsvLine {
  line: number;
  row: CsvRow;
}

/**
 * Parses CSV/TSV text into rows keyed by the header, each with the line it starts on.
 *
 * @example parseCsvLines('video_id,path\n\nabc,"/v/a,b.mp4"\n') // [{ line: 3, row: { video_id: 'abc', path: '/v/a,b.mp4' } }]
 */
export function parseCsvLines(text: string, o: CsvReadOptions = {}): CsvLine[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      delimiter: o.delimiter ?? ',',
      bom: true,
      trim: true,
      relax_quotes: true,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    const line = err instanceof CsvError ? (err as CsvError & { lines?: number }).lines : undefined;
    const where = `${o.file ?? 'CSV text'}${line ? `, line ${line}` : ''}`;
    throw new ClipstreamError('ERR_FORMAT', `${where}: ${(err as Error).message}`, { cause: err, where: o.file ? { file: o.file } : {} });
  }
  // A line of only blanks (one empty field once trimmed) is a blank line too.
  const kept = records.filter(({ record }) => !(record.length === 1 && record[0] === ''));
  if (kept.length === 0) return [];
  const header = kept[0]!.record;
  return kept.slice(1).map(({ record, info }) => ({ line: info.lines, row: Object.fromEntries(header.map((h, j) => [h, record[j] ?? ''])) }));
}

/**
 * Parses CSV/TSV text into rows keyed by the header (see parseCsvLines).
 *
 * @internal used by tests only
 */
export function parseCsv(text: string, o: CsvReadOptions = {}): CsvRow[] {
  return parseCsvLines(text, o).map((l) => l.row);
}

/** The one number format of every table written: JavaScript's shortest round-trip form. */
export const formatNumber = (n: number): string => String(n);

/** CSV text with a header line; fields are quoted only when they need it. Always ends with a newline. */
export function formatCsv(columns: readonly string[], rows: readonly object[]): string {
  // Rows as arrays: csv-stringify would read a column named `a.b` as a nested path.
  const records = rows.map((r) => columns.map((c) => (r as Record<string, unknown>)[c]));
  return stringify(records, {
    header: true,
    columns: [...columns],
    record_delimiter: 'unix',
    cast: { number: formatNumber, boolean: (b) => String(b), bigint: (b) => String(b) },
  });
}

/** Writes a CSV so that readers never see a half-written table (tables are rewritten as work goes on). */
export async function writeCsvAtomic(path: string, columns: readonly string[], rows: readonly object[]): Promise<void> {
  await writeFileAtomic(path, formatCsv(columns, rows));
}
