/**
 * The exact resize fed as ffmpeg writes: the picked frames arrive on stdout in RGB, one after
 * another, cut to the window the resize reads (decode.ts, resizeWindowFilter); each is copied
 * into the resizer's input as its bytes come and resized once whole, into every output slot
 * that picked it. Nothing of the source size is kept past one frame (a clip's 32 source frames
 * are ~22 MB at 640×360), and no chunk is joined.
 */
import { FrameResizer, windowAt, type CropMode } from './resize.js';

/** ffmpeg's crop filter, at its verbose level: `[Parsed_crop_3 @ 0x...] w:640 h:360 sar:1/1 -> w:362 h:360 sar:1/1`. */
const CROP_LINE = /\[Parsed_crop_\d+ @ [^\]]*\] w:(\d{1,5}) h:(\d{1,5}) sar:\S+ -> w:(\d{1,5}) h:(\d{1,5}) /;

/** The source frame size and the window's, from one stderr line (or the whole of stderr). */
function cropSizes(text: string): { width: number; height: number; windowWidth: number; windowHeight: number } | null {
  const m = CROP_LINE.exec(text);
  return m ? { width: Number(m[1]), height: Number(m[2]), windowWidth: Number(m[3]), windowHeight: Number(m[4]) } : null;
}

export class PickedFrames {
  /** Chunks that came before the size was known (copies: a chunk may be a view of a reused buffer). */
  private pending: Buffer[] | null = [];
  /** Made once ffmpeg's crop line gives the source frame and window sizes (before its first frame, in practice). */
  private resizer: FrameResizer | null = null;
  /** Bytes of the current frame copied into the resizer's input, and which distinct pick it is. */
  private fill = 0;
  private next = 0;
  /** Bytes ffmpeg wrote on stdout. */
  bytes = 0;
  /** Why the frames cannot be resized (the window ffmpeg cut misses pixels the resize reads), if so. */
  failure: Error | null = null;
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
    // Not zeroed (every slot is written before the frames count as complete, and only then are
    // they used), outside the Buffer pool, and a plain Uint8Array over the memory, as before.
    const bytes = Buffer.allocUnsafeSlow(picks.length * size * size * 3);
    this.frames = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /** Sees ffmpeg's stderr lines as they come; false: the line is kept in the run's stderr. */
  line = (text: string): boolean => {
    if (this.sizesDue && text.includes('Parsed_crop_')) this.setSizes(cropSizes(text));
    return false;
  };

  /** Takes a chunk of stdout; it is not kept (it may be a view of a buffer the next read overwrites). */
  push = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (this.pending) this.pending.push(Buffer.from(chunk));
    else if (this.resizer) this.feed(chunk);
  };

  /** The source frame size, once known; `stderr` (the whole run's) is the last place to look. */
  finish(stderr: string): { width: number; height: number } | null {
    if (this.sizesDue) this.setSizes(cropSizes(stderr));
    const r = this.resizer;
    return r ? { width: r.srcWidth, height: r.srcHeight } : null;
  }

  /** Gives the resizer's kernel back (the run is over). */
  close(): void {
    this.resizer?.close();
  }

  /** True when stdout held exactly the distinct picks, each whole. */
  complete(): boolean {
    return this.resizer !== null && this.next === this.distinct.length && this.fill === 0 && this.bytes === this.distinct.length * this.resizer.frameBytes;
  }

  /** True until the sizes are known (from ffmpeg's crop line) or found unusable. */
  private get sizesDue(): boolean {
    return this.resizer === null && this.failure === null;
  }

  private setSizes(sizes: ReturnType<typeof cropSizes>): void {
    if (!sizes) return;
    const window = windowAt(sizes.width, sizes.height, sizes.windowWidth, sizes.windowHeight, this.crop);
    try {
      this.resizer = new FrameResizer(sizes.width, sizes.height, this.size, this.crop, window);
    } catch (err) {
      // Called from ffmpeg's stderr handler, where nothing may throw: the run reports it (decode.ts).
      this.failure = err as Error;
      this.pending = null;
      return;
    }
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
