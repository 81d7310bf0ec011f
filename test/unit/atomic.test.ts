import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempPathFor, withAtomicFile, writeFileAtomic } from '../../src/util/atomic.js';
import { killOrphanWriters, removeDeadTemps } from '../../src/util/lock.js';

describe('atomic writes', () => {
  it('writes the whole file under its final name and leaves no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-atomic-'));
    await writeFileAtomic(join(dir, 'a.json'), '{"x":1}');
    expect(await readFile(join(dir, 'a.json'), 'utf8')).toBe('{"x":1}');
    expect(await readdir(dir)).toEqual(['a.json']);
  });

  it('removes temp files of dead processes only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-temps-'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const live = spawn('sleep', ['30']);
    try {
      const names = [
        `.shard-000000.msgpack.tmp-${dead}-0123abcd`,
        `.log_h_1_2.json.tmp-${dead}-89abcdef`,
        `.shard-000001.msgpack.tmp-${live.pid}-0123abcd`,
        `.shard-000002.msgpack.tmp-${process.pid}-0123abcd`,
        'shard-000000.msgpack',
        '.shard-000000.journal',
      ];
      for (const n of names) await writeFile(join(dir, n), 'x');
      expect(await removeDeadTemps(dir, 'shard-000000.msgpack')).toBe(1);
      expect(await removeDeadTemps(dir)).toBe(1);
      expect((await readdir(dir)).sort()).toEqual(names.slice(2).sort());
    } finally {
      live.kill();
    }
  });

  it.runIf(process.platform === 'linux')(
    'kills the orphaned writer of a dead run (kill -9 leaves ffmpeg running), so no temp file appears after the sweep',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'clipstream-orphans-'));
      const other = await mkdtemp(join(tmpdir(), 'clipstream-orphans-other-'));
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      // Writes its temp file only after a while, as an ffmpeg still probing its input would.
      const late = "setTimeout(() => require('fs').writeFileSync(process.argv[1], 'x'), 1500)";
      const orphan = spawn(process.execPath, ['-e', late, join(dir, `.c_000.mp4.tmp-${dead}-0123abcd`)]);
      const elsewhere = spawn(process.execPath, ['-e', late, join(other, `.c_000.mp4.tmp-${dead}-0123abcd`)]);
      const exits = [orphan, elsewhere].map((c) => new Promise<string | null>((r) => c.once('exit', (_code, signal) => r(signal))));
      try {
        await new Promise((r) => setTimeout(r, 300));
        expect(await removeDeadTemps(dir)).toBe(0);
        expect(await exits[0]).toBe('SIGKILL');
        expect(await exits[1]).toBe(null); // a writer in another folder is not this sweep's business
        expect(await readdir(dir)).toEqual([]);
        expect(await readdir(other)).toEqual([`.c_000.mp4.tmp-${dead}-0123abcd`]);
        // A writer whose run is alive (this one) is never killed.
        const own = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', join(dir, `.c_001.mp4.tmp-${process.pid}-0123abcd`)]);
        await new Promise((r) => setTimeout(r, 300));
        expect(await killOrphanWriters(dir)).toBe(0);
        expect(own.exitCode === null && own.signalCode === null).toBe(true);
        own.kill();
      } finally {
        orphan.kill();
        elsewhere.kill();
      }
    },
  );

  it('names temp files in the same folder, hidden, with the pid', () => {
    const t = tempPathFor('/x/y/shard-000000.msgpack');
    expect(t).toMatch(new RegExp(`^/x/y/\\.shard-000000\\.msgpack\\.tmp-${process.pid}-[0-9a-f]{8}$`));
  });
});

describe('withAtomicFile', () => {
  it('renames what the producer wrote, and leaves nothing when it fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-with-'));
    const final = join(dir, 'out.bin');
    const seen = await withAtomicFile(final, async (tmp) => {
      expect(tmp).not.toBe(final);
      await writeFile(tmp, 'whole');
      expect(await readdir(dir)).not.toContain('out.bin');
      return tmp;
    });
    expect(await readFile(final, 'utf8')).toBe('whole');
    expect(await readdir(dir)).toEqual(['out.bin']);
    expect(seen).toMatch(/\.out\.bin\.tmp-\d+-[0-9a-f]{8}$/);
    const failing = join(dir, 'fail.bin');
    await expect(
      withAtomicFile(failing, async (tmp) => {
        await writeFile(tmp, 'half');
        throw new Error('encoder died');
      }),
    ).rejects.toThrow('encoder died');
    expect(await readdir(dir)).toEqual(['out.bin']);
  });
});
