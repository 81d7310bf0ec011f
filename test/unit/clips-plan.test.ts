import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipStem, fixedParts, fixedStride, parseSekaiName, parseSpanTable, planSpans } from '../../src/clips/plan.js';
import { readSources } from '../../src/clips/sources.js';
import { contentTimes, gapsOf, type IndexedBreak } from '../../src/clips/timeline.js';
import { formatCsv, parseCsv } from '../../src/util/csv.js';

describe('parseSekaiName', () => {
  it.each([
    ['abc_0_100', { videoId: 'abc', start: 0, end: 100 }],
    // YouTube ids contain '_' and '-': split from the right.
    ['_-5p_Ld_000120_000360.mp4', { videoId: '_-5p_Ld', start: 120, end: 360 }],
    ['a_b_c_7_9', { videoId: 'a_b_c', start: 7, end: 9 }],
  ])('%s', (name, want) => {
    expect(parseSekaiName(name)).toEqual({ ...want, unit: 'frame' });
  });
  it.each(['abc_1', 'abc_x_2', '_1_2', 'abc'])('rejects %s', (name) => {
    expect(parseSekaiName(name)).toBeNull();
  });
});

describe('parseSpanTable', () => {
  it('sorts start frames numerically, not as strings as Sekai does', () => {
    const spans = parseSpanTable('videoFile,caption\nv_1_1000_1100,x\nv_1_200_300,y\nv_1_30_90,z\nw_5_10,q\n', 'spans.csv');
    expect(spans.get('v_1')!.map((s) => s.start)).toEqual([30, 200, 1000]);
    expect(spans.get('w')).toEqual([{ videoId: 'w', start: 5, end: 10, unit: 'frame' }]);
  });
  it('reads explicit frame and second columns, CSV and TSV', () => {
    expect(parseSpanTable('video_id,start_frame,end_frame\na,10,20\n', 'x.csv').get('a')).toEqual([{ videoId: 'a', start: 10, end: 20, unit: 'frame' }]);
    expect(parseSpanTable('video_id\tstart_s\tend_s\na\t1.5\t3\n', 'x.tsv').get('a')).toEqual([{ videoId: 'a', start: 1.5, end: 3, unit: 'second' }]);
  });
  it('names the file, line and value that are wrong', () => {
    expect(() => parseSpanTable('clip_id\nabc_1_2\nbroken\n', 'spans.csv')).toThrow(
      "spans.csv, line 3: 'broken' in column clip_id is not <video_id>_<start_frame>_<end_frame>",
    );
    expect(() => parseSpanTable('video_id,start_frame,end_frame\na,1.5,3\n', 's.csv')).toThrow(
      "s.csv, line 2: frame numbers must be integers but are '1.5'/'3'",
    );
    expect(() => parseSpanTable('foo,bar\n1,2\n', 's.csv')).toThrow(/^s\.csv: no span columns found \(columns: foo, bar\)/);
  });
});

describe('planSpans', () => {
  const timing = { fps: 10, numFrames: 100 };
  it('converts seconds to frames and derives seconds from frames', () => {
    const { clips } = planSpans([{ videoId: 'a', start: 1.25, end: 3, unit: 'second' }], { fps: 8, numFrames: 80 });
    expect(clips).toEqual([{ videoId: 'a', clipId: 'a_10_24', stem: 'a_10_24', startFrame: 10, endFrame: 24, startS: 1.25, endS: 3 }]);
  });
  it('clips or drops spans past the end and reports them', () => {
    const specs = [
      { videoId: 'a', start: 90, end: 120, unit: 'frame' as const },
      { videoId: 'a', start: 100, end: 110, unit: 'frame' as const },
      { videoId: 'a', start: 50, end: 50, unit: 'frame' as const },
    ];
    const clipped = planSpans(specs, timing);
    expect(clipped.clips.map((c) => c.clipId)).toEqual(['a_90_100']);
    expect(clipped.issues).toEqual([
      { videoId: 'a', span: 'frames 90-120', action: 'clipped', reason: 'ends at frame 120, past the end of the video; cut to 100' },
      { videoId: 'a', span: 'frames 100-110', action: 'dropped', reason: 'starts at frame 100, past the end of the video (100 frames)' },
      { videoId: 'a', span: 'frames 50-50', action: 'dropped', reason: 'empty span (end 50 <= start 50 in frames)' },
    ]);
    const dropped = planSpans(specs, timing, 'drop');
    expect(dropped.clips).toEqual([]);
    expect(dropped.issues[0]).toMatchObject({ action: 'dropped', reason: 'ends at frame 120, past the end of the video (100 frames)' });
  });
});

