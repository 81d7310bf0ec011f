/**
 * `clipstream semdedup` on real feature shards: `extract` on the fixture shards, then semdedup
 * with a damaged shard among them (left out with a warning, the run goes on); the table equals
 * scikit-learn + numpy on the same shards (scripts/semdedup_reference.py); a bad option is one
 * line naming the flag, exit 2; a rerun does no cluster again.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/util/csv.js';
import { REPO, runCli } from '../helpers/run-cli.js';

const PYTHON = '/usr/bin/python3';
const hasSklearn = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn, msgpack_numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'semdedup-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('clipstream semdedup', () => {
  it('a bad option is one line naming the flag', () => {
    const r = runCli(['semdedup', '--features=x.msgpack', `--out_dir=${join(dir, 'bad')}`, '--keep=middle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--keep');
  });

  it.skipIf(!hasSklearn)(
    "on extract's feature shards of the fixtures, with a damaged shard, equals the reference",
    async () => {
      const feats = join(dir, 'feats');
      const ex = runCli(['extract', '--tar_path=fixtures/shards/shard-{000000..000001}.tar', `--out_path=${feats}`, '--quiet']);
      expect(ex.code, ex.stderr).toBe(0);
      await writeFile(join(feats, 'shard-000002.msgpack'), Buffer.from('not msgpack at all'));
      const out = join(dir, 'out');
      const args = ['semdedup', `--features=${feats}/shard-{000000..000002}.msgpack`, `--out_dir=${out}`, '--clusters=2', '--eps=0.02', '--quiet'];
      const r = runCli(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('skipped feature shard');
      expect(r.stderr).toContain('shard-000002.msgpack');
      const rows = parseCsv(await readFile(join(out, 'semdedup.csv'), 'utf8'));
      expect(rows).toHaveLength(9);
      const json = join(out, 'reference.json');
      execFileSync(PYTHON, [
        join(REPO, 'scripts/semdedup_reference.py'),
        '--init',
        join(out, '.semdedup/init_centroids.npy'),
        '--spill',
        join(out, '.semdedup/embeddings.f16'),
        '--eps',
        '0.02',
        '--out',
        json,
        join(feats, 'shard-000000.msgpack'),
        join(feats, 'shard-000001.msgpack'),
        join(feats, 'shard-000002.msgpack'),
      ]);
      const ref = JSON.parse(await readFile(json, 'utf8')) as {
        spill_equal: boolean;
        rows: { clip_id: string; cluster: number; kept: boolean; duplicate_of: string; max_similarity: number | null }[];
      };
      expect(ref.spill_equal).toBe(true);
      expect(rows.map((x) => [x.clip_id, Number(x.cluster), x.kept === 'true', x.duplicate_of])).toEqual(
        ref.rows.map((x) => [x.clip_id, x.cluster, x.kept, x.duplicate_of]),
      );
      for (let i = 0; i < rows.length; i++) {
        const want = ref.rows[i]!.max_similarity;
        if (want !== null) expect(Math.abs(Number(rows[i]!.max_similarity) - want)).toBeLessThan(1e-5);
      }
      const keep = (await readFile(join(out, 'keep_list.txt'), 'utf8')).split('\n').filter(Boolean);
      expect(keep).toEqual(rows.filter((x) => x.kept === 'true').map((x) => x.clip_id));

      const again = runCli(args);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('0 cluster(s) done, 2 skipped');
    },
    180_000,
  );
});
