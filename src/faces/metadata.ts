import { Packr } from 'msgpackr';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { formatCsv } from '../util/csv.js';

/** One face clip: seed 002's columns where they apply, then ours, then one per scorer. */
export type FaceRow = Record<string, string | number | null>;

/** Column order of metadata.csv; scorer columns (`{name}_score`) follow in the order given. */
export const BASE_COLUMNS = [
  'file_original',
  'file_relative',
  'lmdb_file',
  'audio_file',
  'clip_key',
  'track',
  'start_frame',
  'end_frame',
  'start_time',
  'end_time',
  'num_frames',
  'width',
  'height',
  'original_fps',
  'original_duration',
  'original_width',
  'original_height',
  'original_resolution',
  'crop_x',
  'crop_y',
  'crop_size',
  'det_score_mean',
  'det_score_min',
  'det_score_max',
  'num_detections',
  'face_size',
  'face_size_ratio',
  'sharpness',
  'brightness',
  'contrast',
] as const;

// Plain maps (no record extension, no ext types): what Python's msgpack reads.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** Measures (scores, sizes) go to the CSV with 7 significant digits; the msgpack keeps them whole. */
const csvValue = (v: string | number | null | undefined) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(7)) : v);

/** CSV text with a header; columns are BASE_COLUMNS then any others in first-seen order. */
export function toCsv(rows: FaceRow[]): string {
  const columns: string[] = [...BASE_COLUMNS];
  for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  return formatCsv(
    columns,
    rows.map((r) => Object.fromEntries(columns.map((c) => [c, csvValue(r[c])]))),
  );
}

/**
 * Writes `metadata.csv` and `metadata.msgpack` (a list of row maps; Python:
 * `msgpack.unpackb(open(p, 'rb').read())`), each atomically.
 *
 * @example
 * await writeMetadata('out', rows);
 */
export async function writeMetadata(outputDir: string, rows: FaceRow[]): Promise<void> {
  await writeFileAtomic(join(outputDir, 'metadata.csv'), toCsv(rows));
  await writeFileAtomic(join(outputDir, 'metadata.msgpack'), packr.pack(rows));
}
