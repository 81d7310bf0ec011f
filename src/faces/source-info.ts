import { probeVideo, type VideoInfo } from '../media/probe.js';
import { ffprobePath } from '../media/ffmpeg-path.js';
import { runTool, succeeded } from '../media/process.js';

/** What the faces stages need to know about a source: the probe, plus how it is displayed. */
export interface SourceInfo extends VideoInfo {
  /** Clockwise rotation applied on display (container display matrix / rotate tag): 0, 90, 180 or 270. */
  rotation: 0 | 90 | 180 | 270;
  /** Frame size as displayed (width and height swapped for 90 and 270): what detection, crops and the metadata use. */
  displayWidth: number;
  displayHeight: number;
}

const normalise = (deg: number): SourceInfo['rotation'] => ((((Math.round(deg / 90) * 90) % 360) + 360) % 360) as SourceInfo['rotation'];

/**
 * The rotation of the first video stream from ffprobe's `rotate` tag or display matrix, else
 * from ffmpeg's own stream description (the route that still works when ffprobe crashes).
 * ffmpeg applies the same rotation when it decodes (autorotate), so every frame the faces
 * stages see is the displayed one and all coordinates are displayed-frame coordinates.
 */
export async function probeRotation(path: string, ffmpeg: string, signal?: AbortSignal): Promise<SourceInfo['rotation']> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream_tags=rotate:stream_side_data=rotation', '-of', 'json', path];
  const r = await runTool(ffprobePath(), args, { signal, timeoutMs: 60_000, where: { file: path } });
  if (succeeded(r)) {
    try {
      const s = (JSON.parse(r.stdout.toString('utf8')) as { streams?: Array<{ tags?: { rotate?: string }; side_data_list?: Array<{ rotation?: number }> }> })
        .streams?.[0];
      const side = s?.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
      if (side !== undefined) return normalise(-side);
      if (s?.tags?.rotate !== undefined) return normalise(Number(s.tags.rotate) || 0);
      return 0;
    } catch {
      // fall through to ffmpeg
    }
  }
  const f = await runTool(ffmpeg, ['-hide_banner', '-i', path], { signal, timeoutMs: 60_000, where: { file: path } });
  const video = f.stderr.split(/\n(?=\s*Stream #)/).find((s) => /Stream #\S+.*Video:/.test(s)) ?? '';
  const matrix = /displaymatrix: rotation of (-?[\d.]+) degrees/.exec(video);
  if (matrix) return normalise(-Number(matrix[1]));
  const tag = /^\s*rotate\s*:\s*(-?\d+)/m.exec(video);
  return tag ? normalise(Number(tag[1])) : 0;
}

/**
 * Probes a source (media/probe.ts) and adds its display rotation and displayed size.
 *
 * @example
 * const info = await probeSource('phone.mp4', ffmpegPath()); // { width: 1920, height: 1080, rotation: 90, displayWidth: 1080, displayHeight: 1920, ... }
 */
export async function probeSource(path: string, ffmpeg: string, signal?: AbortSignal): Promise<SourceInfo> {
  const info = await probeVideo(path, { signal });
  const rotation = await probeRotation(path, ffmpeg, signal);
  const swap = rotation === 90 || rotation === 270;
  return { ...info, rotation, displayWidth: swap ? info.height : info.width, displayHeight: swap ? info.width : info.height };
}
