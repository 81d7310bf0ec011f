import type { Writable } from 'node:stream';
import { itemSink } from '../stage/item-stage.js';
import type { UnitResult } from '../stage/job-run.js';
import type { VideoItem } from './item.js';
import type { ClipTables, UnitRecord } from './table.js';
import { countReasons } from './filter.js';

export interface RecordSinkOptions {
  /** The tables of the output folder (src/clips/table.ts): updated after every video (rebuilt when that completes them or the throttle allows). */
  tables: ClipTables;
  /** Called once a video's record is written and the tables updated. */
  onRecorded?: (item: VideoItem, record: UnitRecord) => void | Promise<void>;
}

/**
 * The last stage: for each finished video (done, partly done or failed) its record
 * `outputDir/.units/<video_id>.json` is written atomically (the record store), then videos.csv, clips.csv and
 * span_issues.csv are rebuilt from every record in the folder if that makes them complete or
 * the last rebuild is old enough (`ClipTables.update('video')`). A run killed at any point
 * keeps every video recorded before it; runs sharing the folder each add their videos.
 *
 * @example
 * await pipeline(Readable.from(videoItems(sources)), obtainStage(ctx), probeStage(ctx), planStage(ctx), cutStage(ctx), describeStage(ctx), clipsRecordSink({ tables }));
 */
export function clipsRecordSink(o: RecordSinkOptions): Writable {
  const take = async (item: VideoItem) => {
    const record: UnitRecord = {
      video_id: item.source.videoId,
      row: item.row,
      clips: item.records,
      issues: item.issues,
      ...(item.shots ? { shots: item.shots } : {}),
    };
    await o.tables.records.write(record.video_id, record);
    await o.tables.update('video');
    await o.onRecorded?.(item, record);
  };
  return itemSink({ name: 'record', needs: ['row', 'records'] }, take);
}

/** A recorded video as the job runner's unit result (its log entry). */
export function unitResult(item: VideoItem, record: UnitRecord): UnitResult {
  return {
    unit: record.video_id,
    outcome: record.row.failed ? 'failed' : 'done',
    status: record.row.failed ? 'failed' : 'written',
    ...(record.row.error ? { error: record.row.error } : {}),
    ...(item.transient ? { transient: true } : {}),
    clips: record.clips.length,
    made: item.made,
    // With a filter: the clips kept out, by reason.
    ...(record.clips.some((c) => c.kept !== undefined) ? { filtered: countReasons(record.clips) } : {}),
  };
}
