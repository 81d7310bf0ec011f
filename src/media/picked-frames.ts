/**
 * The exact resize fed as ffmpeg writes: the picked frames arrive on stdout in RGB at the
 * source size, one after another; each is copied into the resizer's input as its bytes come
 * and resized once whole, into every output slot that picked it. Nothing of the source size is
 * kept past one frame (a clip's 32 source frames are ~22 MB at 640×360), and no chunk is joined.
 */
import { FrameResizer, type CropMode } from './resize.js';

/** ffmpeg's description of its first output stream: `Stream #0:0: Video: rawvideo (...), rgb24(...), 640x360, ...`. */
const OUTPUT_STREAM = /^\s*Stream #0:0[^\n]*: Video: [^\n]*?, (\d{1,5})x(\d{1,5})(?:[ ,]|$)/;

export class PickedFrames {
  /** Source frame size, from ffmpeg's stderr (before its first frame is written, in practice). */
  private width = 0;
  private height = 0;
  private inOutputs = false;
  /** Chunks that came before the size was known. */
  private pending: Buffer[] | null = [];
  private resizer: FrameResizer | null = null;
  /** Bytes of the current frame copied into the resizer's input, and which distinct pick it is. */
  private fill = 0;
  private next = 0;
  /** Bytes ffmpeg wrote on stdout. */
  bytes = 0;
  readonly frames: Uint8Array;
  /** The distinct picks in order (ffmpeg writes each selected frame once) and the output slots of each. */
  private readonly distinct: number[];
  private readonly slots: number[][];

  constructor(
    picks: readonly number[],
    private readonly size: number,
    private readonly crop: CropMode,
  ) {
    this.distinct = [...new Set(picks)];
    this.slots = this.distinct.map((d) => picks.flatMap((p, i) => (p === d ? [i] : [])));
    this.frames = new Uint8Array(picks.length * size * size * 3);
  }

  /** Sees ffmpeg's stderr lines as they come; false: the line is kept in the run's stderr. */
  line = (text: string): boolean => {
    if (this.width > 0) return false;
    if (text.startsWith('Output #0')) this.inOutputs = true;
    else if (this.inOutputs) {
      const m = OUTPUT_STREAM.exec(text);
      if (m) this.setSize(Number(m[1]), Number(m[2]));
    }
    return false;
  };

  /** Takes a chunk of stdout. */
  push = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (this.pending) this.pending.push(chunk);
    else this.feed(chunk);
  };

  /** The source frame size, once known; `stderr` (the whole run's) is the last place to look. */
  finish(sizeFromStderr: { width: number; height: number } | null): { width: number; height: number } | null {
    if (this.width === 0 && sizeFromStderr) this.setSize(sizeFromStderr.width, sizeFromStderr.height);
    return this.width > 0 ? { width: this.width, height: this.height } : null;
  }

  /** Gives the resizer's kernel back (the run is over). */
  close(): void {
    this.resizer?.close();
  }

  /** True when stdout held exactly the distinct picks, each whole. */
  complete(): boolean {
    return this.width > 0 && this.next === this.distinct.length && this.fill === 0 && this.bytes === this.distinct.length * this.width * this.height * 3;
  }

  private setSize(width: number, height: number): void {
    this.width = width;
    this.height = height;
    this.resizer = new FrameResizer(width, height, this.size, this.crop);
    const pending = this.pending ?? [];
    this.pending = null;
    for (const chunk of pending) this.feed(chunk);
  }

  private feed(chunk: Buffer): void {
    const r = this.resizer!;
    const frameBytes = r.frameBytes;
    const out = this.size * this.size * 3;
    let at = 0;
    while (at < chunk.length && this.next < this.distinct.length) {
      const take = Math.min(frameBytes - this.fill, chunk.length - at);
      r.input.set(chunk.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill < frameBytes) break;
      const resized = r.resizeInput();
      for (const slot of this.slots[this.next]!) this.frames.set(resized, slot * out);
      this.fill = 0;
      this.next++;
    }
  }
}
