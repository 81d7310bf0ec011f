import { spawn, type ChildProcess } from 'node:child_process';
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { ClipstreamError } from '../errors.js';

/**
 * Starts media tools from a small helper process instead of from this one.
 *
 * Node (libuv 1.46) starts a child with fork(), and fork() copies this process's page tables
 * while the event loop waits: ~4 ms for a 50 MB process but ~75 ms for the ~1 GB an `extract`
 * with two loaded models reaches, once per clip. The helper is a bare Node process (~40 MB)
 * started once; it forks ffmpeg and hands the child's pipes back over the IPC channel (the
 * file descriptors themselves, so the data never passes through the helper). Set
 * CLIPSTREAM_SPAWN=direct to spawn from this process instead.
 */
const HELPER = `
const { spawn } = require('node:child_process');
const kids = new Map();
process.on('message', (m) => {
  if (m.kill !== undefined) { const c = kids.get(m.kill); if (c) c.kill('SIGKILL'); return; }
  let c;
  try { c = spawn(m.bin, m.args, { stdio: m.stdio, env: m.env, windowsHide: true }); }
  catch (e) { process.send({ id: m.id, error: String(e && e.message) }); return; }
  if (c.pid === undefined) { c.on('error', (e) => process.send({ id: m.id, error: String(e && e.message) })); return; }
  kids.set(m.id, c);
  // The pipes belong to the parent: stop reading them here (spawn started reading) and hide
  // them from ChildProcess, which would drain them at exit.
  const s = c.stdio.slice();
  for (const x of s) if (x && x._handle && x._handle.reading) { x._handle.reading = false; x._handle.readStop(); }
  for (let i = 0; i < c.stdio.length; i++) c.stdio[i] = null;
  c.stdin = c.stdout = c.stderr = null;
  let pending = s.filter(Boolean).length;
  let exit = null;
  const done = () => { if (pending === 0 && exit) { kids.delete(m.id); process.send({ id: m.id, exit }); } };
  process.send({ id: m.id, pid: c.pid, fds: s.map((x) => x !== null) });
  s.forEach((x, fd) => { if (x) process.send({ id: m.id, fd }, x, () => { pending--; done(); }); });
  c.on('exit', (code, signal) => { exit = { code, signal }; done(); });
});
process.on('disconnect', () => { for (const c of kids.values()) c.kill('SIGKILL'); process.exit(0); });
`;

