/**
 * Previews: a small animated WebP per clip, made with sharp from frames a job decodes anyway.
 *
 * `PreviewWriter` is a frame consumer (the `FrameScorer` shape: `push` each decoded frame, then
 * `finish`): it keeps at most `2 × frames` small frames whatever the clip's length (every frame at
 * first; when the buffer is full it drops every other one and keeps one frame in twice as many), so
 * memory never grows with the clip; each kept frame is resized at once to `width` pixels wide (the
 * frames' aspect kept, or `displayAspect` when the pixels are not square). `finish` picks `frames`
 * evenly spaced frames and writes `<outputDir>/previews/<clip>.webp` atomically. Its one column, `preview`,
 * is that path relative to the output folder ('' when the clip had no frame).
 *
 * @example
 * const w = new PreviewWriter({ outputDir: 'out', clipId: 'a_0_100' });
 * for (const f of frames) await w.push(f);
 * await w.finish(); // { preview: 'previews/a_0_100.webp' }
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { ClipstreamError } from '../errors.js';
import type { ClipFrame, FrameScorer } from '../features/clip-scores.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fitName } from '../util/names.js';

export interface PreviewOptions {
  /** The job's output folder; the preview goes to `previews/` under it. */
  outputDir: string;
  /** The clip's id: the file is `previews/<clip id>.webp` (`/` as `_`, shortened by `fitName` when too long). */
  clipId: string;
  /** Frames in the animation (default 12). */
  frames?: number;
  /** Width of the preview in pixels (default 192); the height follows the display aspect, rounded to even. */
  width?: number;
  /** The display aspect (width / height) when the frames' pixels are not square; default: the frames' own. */
  displayAspect?: number;
  /** Milliseconds each frame shows (default 160). */
  delayMs?: number;
  /** The folder under `outputDir` (default `previews`). */
  folder?: string;
}

/** The relative path of a clip's preview under an output folder (a `/` in the id becomes `_`). */
export function previewPath(clipId: string, folder = 'previews'): string {
  return `${folder}/${fitName(`${clipId.replace(/\//g, '_')}.webp`)}`;
}

export class PreviewWriter implements FrameScorer {
  readonly columns = ['preview'] as const;
  private readonly kept: ClipFrame[] = [];
  private stride = 1;
  private seen = 0;
  private readonly frames: number;
  private readonly width: number;
  private size: { w: number; h: number } | undefined;

  constructor(private readonly o: PreviewOptions) {
    this.frames = Math.max(1, Math.floor(o.frames ?? 12));
    this.width = Math.max(16, Math.floor(o.width ?? 192));
  }

  async push(frame: ClipFrame): Promise<void> {
    if (frame.rgb.length < frame.width * frame.height * 3) {
      throw new ClipstreamError(
        'ERR_FORMAT',
        `preview of ${this.o.clipId}: frame ${frame.index} has ${frame.rgb.length} bytes, not ${frame.width}x${frame.height}x3`,
      );
    }
    const n = this.seen++;
    if (n % this.stride !== 0) return;
    if (!this.size) {
      const aspect = this.o.displayAspect ?? frame.width / frame.height;
      const w = Math.max(2, Math.min(this.width, frame.width * 4) & ~1);
      this.size = { w, h: Math.max(2, Math.round(w / aspect / 2) * 2) };
    }
    // Kept small (and so a copy: the decoder may reuse its buffer).
    const rgb = await sharp(frame.rgb.subarray(0, frame.width * frame.height * 3), { raw: { width: frame.width, height: frame.height, channels: 3 } })
      .resize(this.size.w, this.size.h, { fit: 'fill' })
      .raw()
      .toBuffer();
    this.kept.push({ index: frame.index, rgb, width: this.size.w, height: this.size.h });
    if (this.kept.length >= 2 * this.frames) {
      for (let i = 1; i < this.kept.length; i++) this.kept.splice(i, 1);
      this.stride *= 2;
    }
  }

  async finish(): Promise<Record<string, number | string>> {
    if (this.kept.length === 0) return { preview: '' };
    const n = Math.min(this.frames, this.kept.length);
    const picked = Array.from({ length: n }, (_, i) => this.kept[Math.floor((i * this.kept.length) / n)]!);
    const { w, h } = this.size!;
    const pages = picked.map((f) => f.rgb);
    const webp = await sharp(Buffer.concat(pages), { raw: { width: w, height: h * n, channels: 3, pageHeight: h } })
      .webp({ quality: 70, loop: 0, delay: pages.map(() => this.o.delayMs ?? 160), effort: 2 })
      .toBuffer();
    const rel = previewPath(this.o.clipId, this.o.folder);
    await writeFileAtomic(join(this.o.outputDir, rel), webp);
    this.kept.length = 0;
    return { preview: rel };
  }
}
