/**
 * clipstream/faces: the stages of the `faces` job (videos -> sample frames -> detect -> track ->
 * crop -> encode -> record) for composing them yourself, the detectors, tracker and LMDB stores.
 *
 * @module clipstream/faces
 */
export type { FacesLmdb, FacesOptions, FacesProgress, FacesReport } from '../jobs/faces.js';
export { assignKeys, listFolderVideos, videoStem } from '../media/video-folder.js';
export { VIDEO_EXTENSIONS } from '../shards/clip-name.js';
export { probeSource, type ProbedVideo } from '../faces/source-info.js';
export type { BlockItem, ClipItem, FaceItem, FaceSource, FrameItem, RowItem } from '../faces/items.js';
export { sampleFramesStage } from '../faces/sample-frames.js';
export { detectStage } from '../faces/detect.js';
export { trackStage } from '../faces/track.js';
export { clipKeyOf, cropStage } from '../faces/crop.js';
export { encodeStage } from '../faces/encode.js';
export { facesRecordSink, STATE_FILE, type RecordState, type VideoLog } from '../faces/record.js';
export { FaceDetector, guessDetectorFormat, loadFaceDetector, type DetectorFormat } from '../faces/detector.js';
export { decodeScrfd } from '../faces/scrfd.js';
export { decodeYunet } from '../faces/yunet.js';
export { decodeUltraface } from '../faces/ultraface.js';
export { iou, nms, type Box, type Detection } from '../faces/boxes.js';
export { linkTracks, stableBlocks, TrackLinker } from '../faces/tracker.js';
export { squareAndResize, trackCrop } from '../faces/crops.js';
export { openFrameStore } from '../faces/lmdb-store.js';
export { writeLmdbV1 } from '../faces/lmdb-v1.js';
export { loadScorer, parseScorerSpec } from '../infer/scorers.js';
export { imageStats } from '../faces/scores.js';
