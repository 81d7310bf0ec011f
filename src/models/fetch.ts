import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadFile, type DownloadOptions } from '../media/download.js';
import { ClipstreamError } from '../errors.js';
import { tempPathFor, writeFileAtomic } from '../util/atomic.js';
import { cachedModelPath, findModel, modelCacheDir, REGISTRY, type RegistryFile, type RegistryModel } from './registry.js';

/** What `models fetch` did for one file. */
export interface FetchedFile {
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  /** 'cached': already there and verified; 'downloaded'; 'copied' (from --from). */
  how: 'cached' | 'downloaded' | 'copied';
  /** True when the registry knows the full sha256 (else the one seen is recorded in fetched.json). */
  verified: boolean;
  resumed: number;
}

export interface FetchResult {
  model: RegistryModel;
  dir: string;
  onnx: string;
  files: FetchedFile[];
  built: boolean;
}

export interface FetchOptions extends Pick<DownloadOptions, 'retries' | 'retryDelayMs' | 'idleTimeoutMs' | 'signal'> {
  /** Take the files from this folder (copied by hand) instead of downloading. */
  from?: string;
  env?: NodeJS.ProcessEnv;
  /** Replaces the registry URLs' origin (tests serve the files from 127.0.0.1). */
  baseUrl?: string;
  /** Builds a checkpoint into ONNX; `models fetch` passes `models build`'s builder. */
  build?: (args: Record<string, unknown>) => Promise<unknown>;
  log?: (line: string) => void;
  /** Entries to look NAME up in (default: the built-in REGISTRY), e.g. a private mirror's models. */
  registry?: readonly RegistryModel[];
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

/** Checks a file against its registry entry; returns its sha256 or throws naming file, expected and found. */
async function verify(path: string, f: RegistryFile, model: string): Promise<string> {
  const size = (await sizeOf(path)) ?? 0;
  if (f.bytes !== null && size !== f.bytes) {
    throw new ClipstreamError('ERR_IO', `${model}: ${f.file} has ${size} bytes, expected ${f.bytes} (from ${f.url}); nothing was kept`, {
      where: { file: f.file },
    });
  }
  const sha = await sha256Of(path);
  if (f.sha256 && sha !== f.sha256) {
    throw new ClipstreamError('ERR_IO', `${model}: ${f.file}: sha256 mismatch: expected ${f.sha256}, found ${sha}; nothing was kept`, {
      where: { file: f.file },
    });
  }
  if (f.sha256Prefix && !sha.startsWith(f.sha256Prefix)) {
    throw new ClipstreamError(
      'ERR_IO',
      `${model}: ${f.file}: sha256 mismatch: expected one starting ${f.sha256Prefix} (its name says so), found ${sha}; nothing was kept`,
      { where: { file: f.file } },
    );
  }
  return sha;
}

type Record_ = Record<string, { bytes: number; sha256: string; url: string; fetched: string }>;

async function readRecord(dir: string): Promise<Record_> {
  try {
    return JSON.parse(await readFile(join(dir, 'fetched.json'), 'utf8')) as Record_;
  } catch {
    return {};
  }
}

async function fetchFile(model: RegistryModel, f: RegistryFile, dir: string, o: FetchOptions, record: Record_): Promise<FetchedFile> {
  const dest = join(dir, f.file);
  const verified = f.sha256 !== null;
  if ((await sizeOf(dest)) !== null) {
    // A finished file was verified when it arrived; check it again against what is known or recorded.
    const seen = record[f.file];
    const sha = await verify(dest, seen && !f.sha256 ? { ...f, sha256: seen.sha256 } : f, model.name);
    return { file: f.file, path: dest, bytes: (await sizeOf(dest))!, sha256: sha, how: 'cached', verified, resumed: 0 };
  }
  // Bytes arrive under a staging name (downloadFile resumes its `.part`); the final name appears only once verified.
  const staging = join(dir, `.${f.file}.download`);
  let how: FetchedFile['how'];
  let resumed = 0;
  if (o.from) {
    const src = join(o.from, f.file);
    if ((await sizeOf(src)) === null) {
      throw new ClipstreamError('ERR_IO', `${model.name}: --from=${o.from} has no ${f.file} (download it from ${f.url} and put it there)`, {
        where: { file: src },
      });
    }
    const tmp = tempPathFor(staging);
    await copyFile(src, tmp);
    await rename(tmp, staging);
    how = 'copied';
  } else {
    const url = o.baseUrl ? `${o.baseUrl.replace(/\/$/, '')}/${f.file}` : f.url;
    o.log?.(`downloading ${f.file} (${f.bytes === null ? 'size unknown' : `${(f.bytes / 1e6).toFixed(1)} MB`}) from ${url}`);
    const r = await downloadFile(url, staging, { ...o, maxBytes: f.bytes ?? undefined });
    resumed = r.resumed;
    how = 'downloaded';
  }
  let sha: string;
  try {
    sha = await verify(staging, f, model.name);
  } catch (err) {
    await rm(staging, { force: true });
    throw err;
  }
  await rename(staging, dest);
  return { file: f.file, path: dest, bytes: (await sizeOf(dest))!, sha256: sha, how, verified, resumed };
}

/**
 * `clipstream models fetch NAME`: downloads (resumably) or copies (`from`) every file of a
 * registry model into `$CLIPSTREAM_HOME/NAME/`, checks size and sha256 (a mismatch is an error
 * and the file is not kept), records the sha256 of files whose checksum is not published in
 * `fetched.json`, and builds checkpoints into ONNX, so the model is ready for the jobs.
 *
 * @example
 * const r = await fetchModel('ultraface-rfb-640');
 * r.onnx; // ~/.cache/clipstream/models/ultraface-rfb-640/version-RFB-640.onnx
 */
export async function fetchModel(name: string, options: FetchOptions = {}): Promise<FetchResult> {
  const registry = options.registry ?? REGISTRY;
  const model = findModel(name, registry);
  if (!model) {
    throw new ClipstreamError('ERR_BAD_ARGUMENT', `models fetch: unknown model '${name}'; known: ${registry.map((m) => m.name).join(', ')}`);
  }
  const dir = join(modelCacheDir(options.env), model.name);
  await mkdir(dir, { recursive: true });
  const record = await readRecord(dir);
  const files: FetchedFile[] = [];
  for (const f of model.files) {
    const got = await fetchFile(model, f, dir, options, record);
    files.push(got);
    if (!got.verified && !record[f.file]) {
      record[f.file] = { bytes: got.bytes, sha256: got.sha256, url: f.url, fetched: new Date().toISOString() };
      await writeFileAtomic(join(dir, 'fetched.json'), `${JSON.stringify(record, null, 2)}\n`);
      options.log?.(
        `${f.file}: no published sha256${f.sha256Prefix ? ` (its name's prefix ${f.sha256Prefix} matched)` : ''}; recorded the one seen, ${got.sha256}, in ${join(dir, 'fetched.json')}`,
      );
    }
  }
  const onnx = cachedModelPath(model, options.env);
  let built = false;
  if (model.build && (await sizeOf(onnx)) === null) {
    if (!options.build) throw new ClipstreamError('ERR_PIPELINE', `${model.name}: fetched, but no builder was given to turn ${model.build.weights} into ONNX`);
    options.log?.(`building ${model.onnx} from ${model.build.weights}`);
    await options
      .build({
        arch: model.build.arch,
        weights: join(dir, model.build.weights),
        pca: model.build.pca ? join(dir, model.build.pca) : undefined,
        dataset: model.build.dataset,
        width: 'full',
        input: 'uint8',
        seed: 0,
        fp16: false,
        out: onnx,
      })
      .catch((err: unknown) => {
        const e = err as ClipstreamError;
        throw new ClipstreamError(
          e.code ?? 'ERR_MODEL',
          `${model.name}: cannot build ${model.onnx}: ${e.message} (the fetched files stay in ${dir}; delete that folder to download them again)`,
          { cause: err, where: { file: join(dir, model.build!.weights) } },
        );
      });
    built = true;
  }
  return { model, dir, onnx, files, built };
}
