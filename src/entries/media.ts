/**
 * clipstream/media: which ffmpeg runs, what a file holds, decoding clips, mp4 layout, child processes.
 *
 * @module clipstream/media
 */
export { ffmpegChoice, ffmpegPath, ffprobeChoice, ffprobePath, type ToolChoice } from '../media/ffmpeg-path.js';
export { probeMedia, type MediaFacts, type ProbeMediaOptions } from '../media/facts.js';
export { probeFrames, probeFrameTimeline, probeVideo, type FrameTimeline, type FrameTimes, type VideoInfo } from '../media/probe.js';
export { decodeClip, resolveDecodeOptions, type DecodedClip, type DecodeOptions } from '../media/decode.js';
export { decodeClips, type DecodeStageOptions } from '../media/decode-stage.js';
export { pipeLayout, predictFrameCount, toFastStart, type PipeLayout } from '../media/mp4.js';
export { linspaceIndices, shortSideScale } from '../media/sampling.js';
export { streamTool, type StreamOptions, type ToolStream } from '../media/process.js';
