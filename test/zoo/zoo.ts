/**
 * The media zoo: awkward real-world media classes with independently known truth, for every
 * job's tests. Files are generated once per machine into a cache folder keyed by a hash of the
 * generator's source (so a changed recipe regenerates), built in a scratch folder and renamed
 * into place (a reader never sees half a zoo), with a lock so concurrent workers build it once.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Recipe, recipes } from './recipes.js';
import { pidAlive } from '../../src/util/pid.js';

export interface ZooTruth {
  frames?: number;
  width?: number;
  /** width/height as displayed, after rotation; codedWidth/codedHeight as stored. */
  height?: number;
  codedWidth?: number;
  codedHeight?: number;
  /** Clockwise turn a player applies for display (the old `rotate` tag; ffprobe's side data says minus this). */
  rotation?: 0 | 90 | 180 | 270;
  /** Nominal frame rate, CFR only. */
  fps?: number;
  vfr?: boolean;
  /** VFR only: every frame's presentation time, s from the first frame. */
  frameTimes?: number[];
  audioChannels?: number;
  audioRate?: number;
  /** s, audio start minus first video frame time. */
  audioStart?: number;
  /** Decoded audio length, s. */
  audioDuration?: number;
  /** Video frame indices (in decode output order) that are white. */
  flashes?: number[];
  /** Onsets of the 1 kHz beeps, s from the first video frame (from the audio start when there is no video). */
  beeps?: number[];
  /** Video length (first frame to end of last), s; audio length for audio-only entries. */
  duration?: number;
  /** Mean RGB of the first decoded frame (±3 after lossy coding). */
  firstFrameColor?: [number, number, number];
  /** Display indices of the keyframes, where the recipe fixes them. */
  keyframes?: number[];
  /** Why a tool must refuse it. */
  bad?: string;
}

export interface ZooEntry {
  name: string;
  path: string;
  tags: string[];
  truth: ZooTruth;
}

/** Bump to force a regeneration even where the source hash would not change. */
const GENERATOR_VERSION = 1;
const SOURCES = ['zoo.ts', 'recipes.ts', 'pattern.ts', 'mp4-edit.ts'];
const LOCK_STALE_MS = 5 * 60_000;

let ready: Promise<ZooEntry[]> | undefined;

/** All zoo entries, generating the files first when this machine has none yet. */
export function zooEntries(): Promise<ZooEntry[]> {
  ready ??= ensureZoo().catch((err) => {
    ready = undefined;
    throw err;
  });
  return ready;
}

/** The absolute path of one entry's file. */
export async function zooFile(name: string): Promise<string> {
  const entry = (await zooEntries()).find((e) => e.name === name);
  if (!entry) throw new Error(`zoo: no entry named ${name}`);
  return entry.path;
}

/** The cache folder for this generator version. */
export async function zooDir(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of SOURCES) hash.update(await readFile(fileURLToPath(new URL(f, import.meta.url))));
  return join(tmpdir(), `clipstream-zoo-v${GENERATOR_VERSION}-${hash.digest('hex').slice(0, 10)}`);
}

const MANIFEST = 'manifest.json';

async function ensureZoo(): Promise<ZooEntry[]> {
  return zooSet(await zooDir(), recipes);
}

/**
 * The entries of `list`'s recipes in `dir`, generating them first (once, under a lock) when
 * `dir` has no finished set: the generated zoo builds its samples through this too.
 */
export async function zooSet(dir: string, list: () => Recipe[]): Promise<ZooEntry[]> {
  for (;;) {
    const done = await readManifest(dir);
    if (done) return done;
    const lock = `${dir}.lock`;
    if (await takeLock(lock)) {
      try {
        if (!(await readManifest(dir))) await generate(dir, list());
      } finally {
        await rm(lock, { recursive: true, force: true });
      }
    } else {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function readManifest(dir: string): Promise<ZooEntry[] | null> {
  try {
    const list = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Array<Omit<ZooEntry, 'path'>>;
    return list.map((e) => ({ ...e, path: join(dir, e.name) }));
  } catch {
    return null;
  }
}

/** mkdir is atomic: whoever creates the lock folder builds; a lock left by a dead process is broken. */
async function takeLock(lock: string): Promise<boolean> {
  try {
    await mkdir(lock);
    await writeFile(join(lock, 'pid'), String(process.pid));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let owner = NaN;
  try {
    owner = Number(await readFile(join(lock, 'pid'), 'utf8'));
  } catch {
    // just created, pid not written yet
  }
  const age = await stat(lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  if (age > LOCK_STALE_MS || (owner && owner !== process.pid && !pidAlive(owner))) await rm(lock, { recursive: true, force: true });
  return false;
}

async function generate(dir: string, list: Recipe[]): Promise<void> {
  const scratch = `${dir}.tmp-${process.pid}`;
  // Scratch folders of builders that died (killed test runs) would stay in the temp folder forever.
  const base = basename(dir);
  for (const name of await readdir(dirname(dir))) {
    const pid = name.startsWith(`${base}.tmp-`) ? Number(name.slice(base.length + 5)) : NaN;
    if (pid === process.pid || (pid > 0 && !pidAlive(pid))) await rm(join(dirname(dir), name), { recursive: true, force: true });
  }
  const work = join(scratch, '.work');
  await mkdir(work, { recursive: true });
  const names = new Set<string>();
  for (const r of list) {
    if (names.has(r.name)) throw new Error(`zoo: two recipes named ${r.name}`);
    names.add(r.name);
  }
  // Two at a time: the machine has two cores and each ffmpeg here is short.
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const r = list[next++]!;
      await r.make(join(scratch, r.name), work);
    }
  };
  try {
    await Promise.all([worker(), worker()]);
    await rm(work, { recursive: true, force: true });
    await writeFile(
      join(scratch, MANIFEST),
      JSON.stringify(
        list.map(({ name, tags, truth }) => ({ name, tags, truth })),
        null,
        1,
      ),
    );
    await rename(scratch, dir);
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}
