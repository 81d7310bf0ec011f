import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';
import { cropStage } from '../faces/crop.js';
import { detectStage } from '../faces/detect.js';
import { loadFaceDetector, type FaceDetector } from '../faces/detector.js';
import { encodeStage, LMDB_DIR } from '../faces/encode.js';
import type { FaceSource } from '../faces/items.js';
import { resolveFacesOptions, type FacesLmdb, type FacesOptions, type FacesReport } from '../faces/options.js';
import { facesRecordSink, type RecordState } from '../faces/record.js';
import { RECORDS_DIR, recordPath } from '../faces/records.js';
import { sampleFramesStage } from '../faces/sample-frames.js';
import { loadScorer, type Scorer } from '../infer/scorers.js';
import { listFolderVideos } from '../media/video-folder.js';
import { UnitStores } from '../faces/staging.js';
import { trackStage } from '../faces/track.js';
import { FaceUnits } from '../faces/units.js';
import { checkStages, pipeline } from '../stage/index.js';
import { runJob } from '../run/runner.js';
import { DEFAULT_FACE_DETECTOR, shippedModelsDir } from '../models/models-dir.js';

export type { FacesLmdb, FacesOptions, FacesProgress, FacesReport } from '../faces/options.js';

/**
 * Builds a face clip dataset from a folder of videos: the stages under src/faces/ (sources →
 * sampled frames → detect, batched → track → crop → encode/LMDB → record) in one pipeline, on
 * the job runner (units: the videos; share, `only`, locks, resume, run log). Each video's
 * outcome is a record of its own, and the tables are rebuilt from all records, so any number of
 * runs, ranks or machines can share one output folder. A video that cannot be decoded is
 * recorded as failed and the run goes on. With `makeLmdb`, `faces.lmdb` is written by the run
 * that records the last video of the folder, and not again while its stores stay the same
 * (the report's `lmdb` says what this run did, or which videos the store waits for).
 *
 * @example
 * const report = await faces({ inputDir: 'videos', outputDir: 'faces', makeLmdb: true });
 */
export async function faces(options: FacesOptions): Promise<FacesReport> {
  const o = resolveFacesOptions(options);
  const { outputDir, onWarning, signal } = o;
  try {
    if (!(await stat(o.inputDir)).isDirectory()) throw new ClipstreamError('ERR_INVALID_OPTION', 'not a folder');
  } catch (err) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `input folder ${o.inputDir} cannot be read: ${(err as Error).message}`, {
      cause: err,
      where: { option: 'inputDir', file: o.inputDir },
    });
  }
  const clearAll = o.overwrite && o.partition.world === 1 && !o.only;
  const units = await FaceUnits.open({ ...o, clearAll }, (keys) => listFolderVideos(o.inputDir, keys, onWarning));
  const { result, report } = await runJob<FaceSource, Omit<FacesReport, 'run'>>(
    {
      job: 'faces',
      units: units.sources,
      unitId: (s) => s.rel,
      partition: o.partition,
      only: o.only,
      logDir: outputDir,
      tempDirs: ['clips', 'audio', LMDB_DIR, RECORDS_DIR].map((d) => join(outputDir, d)),
      logOptions: { inputDir: o.inputDir, outputDir, makeLmdb: o.makeLmdb, sampleEvery: o.sampleEvery, size: o.size, detector: options.detector ?? null },
      locks: { finalPath: (s) => recordPath(outputDir, s.key), isDone: async (s) => (await units.doneRecord(s)) !== null },
      resume: units.resume,
      signal,
      onWarning,
      onProgress: (p) =>
        options.onProgress?.({ ...p, videosTotal: p.unitsTotal, videosDone: p.unitsDone, videosFailed: p.unitsFailed, clips: p.itemsDone + units.clipsBefore }),
    },
    async (run) => {
      units.checkStored(run);
      const state: RecordState = { videos: {}, rows: [], logs: [] };
      const stores = o.makeLmdb ? new UnitStores(outputDir) : null;
      let detector: FaceDetector | null = null;
      const scorers: Scorer[] = [];
      try {
        const session = { device: o.device ?? 'auto', intraOpThreads: o.intraOpThreads, onWarning, thread: o.modelThread };
        detector = await loadFaceDetector(o.detector ?? join(shippedModelsDir(), DEFAULT_FACE_DETECTOR), {
          ...session,
          format: o.detectorFormat ?? 'auto',
          scoreThreshold: o.scoreThreshold,
          nmsThreshold: o.nmsThreshold,
          minFaceSize: o.minFaceSize,
          inputSize: o.detectorInputSize,
        });
        for (const spec of o.scorers ?? []) scorers.push(await loadScorer(spec, session));
        const det = detector;
        const stages = checkStages(
          [
            sampleFramesStage({ ...o, fit: (w, h) => det.fit(w, h) }),
            detectStage(det, o),
            trackStage(o.track),
            cropStage(o),
            encodeStage({ ...o, encode: o, store: stores && ((s: FaceSource) => stores.storeFor(s)), scorers }),
            facesRecordSink(state, {
              outputDir,
              sources: units.sources,
              onWarning,
              saveSource: (source, log, rows) => units.save(stores, source, log, rows),
              onSource: (log, clips, lost) => {
                const outcome = log.status === 'failed' ? 'failed' : 'done';
                if (clips > 0) run.item('done', clips);
                if (lost > 0) run.item('failed', lost);
                run.unitDone({
                  unit: log.file,
                  outcome,
                  status: log.status,
                  ...(log.error ? { error: log.error } : {}),
                  ...(log.transient ? { transient: true } : {}),
                  key: log.key,
                  clips,
                });
              },
            }),
          ],
          ['source'],
        );
        // On a failure or an abort it returns once every stage has closed (killed its ffmpeg).
        await pipeline(Readable.from(run.pending()), ...stages, { signal });
        const { rows } = await units.rebuild();
        // After this run's records are written: the run that records the last video exports.
        const exported = o.makeLmdb ? await units.exportLmdb() : null;
        const lmdb: FacesLmdb | null = exported && {
          path: join(outputDir, LMDB_DIR),
          state: exported.outcome,
          waitingFor: exported.waitingFor,
          summary: exported.summary,
        };
        return {
          videos: units.videos(run, state.logs),
          rows,
          seconds: 0,
          lmdbPath: lmdb && lmdb.state !== 'waiting' ? lmdb.path : null,
          lmdb,
          provider: det.provider,
        };
      } finally {
        await stores?.closeAll();
        await detector?.close();
        for (const s of scorers) await s.close();
      }
    },
  );
  return { ...result, seconds: report.seconds, run: report };
}
