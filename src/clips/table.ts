import { writeFileAtomic } from '../util/atomic.js';

/**
 * Parses CSV or TSV text (RFC 4180 quoting: `"a,b"`, `""` for a quote) into rows of
 * named fields. Header names are trimmed; blank lines are skipped.
 *
 * @example
 * parseDelimited('video_id,path\nabc,"/v/a,b.mp4"\n') // [{ video_id: 'abc', path: '/v/a,b.mp4' }]
 */
export function parseDelimited(text: string, delimiter = ','): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  // A BOM from spreadsheet exports would otherwise become part of the first header name.
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === delimiter) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  const nonEmpty = rows.filter((r) => !(r.length === 1 && r[0]!.trim() === ''));
  if (nonEmpty.length === 0) return [];
  const header = nonEmpty[0]!.map((h) => h.trim());
  return nonEmpty.slice(1).map((r) => Object.fromEntries(header.map((h, j) => [h, (r[j] ?? '').trim()])));
}

function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text with a header line; fields are quoted only when they need it. */
export function formatCsv(columns: readonly string[], rows: readonly object[]): string {
  return `${[columns.join(','), ...rows.map((r) => columns.map((c) => csvField((r as Record<string, unknown>)[c])).join(','))].join('\n')}\n`;
}

/** Writes a CSV so that readers never see a half-written table (it is rewritten as work goes on). */
export async function writeCsvAtomic(path: string, columns: readonly string[], rows: readonly object[]): Promise<void> {
  await writeFileAtomic(path, formatCsv(columns, rows));
}
