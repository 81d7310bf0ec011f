import { beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdtemp, readFile, readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_CLIPS, FIXTURE_SHARD_PATTERN, FIXTURE_SHARDS, FIXTURE_SHARD_JSONS } from '../../fixtures/index.js';
import { extract, type ExtractReport } from '../../src/jobs/extract.js';
import { readModelInfo } from '../../src/models/info.js';
import { completedKeys, readFeatureShard } from '../../src/sinks/feature-shard.js';
import { liveChildProcesses } from '../../src/media/process.js';
import type { ClipstreamError } from '../../src/errors.js';
import type { FeatureRecord } from '../../src/types.js';
import { startCli } from '../helpers/run-cli.js';

const quiet = () => {};
const tmp = (name: string) => mkdtemp(join(tmpdir(), `clipstream-${name}-`));
const PY = '/usr/bin/python3';
const pythonHasMsgpack = spawnSync(PY, ['-c', 'import msgpack, msgpack_numpy, numpy'], { stdio: 'ignore' }).status === 0;

let refDir: string;
let report: ExtractReport;
let records: FeatureRecord[][];

beforeAll(async () => {
  refDir = await tmp('ref');
  report = await extract({ tarPath: FIXTURE_SHARD_PATTERN, outputDir: refDir, onWarning: quiet });
  records = [await readFeatureShard(join(refDir, 'shard-000000.msgpack')), await readFeatureShard(join(refDir, 'shard-000001.msgpack'))];
}, 120_000);

describe('extract on the fixture shards', () => {
  it('writes one record per decodable clip, in tar order, joined to shard json', () => {
    for (const shard of [0, 1]) {
      const expected = FIXTURE_CLIPS.filter((c) => c.shard === shard && !c.corrupt && !c.tooShort);
      expect(records[shard]!.map((r) => r.filename)).toEqual(expected.map((c) => c.file));
      for (const r of records[shard]!) {
        const clip = expected.find((c) => c.file === r.filename)!;
        expect(r.id).toBe(clip.id);
        expect(r.segment[0]).toBe(clip.start);
        expect(r.segment[1]).toBeCloseTo(clip.start + clip.duration, 1);
      }
    }
  });

  it("labels features with the models' own metadata and layer sizes read from the models", async () => {
    const visual = await readModelInfo(report.visual!.model);
    const audio = await readModelInfo(report.audio!.model);
    for (const r of records.flat()) {
      expect(r.visual_features).toHaveLength(1);
      const v = r.visual_features[0]!;
      expect(v.extractor_name).toBe(visual.metadata.extractor_name);
      expect(v.dataset).toBe('none (seeded weights)');
      expect(Object.keys(v.feat_array)).toEqual(['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4']);
      for (const [layer, t] of Object.entries(v.feat_array)) {
        expect(t.shape).toEqual([visual.layerSizes[layer]]);
        expect(t.data.every(Number.isFinite)).toBe(true);
      }
      const clip = FIXTURE_CLIPS.find((c) => c.file === r.filename)!;
      if (!clip.hasAudio) {
        expect(r.audio_features).toEqual([]);
      } else {
        expect(r.audio_features[0]!.extractor_name).toBe(audio.metadata.extractor_name);
        for (const [layer, t] of Object.entries(r.audio_features[0]!.feat_array)) expect(t.shape).toEqual([audio.layerSizes[layer]]);
      }
    }
  });

  it('gives different clips different features', () => {
    const l4 = records.flat().map((r) => Array.from(r.visual_features[0]!.feat_array.layer_4!.data).join(','));
    expect(new Set(l4).size).toBe(l4.length);
  });

  it('reports the corrupt and the too-short clips with reasons, and writes the seed-004 log', async () => {
    expect(report.clipsWritten).toBe(9);
    expect(report.clipsFailed).toBe(1);
    expect(report.clipsSkipped).toBe(2);
    const s0 = report.shards[0]!;
    expect(s0.failed.map((f) => f.key)).toEqual(['corrupt_vid-D_60']);
    expect(s0.failed[0]!.reason).toMatch(/^decode: corrupt_vid-D_60: ffmpeg failed/);
    expect(s0.skipped.map((f) => f.reason)).toEqual(['decode: b-tiny_E_0: clip is 1.00 s long, shorter than the minimum 2.5 s']);
    const logName = (await readdir(refDir)).find((f) => /^log_.+_\d+_\d+\.json$/.test(f))!;
    const log = JSON.parse(await readFile(join(refDir, logName), 'utf8'));
    expect(Object.keys(log)).toEqual(expect.arrayContaining(['hostname', 'pid', 'timestamp', 'time', 'shards']));
    expect(log.shards).toEqual([...FIXTURE_SHARDS]);
    expect(log.finished).toBe(true);
    expect(log.shard_results.map((s: { written: number }) => s.written)).toEqual([4, 5]);
    expect(log.shard_results[1].skipped[0].key).toBe('short-clip_A_3');
  });

  it.skipIf(!pythonHasMsgpack)('is readable from Python with msgpack + msgpack_numpy as numpy float32 arrays', async () => {
    const script = `
import sys, json, msgpack, msgpack_numpy, numpy as np
with open(sys.argv[1], 'rb') as f:
    recs = msgpack.unpackb(f.read(), object_hook=msgpack_numpy.decode)
out = []
for r in recs:
    v = r['visual_features'][0]
    a = r['audio_features']
    arrs = list(v['feat_array'].values()) + ([x for x in a[0]['feat_array'].values()] if a else [])
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in arrs)
    out.append({'filename': r['filename'], 'segment': r['segment'], 'name': v['extractor_name'],
                'shapes': [list(x.shape) for x in v['feat_array'].values()], 'sum4': float(v['feat_array']['layer_4'].astype(np.float64).sum()),
                'audio': len(a)})
print(json.dumps(out))
`;
    const py = JSON.parse(execFileSync(PY, ['-c', script, join(refDir, 'shard-000001.msgpack')]).toString());
    expect(py.map((p: { filename: string }) => p.filename)).toEqual(records[1]!.map((r) => r.filename));
    py.forEach((p: { shapes: number[][]; sum4: number; audio: number; name: string }, i: number) => {
      const r = records[1]![i]!;
      expect(p.name).toBe(r.visual_features[0]!.extractor_name);
      expect(p.shapes).toEqual(Object.values(r.visual_features[0]!.feat_array).map((t) => t.shape));
      expect(p.sum4).toBeCloseTo(
        Array.from(r.visual_features[0]!.feat_array.layer_4!.data).reduce((a, b) => a + b, 0),
        4,
      );
      expect(p.audio).toBe(r.audio_features.length);
    });
  });
  it.skipIf(pythonHasMsgpack)(
    'Python check skipped: /usr/bin/python3 lacks msgpack/msgpack_numpy (apt-get install python3-msgpack python3-msgpack-numpy)',
    () => {},
  );
});

