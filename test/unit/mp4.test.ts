import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { FIXTURE_CLIPS, fixtureClipPath } from '../../fixtures/index.js';
import { isIsoBmff, toFastStart } from '../../src/media/mp4.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';

function topLevel(buf: Buffer): string[] {
  const types: string[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const size = buf.readUInt32BE(pos);
    types.push(buf.toString('latin1', pos + 4, pos + 8));
    if (size < 8) break;
    pos += size;
  }
  return types;
}

function decodeFrames(input: Buffer | string): Buffer {
  const args = ['-v', 'error', '-i', typeof input === 'string' ? input : 'pipe:0', '-vf', 'scale=64:36', '-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1'];
  return execFileSync(ffmpegPath(), args, { input: typeof input === 'string' ? undefined : input, maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'ignore'] });
}

const plain = FIXTURE_CLIPS.filter((c) => !c.faststart && !c.corrupt);
const fast = FIXTURE_CLIPS.filter((c) => c.faststart && !c.corrupt);

describe('toFastStart', () => {
  it.each(plain.map((c) => [c.file]))('%s: moves moov before mdat and decodes from a pipe like the file itself', async (file) => {
    const data = await readFile(fixtureClipPath(file));
    const before = topLevel(data);
    expect(before.indexOf('moov')).toBeGreaterThan(before.indexOf('mdat'));
    const moved = toFastStart(data);
    const after = topLevel(moved);
    expect(after.indexOf('moov')).toBeLessThan(after.indexOf('mdat'));
    expect(moved.length).toBe(data.length);
    expect(decodeFrames(moved).equals(decodeFrames(fixtureClipPath(file)))).toBe(true);
  });

  it.each(fast.map((c) => [c.file]))('%s: already fast-start, returned as is', async (file) => {
    const data = await readFile(fixtureClipPath(file));
    expect(toFastStart(data)).toBe(data);
  });

  it('leaves non-ISO-BMFF data alone', () => {
    const webmLike = Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(isIsoBmff(webmLike)).toBe(false);
    expect(toFastStart(webmLike)).toBe(webmLike);
  });

  it('leaves a truncated mp4 alone rather than guessing', async () => {
    const data = await readFile(fixtureClipPath(plain[0]!.file));
    const cut = data.subarray(0, data.length - 100);
    expect(toFastStart(cut)).toBe(cut);
  });
});
