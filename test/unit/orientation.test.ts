/**
 * Defect 9: extract turns an mp4/mov with a display matrix after the RGB conversion, with the
 * filters ffmpeg's own autorotation would insert. The matrix is read from the file's boxes
 * (mp4DisplayMatrix) and checked here against ffprobe's reading of the same files.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { orientFilters, resolveDecodeOptions } from '../../src/media/decode.js';
import { ffprobePath } from '../../src/media/ffmpeg-path.js';
import { mp4DisplayMatrix } from '../../src/media/mp4.js';
import { setMp4Rotation } from '../zoo/mp4-edit.js';

const ffmpeg = resolveDecodeOptions().ffmpeg;

async function rotated(
  dir: string,
  rotate: 0 | 90 | 180 | 270,
  ext: 'mp4' | 'mov',
  where: 'tkhd' | 'mvhd' = 'tkhd',
): Promise<{ data: Buffer; probed: number }> {
  const out = join(dir, `r${rotate}-${where}.${ext}`);
  execFileSync(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=5', '-t', '0.4', '-c:v', 'mpeg4', out]);
  if (rotate !== 0) await setMp4Rotation(out, rotate, { width: 64, height: 48 });
  if (where === 'mvhd') {
    // The same turn on the movie header instead: ffmpeg multiplies the track's matrix by it.
    const buf = await readFile(out);
    const tkhd = buf.indexOf('tkhd', 0, 'latin1') + 4;
    const mvhd = buf.indexOf('mvhd', 0, 'latin1') + 4;
    const [t, m] = [tkhd + (buf[tkhd] === 1 ? 52 : 40), mvhd + (buf[mvhd] === 1 ? 48 : 36)];
    buf.copy(buf, m, t, t + 36);
    [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000].forEach((v, i) => buf.writeInt32BE(v, t + 4 * i));
    await writeFile(out, buf);
  }
  const probe = JSON.parse(execFileSync(ffprobePath(), ['-v', 'error', '-print_format', 'json', '-show_streams', out], { encoding: 'utf8' })) as {
    streams: Array<{ side_data_list?: Array<{ rotation?: number }> }>;
  };
  // ffprobe's rotation is counter-clockwise (-90: a quarter turn clockwise); none without a matrix.
  const probed = probe.streams[0]?.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? 0;
  return { data: await readFile(out), probed };
}

describe('display matrix and the turn after the RGB conversion', () => {
  const expected: Record<number, string[]> = { 90: ['transpose=clock'], 180: ['hflip', 'vflip'], 270: ['transpose=cclock'] };
  for (const ext of ['mp4', 'mov'] as const)
    it(`${ext}: the matrix ffprobe reads gives the turn a player shows (0, 90, 180, 270 clockwise; on the track or the movie header)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'clipstream-orient-'));
      for (const [rotate, where] of [
        [0, 'tkhd'],
        [90, 'tkhd'],
        [180, 'tkhd'],
        [270, 'tkhd'],
        [90, 'mvhd'],
        [270, 'mvhd'],
      ] as const) {
        const { data, probed } = await rotated(dir, rotate, ext, where);
        expect((((-probed % 360) + 360) % 360) as number).toBe(rotate);
        const m = mp4DisplayMatrix(data);
        if (rotate === 0) expect(m).toBeNull();
        else expect(orientFilters(m!)).toEqual(expected[rotate]);
      }
    });

  it('mirrored and odd-angle matrices: the flips ffmpeg inserts, or null (autorotation stays on) for an angle it interpolates', () => {
    const one = 0x10000;
    const w = 1 << 30;
    expect(orientFilters([0, one, 0, one, 0, 0, 0, 0, w])).toEqual(['transpose=cclock_flip']);
    expect(orientFilters([0, -one, 0, -one, 0, 0, 0, 0, w])).toEqual(['transpose=clock_flip']);
    expect(orientFilters([one, 0, 0, 0, -one, 0, 0, 0, w])).toEqual(['vflip']);
    expect(orientFilters([-one, 0, 0, 0, one, 0, 0, 0, w])).toEqual(['hflip']);
    const c = Math.round(Math.cos(Math.PI / 6) * one);
    const s = Math.round(Math.sin(Math.PI / 6) * one);
    expect(orientFilters([c, s, 0, -s, c, 0, 0, 0, w])).toBeNull();
  });

  it('not ISO-BMFF, or cut short: no matrix (ffmpeg decides as before)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-orient-'));
    const { data } = await rotated(dir, 90, 'mp4');
    expect(mp4DisplayMatrix(Buffer.from('not a video at all'))).toBeNull();
    expect(mp4DisplayMatrix(data.subarray(0, 40))).toBeNull();
  });
});
