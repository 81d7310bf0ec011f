import { type MediaFacts, probeMedia } from '../media/facts.js';
import { videoInfoOf, type VideoInfo } from '../media/probe.js';

/** What the faces stages need to know about a source: the probe, plus how it is displayed. */
export interface ProbedVideo extends VideoInfo {
  /** Clockwise rotation applied on display (media/facts.ts convention): 0, 90, 180 or 270. */
  rotation: 0 | 90 | 180 | 270;
  /**
   * Frame size as displayed: the sample aspect ratio applied, then width and height swapped for
   * 90 and 270. Detection, boxes, crops and the metadata are all in these square pixels.
   */
  displayWidth: number;
  displayHeight: number;
  /** The source's facts: the decoders take its square-pixel filter from them, the encoder its colour. */
  facts: MediaFacts;
}

/**
 * Probes a source (media/facts.ts, one probe for every job) for what the faces stages use. ffmpeg
 * applies the rotation when it decodes (autorotate) and the decoders resample to square pixels
 * (squarePixelsFilter), so every frame the stages see is the displayed one and all coordinates
 * are displayed-frame coordinates.
 *
 * @example
 * const info = await probeSource('phone.mp4', ffmpegPath()); // { width: 1920, height: 1080, rotation: 90, displayWidth: 1080, displayHeight: 1920, ... }
 */
export async function probeSource(path: string, ffmpeg: string, signal?: AbortSignal): Promise<ProbedVideo> {
  const facts = await probeMedia(path, { signal, ffmpeg, lastPacket: false });
  const g = facts.geometry;
  return { ...videoInfoOf(facts), rotation: g.rotation, displayWidth: g.displayWidth, displayHeight: g.displayHeight, facts };
}