describe('extract: skipping, overwriting, formats', () => {
  it('skips shards whose output exists, and --overwrite recomputes the same bytes', async () => {
    const dir = await tmp('skip');
    await extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: dir, onWarning: quiet });
    const out = join(dir, 'shard-000000.msgpack');
    const first = await stat(out);
    const again = await extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: dir, onWarning: quiet });
    expect(again.shards[0]!.status).toBe('skipped (output exists)');
    expect((await stat(out)).mtimeMs).toBe(first.mtimeMs);
    const over = await extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: dir, overwrite: true, onWarning: quiet });
    expect(over.shards[0]!.status).toBe('written');
    expect((await readFile(out)).equals(await readFile(join(refDir, 'shard-000000.msgpack')))).toBe(true);
  });

  it('writes JSON that reads back to the same records as msgpack', async () => {
    const dir = await tmp('json');
    await extract({ tarPath: FIXTURE_SHARDS[1]!, outputDir: dir, format: 'json', onWarning: quiet });
    const json = await readFeatureShard(join(dir, 'shard-000001.json'));
    expect(json.map((r) => r.filename)).toEqual(records[1]!.map((r) => r.filename));
    json.forEach((r, i) => {
      const m = records[1]![i]!;
      expect(Array.from(r.visual_features[0]!.feat_array.layer_2!.data)).toEqual(Array.from(m.visual_features[0]!.feat_array.layer_2!.data));
    });
  });

  it('a missing shard is a warning; the others are still written', async () => {
    const dir = await tmp('missing');
    const warnings: ClipstreamError[] = [];
    const r = await extract({ tarPath: join(FIXTURE_SHARDS[0]!, '..', 'shard-{000001..000002}.tar'), outputDir: dir, onWarning: (w) => warnings.push(w) });
    expect(r.shards.map((s) => s.status)).toEqual(['written', 'missing']);
    expect(warnings.some((w) => w.message.includes('shard-000002.tar'))).toBe(true);
  });

  it('a truncated tar yields the clips before the damage and a clear error; the next shard is complete', async () => {
    const dir = await tmp('trunc');
    const src = join(dir, 'src');
    await mkdir(src);
    const whole = await readFile(FIXTURE_SHARDS[0]!);
    await writeFile(join(src, 'shard-000000.tar'), whole.subarray(0, Math.floor(whole.length * 0.55)));
    await copyFile(FIXTURE_SHARD_JSONS[0]!, join(src, 'shard-000000.json'));
    await copyFile(FIXTURE_SHARDS[1]!, join(src, 'shard-000001.tar'));
    await copyFile(FIXTURE_SHARD_JSONS[1]!, join(src, 'shard-000001.json'));
    const r = await extract({ tarPath: join(src, 'shard-{000000..000001}.tar'), outputDir: join(dir, 'out'), onWarning: quiet });
    expect(r.shards[0]!.tarError).toMatch(/shard-000000\.tar/);
    const got = await readFeatureShard(join(dir, 'out', 'shard-000000.msgpack'));
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(records[0]!.length);
    expect(got.map((x) => x.filename)).toEqual(records[0]!.slice(0, got.length).map((x) => x.filename));
    expect((await readFile(join(dir, 'out', 'shard-000001.msgpack'))).equals(await readFile(join(refDir, 'shard-000001.msgpack')))).toBe(true);
  });

  it('rejects bad options with messages naming them', async () => {
    await expect(extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: await tmp('bad'), batchSize: 0 })).rejects.toThrow(
      'Expected integer between 1 and 1024 for options.batchSize but received 0 of type number',
    );
    await expect(extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: await tmp('bad'), format: 'xml' as 'json' })).rejects.toThrow(
      "Expected one of 'msgpack', 'json' for options.format but received 'xml' of type string",
    );
    await expect(extract({ tarPath: FIXTURE_SHARDS[0]!, outputDir: await tmp('bad'), visualModel: 'vggish_small.onnx', onWarning: quiet })).rejects.toThrow(
      /expected a visual model but its metadata says 'audio'/,
    );
  });
});

