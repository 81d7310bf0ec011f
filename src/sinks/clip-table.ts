/**
 * The clips.csv table: one row per finished clip. Here, below the job folders, so that the clips
 * job writes it and the report reads it by the same column list.
 */
/** One row of `clips.csv`: a finished clip and where it came from. */
export interface ClipRecord {
  clip_id: string;
  filename: string;
  video_id: string;
  source: string;
  start_frame: number;
  end_frame: number;
  num_frames: number;
  start_s: number;
  end_s: number;
  fps: number;
  width: number;
  height: number;
  size_bytes: number;
  video_codec: string;
  audio_codec: string;
  bit_rate: number;
  /** With scores: the clip's scores by column (src/features/clip-scores.ts); clips.csv has a column each, after CLIP_COLUMNS. */
  scores?: Record<string, number | string>;
  /** With a filter: whether the clip passed it (its file is in clips/, else in filtered/ or not written), and the failed rules negated (`motion<0.02`). */
  kept?: boolean;
  filter_reason?: string;
}

export const CLIP_COLUMNS: readonly Exclude<keyof ClipRecord, 'scores' | 'kept' | 'filter_reason'>[] = [
  'clip_id',
  'filename',
  'video_id',
  'source',
  'start_frame',
  'end_frame',
  'num_frames',
  'start_s',
  'end_s',
  'fps',
  'width',
  'height',
  'size_bytes',
  'video_codec',
  'audio_codec',
  'bit_rate',
];

/**
 * The columns of clips.csv for these records: CLIP_COLUMNS, then every score column any record
 * has (in the order first seen), and the rows with their scores flattened into them. Records
 * without scores (older outputs, scores off) give the table it always had.
 *
 * @example clipTable(records).columns // [...CLIP_COLUMNS, 'motion', 'black', ...]
 */
export function clipTable(records: readonly ClipRecord[]): { columns: string[]; rows: object[] } {
  const extra = new Set<string>();
  for (const r of records) for (const k of Object.keys(r.scores ?? {})) extra.add(k);
  const filtered = records.some((r) => r.kept !== undefined);
  if (extra.size === 0 && !filtered) return { columns: [...CLIP_COLUMNS], rows: records as object[] };
  const rows = records.map(({ scores, ...r }) => ({ ...r, ...scores }));
  return { columns: [...CLIP_COLUMNS, ...extra, ...(filtered ? ['kept', 'filter_reason'] : [])], rows };
}
