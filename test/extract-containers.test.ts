/**
 * Extract on the containers the web serves, end to end through a real tar with its json beside:
 * an MPEG-TS and a GIF member are matched to their json entries (segment from the json, shard
 * complete), and fragmented MP4 gives the same record as the plain file.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClipstreamError } from '../src/errors.js';
import { extract } from '../src/jobs/extract.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { readFeatureShard } from '../src/sinks/feature-shard.js';
import { makeTar, withTmpDir } from './helpers/tar.js';

function ffmpeg(args: string[]): void {
  execFileSync(ffmpegPath(), ['-v', 'error', '-y', ...args]);
}

describe('tar members of every video container extract decodes', () => {
  it('a .ts and a .gif member are joined to their json entries; the shard is complete', async () => {
    await withTmpDir(async (dir) => {
      const ts = join(dir, 'x.ts');
      const gif = join(dir, 'y.gif');
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=s=160x120:r=25:d=3',
        '-f',
        'lavfi',
        '-i',
        'sine=f=440:d=3',
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        ts,
      ]);
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=10:d=3', gif]);
      const tar = join(dir, 'shard-000000.tar');
      await makeTar(tar, [
        { name: 'x.ts', data: await readFile(ts) },
        { name: 'y.gif', data: await readFile(gif) },
      ]);
      await writeFile(
        join(dir, 'shard-000000.json'),
        JSON.stringify([
          { filename: 'x.ts', id: 'ts-id', segment: [0, 3.0] },
          { filename: 'y.gif', id: 'gif-id', segment: [7, 10.0] },
        ]),
      );
      const warnings: ClipstreamError[] = [];
      const out = join(dir, 'out');
      const report = await extract({ tarPath: tar, outPath: out, numWorkers: 1, intraOpThreads: 1, onWarning: (w) => warnings.push(w) });
      expect(warnings.map((w) => w.message)).toEqual([]);
      expect(report.shards[0]!.status).toBe('written');
      expect(report.clipsWritten).toBe(2);
      const records = await readFeatureShard(join(out, 'shard-000000.msgpack'));
      expect(records.map((r) => [r.filename, r.id, r.segment])).toEqual([
        ['x.ts', 'ts-id', [0, 3.0]],
        ['y.gif', 'gif-id', [7, 10.0]],
      ]);
      expect(records[0]!.visual_features).toHaveLength(1);
      expect(records[0]!.audio_features).toHaveLength(1);
      expect(records[1]!.visual_features).toHaveLength(1);
      expect((await readdir(out)).filter((f) => f.includes('incomplete'))).toEqual([]);
      expect(existsSync(join(out, 'shard-000000.msgpack'))).toBe(true);
    });
  }, 120_000);
});
