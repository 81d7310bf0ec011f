import { existsSync } from 'node:fs';
import { ClipstreamError } from '../errors.js';
import { fetchModel } from '../models/fetch.js';
import { cachedModelPath, modelCacheDir, REGISTRY } from '../models/registry.js';
import type { CommandSpec } from '../util/args.js';
import { buildModelFromArgs } from './models-command.js';

export const modelsFetchSpec: CommandSpec = {
  name: 'models fetch',
  summary: 'download a published model into $CLIPSTREAM_HOME (default ~/.cache/clipstream/models), check it, build checkpoints to ONNX.',
  usage: 'clipstream models fetch NAME [--from=DIR]   (names: clipstream models list)',
  options: [
    { name: 'from', type: 'string', description: 'Folder holding the files, copied by hand (offline use); they are checked as downloads are' },
    { name: 'retries', type: 'integer', description: 'Attempts after the first one per file (a dropped connection resumes where it stopped)', default: 3 },
  ],
  examples: ['clipstream models fetch ultraface-rfb-640', 'clipstream models fetch vggish --from=/media/usb/models'],
};

export const modelsListSpec: CommandSpec = {
  name: 'models list',
  summary: 'the published models clipstream can fetch, with file, size, sha256, licence, purpose and whether each is in the cache.',
  usage: 'clipstream models list [--json]',
  options: [{ name: 'json', type: 'boolean', description: 'Print the registry as JSON', default: false }],
  examples: ['clipstream models list'],
};

const mb = (bytes: number | null) => (bytes === null ? 'size unknown' : `${(bytes / 1e6).toFixed(1)} MB`);

/** `clipstream models list`: the registry, one block per model. */
export async function runModelsList(args: Record<string, unknown>): Promise<number> {
  if (args.json) {
    const rows = REGISTRY.map((m) => ({ ...m, cached: existsSync(cachedModelPath(m)), path: cachedModelPath(m) }));
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const lines = [`Model cache: ${modelCacheDir()} ($CLIPSTREAM_HOME)`, ''];
  for (const m of REGISTRY) {
    const cached = existsSync(cachedModelPath(m));
    lines.push(`${m.name.padEnd(20)} ${m.kind.padEnd(14)} ${cached ? 'in cache' : 'not fetched'}   ${m.licence}`);
    lines.push(`  ${m.purpose}`);
    for (const f of m.files) {
      const sha = f.sha256 ?? (f.sha256Prefix ? `unknown (prefix ${f.sha256Prefix})` : 'unknown (recorded on fetch)');
      lines.push(`  ${f.file}  ${mb(f.bytes)}  sha256 ${sha}`);
      lines.push(`    ${f.url}`);
    }
    if (m.build) lines.push(`  built on fetch into ${m.onnx} (clipstream models build --arch=${m.build.arch})`);
    lines.push('');
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `clipstream models fetch NAME`: fetches, verifies, builds; prints the ONNX path on stdout. */
export async function runModelsFetch(name: string | undefined, args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  if (!name) throw new ClipstreamError('ERR_BAD_ARGUMENT', `models fetch: which model? (known: ${REGISTRY.map((m) => m.name).join(', ')})`);
  const log = (line: string) => process.stderr.write(`clipstream models fetch: ${line}\n`);
  const r = await fetchModel(name, {
    from: args.from as string | undefined,
    retries: args.retries as number,
    signal,
    log,
    build: buildModelFromArgs,
    baseUrl: process.env.CLIPSTREAM_MODELS_BASE_URL || undefined,
  });
  for (const f of r.files) {
    log(
      `${f.file}: ${f.how}${f.resumed ? ` (resumed ${f.resumed}x)` : ''}, ${f.bytes} bytes, sha256 ${f.sha256}${f.verified ? ' (matches the published one)' : ''}`,
    );
  }
  if (r.built) log(`built ${r.onnx}`);
  log(
    `${r.model.name} is ready: use ${r.model.kind === 'face-detector' ? '--detector' : r.model.kind === 'visual' ? '--visual_model' : r.model.kind === 'audio' ? '--audio_model' : '--matting_model'}=${r.model.name}`,
  );
  process.stdout.write(`${r.onnx}\n`);
  return 0;
}