describe('fixedStride (NeMo FixedStrideExtractorStage)', () => {
  it.each([
    [{ clipLenS: 4, clipStrideS: 4 }, ['v_0_40', 'v_40_80', 'v_80_95']],
    [{ clipLenS: 4, clipStrideS: 4, minClipLengthS: 2 }, ['v_0_40', 'v_40_80']],
    [{ clipLenS: 3, clipStrideS: 2, limitClips: 3 }, ['v_0_30', 'v_20_50', 'v_40_70']],
    [{ clipLenS: 2, clipStrideS: 5 }, ['v_0_20', 'v_50_70']],
  ])('%o', (opts, ids) => {
    const { clips } = fixedStride('v', { fps: 10, numFrames: 95 }, opts);
    expect(clips.map((c) => c.clipId)).toEqual(ids);
  });
  it('is deterministic at fractional frame rates', () => {
    const a = fixedStride('v', { fps: 30000 / 1001, numFrames: 1000 }, { clipLenS: 2, clipStrideS: 2 });
    const b = fixedStride('v', { fps: 30000 / 1001, numFrames: 1000 }, { clipLenS: 2, clipStrideS: 2 });
    expect(a).toEqual(b);
    expect(a.clips[1]).toMatchObject({ startFrame: 60, endFrame: 120, startS: 2.002 });
    // Consecutive clips tile the video: no frame lost or doubled at the joins.
    for (let i = 1; i < a.clips.length; i++) expect(a.clips[i]!.startFrame).toBe(a.clips[i - 1]!.endFrame);
  });
  it('validates options', () => {
    expect(() => fixedStride('v', { fps: 10, numFrames: 95 }, { clipLenS: 0, clipStrideS: 1 })).toThrow(/for options\.clipLenS but received 0 of type number/);
  });
});

it('fixedParts cuts parts of N minutes, the last one shorter', () => {
  expect(fixedParts('v', { fps: 10, numFrames: 1500 }, 1).clips.map((c) => c.clipId)).toEqual(['v_0_600', 'v_600_1200', 'v_1200_1500']);
});

it('clipStem keeps webdataset keys intact', () => {
  expect(clipStem('a.b/c_d', 0, 25)).toBe('a-b-c_d_0_25');
});

it('CSV round trip with quotes, commas and newlines', () => {
  const rows = [
    { a: 'x,y', b: 'say "hi"' },
    { a: 'multi\nline', b: '' },
  ];
  expect(parseCsv(formatCsv(['a', 'b'], rows))).toEqual(rows);
});

