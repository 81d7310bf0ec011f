/**
 * Compressed tars under any name: webdataset's `TarWriter(compress=True)` writes gzip under
 * a plain `.tar` name, so the format is told by the magic bytes, never by the extension.
 * gzip is Node's zlib; bzip2, xz and zstd go through their command-line tools (`-dc`),
 * streamed through the process runner (src/media/process.ts), so memory does not grow with the
 * shard and a hung or killed tool is a typed failure that leaves no process behind.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ClipstreamError } from '../errors.js';
import { toolReadable } from '../media/process.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd';

const MAGIC: Array<[Compression, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

/** What to install for each external tool (Debian/Ubuntu package names). */
const TOOLS: Record<Exclude<Compression, 'gzip'>, { bin: string; pkg: string }> = {
  bzip2: { bin: 'bzip2', pkg: 'bzip2' },
  xz: { bin: 'xz', pkg: 'xz-utils' },
  zstd: { bin: 'zstd', pkg: 'zstd' },
};

/** A decompressor that takes input, owes output and gives none for this long (CPU time while it works counts as progress) is killed. */
const DECOMPRESS_STALL_MS = 120_000;

export function detectCompression(head: Uint8Array): Compression | null {
  for (const [kind, magic] of MAGIC) if (magic.every((b, i) => head[i] === b)) return kind;
  return null;
}

export interface Decompressed {
  /** The plain tar bytes. */
  stream: Readable;
  compression: Compression | null;
  /** Stops everything (the source, the decompressor); safe to call twice. */
  destroy(): void;
}

/**
 * Looks at the first bytes of `source` and returns the plain tar stream. `url` names the
 * shard in errors (a missing tool says what to install).
 */
export async function decompressed(source: Readable, url: string): Promise<Decompressed> {
  const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < 6) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    length += r.value.length;
  }
  const first = Buffer.concat(head);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  const raw = Readable.from(rest(), { objectMode: false });
  const compression = detectCompression(first);
  const destroyRaw = () => {
    raw.destroy();
    source.destroy();
  };
  if (compression === null) return { stream: raw, compression, destroy: destroyRaw };
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    raw.on('error', (err) => gunzip.destroy(err));
    raw.pipe(gunzip);
    return {
      stream: gunzip,
      compression,
      destroy: () => {
        destroyRaw();
        gunzip.destroy();
      },
    };
  }
  const tool = TOOLS[compression];
  const where = { shard: url, file: url };
  // Through the process runner: counted, killed with the shard and at exit, watched for a hang,
  // and a failure is a ToolFailure naming the shard. The current environment, so PATH is today's.
  const stream = toolReadable(tool.bin, ['-dc'], {
    input: raw,
    env: process.env,
    what: `${tool.bin} -dc failed`,
    code: 'ERR_TAR',
    where,
    stallTimeoutMs: DECOMPRESS_STALL_MS,
    cannotStart: (err) => {
      const why = /\bENOENT\b/.test(err.message) ? `'${tool.bin}' is not installed` : `'${tool.bin}' cannot be run (${err.message})`;
      return new ClipstreamError(
        'ERR_TOOL',
        `shard ${url} is ${compression}-compressed but ${why}; install ${tool.pkg} (e.g. apt-get install ${tool.pkg}) or decompress the shard first`,
        { cause: err, where },
      );
    },
  });
  return {
    stream,
    compression,
    destroy: () => {
      destroyRaw();
      stream.destroy();
    },
  };
}
