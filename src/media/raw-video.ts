/**
 * ffmpeg input arguments for packed RGB frames written to its stdin: frames the project drew
 * (fixtures, the benches) or a model produced (face crops, matted segments).
 *
 * @example runTool(ffmpegPath(), ['-v', 'error', ...rawRgbInputArgs(320, 240, 25), '-c:v', 'libx264', 'out.mp4'], { input: frames })
 */
export function rawRgbInputArgs(width: number, height: number, rate: number | string): string[] {
  return ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(rate), '-i', 'pipe:0'];
}