describe('readSources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clips-src-'));
    await mkdir(join(dir, 'vids'));
    await writeFile(join(dir, 'vids', 'b.mp4'), 'x');
    await writeFile(join(dir, 'vids', 'a.mkv'), 'x');
    await writeFile(join(dir, 'vids', 'notes.txt'), 'x');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads CSV with path, url and bare YouTube ids; paths are relative to the list', async () => {
    await writeFile(
      join(dir, 's.csv'),
      'video_id,path,url\nlocal,vids/b.mp4,\nweb,,http://127.0.0.1:1/v/x.mp4\ndQw4w9WgXcQ,,\n,,https://www.youtube.com/watch?v=abc_DEF\nlocal,vids/a.mkv,\n',
    );
    const dups: string[] = [];
    expect(await readSources(join(dir, 's.csv'), (id) => dups.push(id))).toEqual([
      { videoId: 'local', kind: 'path', location: join(dir, 'vids', 'b.mp4') },
      { videoId: 'web', kind: 'url', location: 'http://127.0.0.1:1/v/x.mp4' },
      { videoId: 'dQw4w9WgXcQ', kind: 'youtube', location: 'dQw4w9WgXcQ' },
      { videoId: 'abc_DEF', kind: 'youtube', location: 'https://www.youtube.com/watch?v=abc_DEF' },
    ]);
    expect(dups).toEqual(['local']);
  });
  it('reads TSV, JSONL and folders', async () => {
    await writeFile(join(dir, 's.tsv'), 'path\nvids/b.mp4\n');
    await writeFile(join(dir, 's.jsonl'), '{"video_id":"j","url":"http://h/a.webm"}\n\n{"path":"vids/a.mkv"}\n');
    expect(await readSources(join(dir, 's.tsv'))).toEqual([{ videoId: 'b', kind: 'path', location: join(dir, 'vids', 'b.mp4') }]);
    expect((await readSources(join(dir, 's.jsonl'))).map((s) => [s.videoId, s.kind])).toEqual([
      ['j', 'url'],
      ['a', 'path'],
    ]);
    expect((await readSources(join(dir, 'vids'))).map((s) => s.videoId)).toEqual(['a', 'b']);
  });
  it('refuses a video or a binary file given as the list, naming it (not a CSV parse error from inside the video)', async () => {
    const ts = join(dir, 'x.ts');
    await writeFile(ts, Buffer.from([0x47, 0x40, 0x11, 0x10, 0x00, 0x42, 0x22, 0x22]));
    await expect(readSources(ts)).rejects.toThrow(
      `${ts} is a video, not a list of sources: give a CSV/TSV (video_id,path or url), a JSONL list, or a folder of videos`,
    );
    const blob = join(dir, 'sources.csv.bak');
    await writeFile(blob, Buffer.from('video_id,path\n\u0000\u0001"x'));
    await expect(readSources(blob)).rejects.toThrow(`${blob} is a binary file, not a list of sources`);
  });
  it('gives videos that share a stem distinct ids: all of them keep their extension, others keep the bare stem', async () => {
    const d = join(dir, 'same');
    await mkdir(join(d, 'sub'), { recursive: true });
    for (const n of ['dup.mp4', 'dup.mkv', 'solo.mp4', 'a.b.mp4', 'a-b.webm', 'sub/dup.mp4']) await writeFile(join(d, n), 'x');
    const dups: string[] = [];
    // A folder: every file whose stem (or its file-name form) is shared gets its extension.
    expect((await readSources(d, (id) => dups.push(id))).map((s) => [s.videoId, s.location])).toEqual([
      ['a-b.webm', join(d, 'a-b.webm')],
      ['a.b.mp4', join(d, 'a.b.mp4')],
      ['dup.mkv', join(d, 'dup.mkv')],
      ['dup.mp4', join(d, 'dup.mp4')],
      ['solo', join(d, 'solo.mp4')],
    ]);
    // A list: same; the same name in two folders is told apart by a hash of its listed path;
    // an explicit video_id is never changed, and the same file listed twice is still a duplicate.
    await writeFile(join(d, 'list.csv'), 'video_id,path\n,dup.mp4\n,dup.mkv\n,sub/dup.mp4\nsolo,solo.mp4\n,solo.mp4\n,a.b.mp4\n,dup.mp4\n');
    const ids = (await readSources(join(d, 'list.csv'), (id) => dups.push(id))).map((s) => s.videoId);
    expect(ids).toHaveLength(5);
    expect(ids[0]).toMatch(/^dup\.mp4~[0-9a-f]{8}$/);
    expect(ids[1]).toBe('dup.mkv');
    expect(ids[2]).toMatch(/^dup\.mp4~[0-9a-f]{8}$/);
    expect(ids[0]).not.toBe(ids[2]);
    expect(ids.slice(3)).toEqual(['solo', 'a.b']);
    // Every id has its own file-name form, so no two videos write the same clip files.
    const forms = ids.map((i) => i.replace(/[^A-Za-z0-9_-]/g, '-'));
    expect(new Set(forms).size).toBe(ids.length);
    expect(dups).toEqual(['solo', ids[0]]);
    // The same list read again gives the same ids (the hash is of the path as listed, not of where the list lives).
    expect((await readSources(join(d, 'list.csv'))).map((s) => s.videoId)).toEqual(ids);
  });
  it('names the file and line of a bad row', async () => {
    await writeFile(join(dir, 'bad.jsonl'), '{"path":"a.mp4"}\n{oops\n');
    await expect(readSources(join(dir, 'bad.jsonl'))).rejects.toThrow(/bad\.jsonl, line 2: not JSON/);
    await writeFile(join(dir, 'bad.csv'), 'video_id,url\nx,ftp://h/a.mp4\n');
    await expect(readSources(join(dir, 'bad.csv'))).rejects.toThrow("bad.csv, line 2: url 'ftp://h/a.mp4' is neither http(s) nor YouTube");
  });
});