export interface Spawned {
  pid: number;
  /** stdio[i] for each fd that was 'pipe', else null. */
  stdio: Array<Socket | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Takes the bytes of one read of a child's output: a view of a buffer the next read overwrites, to be used at once and not kept. */
export type ReadSink = (bytes: Buffer) => void;

/**
 * The one buffer every ReadSink's reads land in: each read is handed to its sink at once, before
 * any other read, so one buffer serves every child (ffmpeg writes a frame at a time: up to a few MB).
 */
let readBuffer: Buffer | null = null;

interface Request {
  resolve(s: Spawned): void;
  reject(e: Error): void;
  stdio: Array<Socket | null>;
  readers: Partial<Record<number, ReadSink>>;
  waiting: number;
  pid?: number;
  onExit?: (e: { code: number | null; signal: NodeJS.Signals | null }) => void;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

let helper: ChildProcess | null = null;
let helperBroken = false;
let nextId = 1;
const requests = new Map<number, Request>();

/**
 * The helper's pid, while it runs (the bench adds its CPU time, ffmpeg's included).
 *
 * @internal used by tests and bench only
 */
export function spawnHelperPid(): number | null {
  return helper?.pid ?? null;
}

function refHelper(): void {
  const h = helper as (ChildProcess & { channel?: { ref(): void; unref(): void } }) | null;
  if (!h) return;
  if (requests.size > 0) {
    h.ref();
    h.channel?.ref();
  } else {
    h.unref();
    h.channel?.unref();
  }
}

function failAll(err: Error): void {
  for (const r of requests.values()) {
    if (r.pid === undefined) r.reject(err);
    else r.onExit?.({ code: null, signal: 'SIGKILL' });
  }
  requests.clear();
}

function startHelper(): ChildProcess {
  const h = spawn(process.execPath, ['-e', HELPER], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
    windowsHide: true,
    execArgv: [],
  } as Parameters<typeof spawn>[2]);
  h.on('message', (m: { id: number; error?: string; pid?: number; fds?: boolean[]; fd?: number; exit?: Request['exit'] }, handle?: Socket) => {
    const r = requests.get(m.id);
    if (!r) {
      handle?.destroy();
      return;
    }
    if (m.error !== undefined) {
      requests.delete(m.id);
      refHelper();
      r.reject(new ClipstreamError('ERR_TOOL', m.error));
    } else if (m.pid !== undefined) {
      r.pid = m.pid;
      r.waiting = m.fds!.filter(Boolean).length;
      if (r.waiting === 0) resolveRequest(m.id, r);
    } else if (m.fd !== undefined && handle) {
      const sink = r.readers[m.fd];
      r.stdio[m.fd] = sink ? sinkSocket(handle, sink) : handle;
      if (--r.waiting === 0) resolveRequest(m.id, r);
    } else if (m.exit) {
      r.exit = m.exit;
      requests.delete(m.id);
      refHelper();
      r.onExit?.(m.exit);
    }
  });
  const broken = (why: string) => {
    // A helper that never started carried no request (see spawnViaHelper): nothing to fail.
    if (h.pid === undefined) return;
    if (helper === h) {
      helper = null;
      helperBroken = true;
    }
    failAll(new ClipstreamError('ERR_TOOL', `spawn helper ${why}`));
  };
  h.on('error', (e) => broken(e.message));
  h.on('exit', (code, sig) => broken(`exited (${code ?? sig})`));
  return h;
}

/**
 * The pipe of a socket received from the helper, moved to a socket that reads into the shared
 * buffer (`onread`) and hands each read to `sink`: no buffer is allocated per read, and no bytes
 * reach the stream side. A clip's RGB frames are ~10 MB: read the usual way, that is 150 buffers
 * of 64 KB per clip, and the garbage they make cost as much CPU as the reads.
 * The received socket started reading when it was made, but nothing is read before the event
 * loop polls again, and its message handler runs first: the pipe is taken from it unread, as
 * Node itself moves a pipe between sockets (the `handle` option, which @types/node does not list).
 */
function sinkSocket(received: Socket, sink: ReadSink): Socket {
  const inner = received as unknown as { _handle?: { readStop?(): number; reading: boolean } | null };
  const handle = inner._handle;
  if (typeof handle?.readStop !== 'function') {
    // Closed already (nothing more will come), or a Node whose sockets are built otherwise: the
    // sink takes the socket's own chunks (new buffers, which it may keep or not).
    received.on('data', sink);
    return received;
  }
  handle.reading = false;
  handle.readStop();
  inner._handle = null;
  readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const options: SocketConstructorOpts & { handle: object; onread: OnReadOpts } = {
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: readBuffer,
      callback: (n, buf) => {
        sink((buf as Buffer).subarray(0, n));
        return true;
      },
    },
  };
  return new Socket(options);
}

const READ_BUFFER_BYTES = 1 << 20;

function resolveRequest(id: number, r: Request): void {
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    if (r.exit) res(r.exit);
    else r.onExit = res;
  });
  r.resolve({
    pid: r.pid!,
    stdio: r.stdio,
    exited,
    kill: () => {
      if (requests.has(id)) helper?.send({ kill: id });
    },
  });
}

/** True when tools are started through the helper (the default on Linux). */
export function useSpawnHelper(): boolean {
  return process.platform === 'linux' && process.env.CLIPSTREAM_SPAWN !== 'direct' && !helperBroken;
}

/**
 * Starts `binary` from the helper with the given stdio ('pipe' or 'ignore' per fd), in `env`
 * when given (else in the helper's, which is this process's environment when the helper started).
 * A pipe with a ReadSink in `readers` is read into it (see sinkSocket): its socket emits no
 * 'data', only 'end', 'close' and 'error'.
 */
export function spawnViaHelper(
  binary: string,
  args: string[],
  stdio: Array<'pipe' | 'ignore'>,
  env?: NodeJS.ProcessEnv,
  readers: Partial<Record<number, ReadSink>> = {},
): Promise<Spawned> {
  if (!helper) helper = startHelper();
  const h = helper;
  if (typeof h.send !== 'function') {
    // The helper itself could not start (no processes, descriptors or memory left: its 'error'
    // says which). That failure is the machine's, for now: the next call starts it again.
    helper = null;
    return new Promise<Spawned>((_resolve, reject) => h.once('error', reject));
  }
  const id = nextId++;
  return new Promise<Spawned>((resolve, reject) => {
    requests.set(id, { resolve, reject, stdio: stdio.map(() => null), readers, waiting: -1 });
    refHelper();
    helper!.send({ id, bin: binary, args, stdio, ...(env ? { env } : {}) });
  });
}
