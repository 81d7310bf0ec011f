/**
 * Bench workload: a few distinct synthetic clips made with the bundled ffmpeg, then tar
 * shards of any size made by bundling copies of them under different keys (so 1000 clips
 * cost a dozen encodes). Everything lives under `.bench/` (gitignored) and is reused when
 * it already exists with the same parameters.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';

const run = promisify(execFile);

export interface ClipSpec {
  /** File name `{id}_{start}.mp4`. */
  file: string;
  width: number;
  height: number;
  fps: number;
  seconds: number;
  channels: 1 | 2;
}

export interface WorkloadSpec {
  /** Distinct clips encoded; larger sets repeat them under other keys. */
  distinct: number;
  /** Clip length in seconds. */
  seconds: number;
  /** Frame sizes, cycled through, e.g. `[[320, 240], [640, 360]]`. */
  sizes: Array<[number, number]>;
  /** Frame rates, cycled through. */
  rates: number[];
}

export const FULL_WORKLOAD: WorkloadSpec = {
  distinct: 12,
  seconds: 10,
  sizes: [
    [320, 240],
    [640, 360],
  ],
  rates: [25, 30],
};
export const QUICK_WORKLOAD: WorkloadSpec = {
  distinct: 4,
  seconds: 10,
  sizes: [
    [320, 240],
    [640, 360],
  ],
  rates: [25, 30],
};
export const SMOKE_WORKLOAD: WorkloadSpec = {
  distinct: 4,
  seconds: 3,
  sizes: [
    [96, 64],
    [128, 72],
  ],
  rates: [10, 12],
};

export function workloadTag(spec: WorkloadSpec): string {
  return `d${spec.distinct}-s${spec.seconds}-${spec.sizes.map(([w, h]) => `${w}x${h}`).join('_')}-r${spec.rates.join('_')}`;
}

export function clipSpecs(spec: WorkloadSpec): ClipSpec[] {
  return Array.from({ length: spec.distinct }, (_, i) => {
    const [width, height] = spec.sizes[i % spec.sizes.length]!;
    const fps = spec.rates[Math.floor(i / spec.sizes.length) % spec.rates.length]!;
    return {
      file: `clip${String(i).padStart(3, '0')}-${width}x${height}-${fps}fps_0.mp4`,
      width,
      height,
      fps,
      seconds: spec.seconds,
      channels: i % 2 === 0 ? 2 : 1,
    };
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Encodes the distinct clips (sequentially: the machine is small). Returns their paths. */
export async function makeClips(
  root: string,
  spec: WorkloadSpec,
  log: (s: string) => void = () => {},
): Promise<{ dir: string; clips: ClipSpec[]; paths: string[] }> {
  const dir = join(root, 'clips', workloadTag(spec));
  await mkdir(dir, { recursive: true });
  const clips = clipSpecs(spec);
  const paths: string[] = [];
  for (const [i, c] of clips.entries()) {
    const out = join(dir, c.file);
    paths.push(out);
    if (await exists(out)) continue;
    const freq = 220 + 110 * i;
    const pattern = i % 3 === 2 ? 'testsrc' : 'testsrc2';
    const tmp = `${out}.tmp.mp4`;
    await run(ffmpegPath(), [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `${pattern}=size=${c.width}x${c.height}:rate=${c.fps}:duration=${c.seconds}`,
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=${freq}:sample_rate=48000:duration=${c.seconds}`,
      '-map',
      '0:v',
      '-map',
      '1:a',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '28',
      '-pix_fmt',
      'yuv420p',
      '-g',
      String(c.fps * 2),
      '-c:a',
      'aac',
      '-b:a',
      '64k',
      '-ac',
      String(c.channels),
      '-movflags',
      '+faststart',
      tmp,
    ]);
    await rename(tmp, out);
    log(`  made ${c.file}`);
  }
  return { dir, clips, paths };
}

export interface ClipSet {
  /** Tar shards, in order. */
  shards: string[];
  /** Clip count. */
  clips: number;
  /** Distinct clip file (index into makeClips' paths) behind each clip, in order. */
  sources: number[];
}

/**
 * Tar shards holding `count` clips (`shardSize` per shard, the last one may be short), each a
 * copy of distinct clip `i % distinct` under its own key, plus the ACAV-style json next to each.
 * A pool of shards is shared by all sizes: a set of 200 clips is the first shards of the pool.
 */
export async function makeClipSet(root: string, spec: WorkloadSpec, count: number, shardSize: number): Promise<ClipSet> {
  const { clips, paths } = await makeClips(root, spec);
  const dir = join(root, 'shards', `${workloadTag(spec)}-per${shardSize}`);
  await mkdir(dir, { recursive: true });
  const bytes = await Promise.all(paths.map((p) => readFile(p)));
  const shards: string[] = [];
  const sources: number[] = [];
  const nShards = Math.ceil(count / shardSize);
  for (let s = 0; s < nShards; s++) {
    // Shard s always holds clips [s*shardSize, (s+1)*shardSize) of the pool; a short last shard gets its own name.
    const n = Math.min(shardSize, count - s * shardSize);
    const name = n === shardSize ? `shard-${String(s).padStart(6, '0')}` : `shard-${String(s).padStart(6, '0')}-n${n}`;
    const tarPath = join(dir, `${name}.tar`);
    const entries: Array<{ filename: string; id: string; segment: [number, number] }> = [];
    const members: Array<{ name: string; src: number }> = [];
    for (let j = 0; j < n; j++) {
      const g = s * shardSize + j;
      const src = g % clips.length;
      const id = `b${String(g).padStart(6, '0')}-${clips[src]!.file.replace(/_0\.mp4$/, '')}`;
      members.push({ name: `${id}_0.mp4`, src });
      entries.push({ filename: `${id}_0.mp4`, id, segment: [0, clips[src]!.seconds] });
      sources.push(src);
    }
    shards.push(tarPath);
    if (await exists(tarPath)) continue;
    const pack = tar.pack();
    const tmp = `${tarPath}.tmp`;
    const done = pipeline(pack, createWriteStream(tmp));
    for (const m of members) pack.entry({ name: m.name, mode: 0o644, mtime: new Date(0) }, bytes[m.src]!);
    pack.finalize();
    await done;
    await writeFile(join(dir, `${name}.json`), `[\n${entries.map((e) => `  ${JSON.stringify(e)}`).join(',\n')}\n]\n`);
    await rename(tmp, tarPath);
  }
  return { shards, clips: count, sources };
}