describe('plans on a timeline that restarts or jumps', () => {
  // 4 frames at 1.4 s..1.52 s, then the timestamps restart at 1.4 s (4 frames), then jump 30 s (2 frames).
  const raw = [1.4, 1.44, 1.48, 1.52, 1.4, 1.44, 1.48, 1.52, 31.52, 31.56];
  const breaks: IndexedBreak[] = [
    { kind: 'reset', index: 4, fromS: 1.52, toS: 1.4 },
    { kind: 'gap', index: 8, fromS: 1.52, toS: 31.52 },
  ];
  const { times, runs } = contentTimes(raw, breaks, 0.04);
  const timing = { fps: 25, numFrames: raw.length, times, runs };

  it('content time closes holes and appends restarts; each run knows its epoch and stored start', () => {
    expect([...times].map((t) => Math.round(t * 1e6) / 1e6)).toEqual([0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.32, 0.36, 0.4]);
    expect(runs.map((r) => [r.start, r.end, r.epoch, r.rawStartS, r.after?.kind])).toEqual([
      [0, 4, 0, 1.4, undefined],
      [4, 8, 1, 1.4, 'reset'],
      [8, 10, 1, 31.52, 'gap'],
    ]);
  });
  it('a span across breaks becomes one clip per run, reported as split', () => {
    const { clips, issues } = planSpans([{ videoId: 'v', start: 2, end: 9, unit: 'frame' }], timing);
    expect(clips.map((c) => [c.clipId, c.startS, c.endS])).toEqual([
      ['v_2_4', 0.08, 0.16],
      ['v_4_8', 0.16, 0.32],
      ['v_8_9', 0.32, 0.36],
    ]);
    expect(issues).toEqual([
      { videoId: 'v', span: 'frames 2-9', action: 'split', reason: expect.stringMatching(/restart at frame 4 .* and a 30 s timestamp gap at frame 8/) },
    ]);
  });
  it('fixed stride in content seconds; split parts shorter than the minimum are not made', () => {
    const { clips, issues } = fixedStride('v', timing, { clipLenS: 0.2, clipStrideS: 0.2, minClipLengthS: 0.06 });
    expect(clips.map((c) => c.clipId)).toEqual(['v_0_4', 'v_5_8', 'v_8_10']);
    expect(issues.map((i) => [i.span, i.action])).toEqual([
      ['0-0.2 s', 'split'],
      ['0.2-0.4 s', 'split'],
    ]);
    expect(issues[0]!.reason).toMatch(/split into frames 0-4, 4-5 \(1 part\(s\) shorter than 0.06 s not made\)$/);
    expect(issues[1]!.reason).toMatch(/split into frames 5-8, 8-10$/);
    const short = fixedStride('v', timing, { clipLenS: 0.2, clipStrideS: 0.2, minClipLengthS: 0.1 });
    expect(short.clips.map((c) => c.clipId)).toEqual(['v_0_4', 'v_5_8']);
    expect(short.issues[1]!.reason).toMatch(/1 part\(s\) shorter than 0.1 s not made/);
  });
  it('without breaks, plans are as before (gapsOf finds none in an even timeline)', () => {
    expect(gapsOf([0, 0.04, 0.08, 0.2], 0.04)).toEqual([]);
    expect(gapsOf([0, 0.04, 0.08, 0.5], 0.04)).toEqual([{ kind: 'gap', index: 3, fromS: 0.08, toS: 0.5 }]);
  });
});
