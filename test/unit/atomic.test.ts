import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempPathFor, withAtomicFile, writeFileAtomic } from '../../src/util/atomic.js';
import { removeDeadTemps } from '../../src/util/lock.js';

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