describe('extract: interruption', () => {
  it('an aborted run leaves no ffmpeg behind and the next run completes the same shards', async () => {
    const dir = await tmp('abort');
    const controller = new AbortController();
    let clips = 0;
    const run = extract({
      tarPath: FIXTURE_SHARD_PATTERN,
      outputDir: dir,
      onWarning: quiet,
      signal: controller.signal,
      onProgress: (p) => {
        clips = p.clipsDone;
        if (clips >= 2) controller.abort();
      },
    });
    await expect(run).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(liveChildProcesses()).toBe(0);
    await extract({ tarPath: FIXTURE_SHARD_PATTERN, outputDir: dir, onWarning: quiet });
    for (const name of ['shard-000000.msgpack', 'shard-000001.msgpack']) {
      expect((await readFile(join(dir, name))).equals(await readFile(join(refDir, name)))).toBe(true);
    }
  });

  const exists = (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  it.each([
    ['during start-up', async () => false],
    ['after the first clip is journalled', async (dir: string) => (await completedKeys(dir, 'shard-000000')).size >= 1],
    ['right after the first shard is final', async (dir: string) => exists(join(dir, 'shard-000000.msgpack'))],
    ['in the middle of the second shard', async (dir: string) => (await completedKeys(dir, 'shard-000001')).size >= 2],
  ])('a CLI run killed with SIGKILL %s resumes to byte-identical shards without redoing journalled clips', async (_when, ready) => {
    const dir = await tmp('kill');
    const child = startCli(['extract', `--tar_path=${FIXTURE_SHARD_PATTERN}`, `--out_path=${dir}`, '--quiet', '--device=cpu', '--batch_size=1']);
    const exited = new Promise((r) => child.on('close', r));
    const deadline = Date.now() + (_when === 'during start-up' ? 300 : 60_000);
    while (Date.now() < deadline && !(await ready(dir))) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await exited;
    const before = new Map<string, number>();
    for (const name of ['shard-000000', 'shard-000001']) {
      before.set(name, (await exists(join(dir, `${name}.msgpack`))) ? -1 : (await completedKeys(dir, name)).size);
    }
    const resumed = await extract({ tarPath: FIXTURE_SHARD_PATTERN, outputDir: dir, onWarning: quiet, device: 'cpu' });
    for (const name of ['shard-000000.msgpack', 'shard-000001.msgpack']) {
      expect((await readFile(join(dir, name))).equals(await readFile(join(refDir, name)))).toBe(true);
    }
    for (const s of resumed.shards) {
      const done = before.get(s.shard)!;
      if (done === -1) expect(s.status).toBe('skipped (output exists)');
      else expect(s.resumed).toBe(done); // every journalled clip was taken over, none recomputed
    }
    const leftovers = (await readdir(dir)).filter((f) => f.includes('.tmp-') || f.endsWith('.journal'));
    expect(leftovers).toEqual([]);
  });
});
