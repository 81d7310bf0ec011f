/**
 * The in-memory moov rewrite on hostile boxes (issue 9, item 14): no recursion, limits, and
 * when the rewrite cannot be done the clip still decodes (through a temp file ffmpeg can seek
 * in, removed afterwards); any error names the clip.
 */
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS, fixtureClipPath } from '../../fixtures/index.js';
import { decodeClip, resolveDecodeOptions } from '../../src/media/decode.js';
import { pipeLayout, predictFrameCount, toFastStart } from '../../src/media/mp4.js';

const plain = FIXTURE_CLIPS.find((c) => !c.faststart && !c.corrupt && !c.tooShort)!;

function box(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

/** Top-level boxes of an mp4: [type, start, size]. */
function top(buf: Buffer): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  for (let pos = 0; pos + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(pos);
    out.push([buf.toString('latin1', pos + 4, pos + 8), pos, size]);
    pos += size;
  }
  return out;
}

/** The clip with `extra` appended inside its moov (moov stays after mdat). */
function withInMoov(data: Buffer, extra: Buffer): Buffer {
  const [, start, size] = top(data).find(([t]) => t === 'moov')!;
  const moov = Buffer.concat([data.subarray(start, start + size), extra]);
  moov.writeUInt32BE(moov.length, 0);
  return Buffer.concat([data.subarray(0, start), moov, data.subarray(start + size)]);
}

/** `depth` trak boxes, each the only child of the one before. */
function nestedTraks(depth: number): Buffer {
  const out = Buffer.alloc(8 * depth);
  for (let i = 0; i < depth; i++) {
    out.writeUInt32BE(8 * (depth - i), i * 8);
    out.write('trak', i * 8 + 4, 'latin1');
  }
  return out;
}

const opts = resolveDecodeOptions({ audio: false });
const tempsNow = async () => (await readdir(tmpdir())).filter((f) => f.startsWith('clipstream-clip-')).length;

describe('toFastStart and decodeClip on hostile boxes', () => {
  it('100 000 nested trak boxes: no stack overflow, the clip still decodes, no temp file left', async () => {
    const data = await readFile(fixtureClipPath(plain.file));
    const hostile = withInMoov(data, nestedTraks(100_000));
    expect(() => toFastStart(hostile)).not.toThrow();
    expect(() => predictFrameCount(hostile, 10)).not.toThrow();
    expect(pipeLayout(hostile)).toEqual({ kind: 'needs-file', reason: 'its boxes nest deeper than 32 levels' });
    const before = await tempsNow();
    const ok = await decodeClip(await readFile(fixtureClipPath(plain.file)), opts, { key: 'plain' });
    const out = await decodeClip(hostile, opts, { key: 'nested' });
    expect(out.video!.decodedFrames).toBe(ok.video!.decodedFrames);
    expect(await tempsNow()).toBe(before);
  });

  it('an stco cut to its header: no range error, the clip still decodes (from a temp file)', async () => {
    const data = await readFile(fixtureClipPath(plain.file));
    const cut = withInMoov(data, box('trak', box('mdia', box('minf', box('stbl', box('stco', Buffer.alloc(0)))))));
    expect(() => toFastStart(cut)).not.toThrow();
    expect(pipeLayout(cut)).toEqual({ kind: 'needs-file', reason: 'its stco box is cut short (8 bytes)' });
    const ok = await decodeClip(data, opts, { key: 'plain' });
    const out = await decodeClip(cut, opts, { key: 'stco-cut' });
    expect(out.video!.decodedFrames).toBe(ok.video!.decodedFrames);
  });
});
