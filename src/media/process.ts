import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ClipstreamError, type Where } from '../errors.js';
import { spawnViaHelper, useSpawnHelper } from './spawner.js';

/** A started tool: its pipes, how to kill it, how it ended. */
interface Started {
  stdio: Array<Readable | Writable | null>;
  kill(): void;
  /** Called once with the exit status. */
  onExit(cb: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** Every ffmpeg/ffprobe child we started and that has not exited yet. */
const live = new Set<Started>();
let exitHookInstalled = false;

/** Children still running; tests use it to prove nothing is left behind. */
export function liveChildProcesses(): number {
  return live.size;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A Ctrl-C or a crash must not leave ffmpeg processes running on their own.
  process.on('exit', () => {
    for (const child of live) child.kill();
  });
}

export interface RunOptions {
  /** Bytes written to the child's stdin (then closed); an iterable is written chunk by chunk, with backpressure. */
  input?: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Extra output pipes: fd 3, 4, ... are collected into `extra`. */
  extraOutputs?: number;
  /** Kill the child when no output arrived for this long (a hung decoder). */
  stallTimeoutMs?: number;
  /** Kill the child when it runs longer than this in total. */
  timeoutMs?: number;
  signal?: AbortSignal;
  where?: Where;
  /** Sees every stderr line as it arrives; lines it returns true for are not kept in `stderr` (e.g. per-frame showinfo lines). */
  onStderrLine?: (line: string) => boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  extra: Buffer[];
  stderr: string;
  /** Set when the watchdog killed the child. */
  killedBy?: 'stall' | 'timeout';
}

/**
 * Runs a media tool with its input fed through a pipe and its outputs collected from pipes.
 * Never rejects for a non-zero exit (callers decide what an exit code means); rejects only
 * when the process cannot be started or the signal aborts it. The child is killed on abort,
 * on the watchdog, and at process exit.
 */
export function runTool(binary: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return startRun(binary, args, options, false).done;
}

/** A running tool whose stdout the caller reads (see `toolOutput`); `done` settles like runTool's promise. */
interface Run {
  stdout: Promise<Readable | null>;
  done: Promise<RunResult>;
  kill(): void;
  /** Tells the stall watchdog whether the caller is waiting for output (time spent not reading is not a stall). */
  waiting(on: boolean): void;
}

function startRun(binary: string, args: string[], options: RunOptions, streamStdout: boolean): Run {
  installExitHook();
  const extraCount = options.extraOutputs ?? 0;
  const stdio: Array<'pipe' | 'ignore'> = [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  for (let i = 0; i < extraCount; i++) stdio.push('pipe');
  // Kept so the rejection points at the caller, not at a child-process callback.
  const callerStack = new Error('runTool caller');
  let giveStdout: (s: Readable | null) => void = () => {};
  const stdoutReady = new Promise<Readable | null>((resolve) => {
    giveStdout = resolve;
  });
  let killChild = () => {};
  let killed = false;
  let waitingForOutput = true;
  let touch = () => {};

  const done = new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      giveStdout(null);
      reject(abortError(options.signal, options.where));
      return;
    }
    const cannot = (err: Error) => {
      const e = new ClipstreamError('ERR_DECODE', `cannot run ${binary}: ${err.message}`, { cause: err, where: options.where });
      e.stack = `${e.stack}\n--- caller ---\n${callerStack.stack}`;
      giveStdout(null);
      reject(e);
    };
    startTool(binary, args, stdio).then((child) => {
      live.add(child);
      killChild = () => child.kill();
      if (killed) child.kill();
      const out: Buffer[] = [];
      const extra: Buffer[][] = Array.from({ length: extraCount }, () => []);
      let stderr = '';
      let killedBy: RunResult['killedBy'];
      let lastActivity = Date.now();
      const started = lastActivity;
      touch = () => {
        lastActivity = Date.now();
      };

      // The result is complete once the child exited and every output pipe reached its end.
      let open = 1;
      let status: [number | null, NodeJS.Signals | null] = [null, null];
      const closeOne = () => {
        if (--open > 0) return;
        clearInterval(watchdog);
        live.delete(child);
        options.signal?.removeEventListener('abort', onAbort);
        if (options.signal?.aborted) {
          reject(abortError(options.signal, options.where));
          return;
        }
        if (partial && !onLine?.(partial)) stderr = (stderr + partial).slice(-16_384);
        resolve({ code: status[0], signal: status[1], stdout: Buffer.concat(out), extra: extra.map((e) => Buffer.concat(e)), stderr, killedBy });
      };
      const whenClosed = (s: Readable) => {
        open++;
        s.on('error', () => {});
        // A pipe handed over by the spawn helper can reach its end (a child that exits at once
        // without output) before we get it: its 'close' has been emitted already.
        if (s.closed || s.destroyed) queueMicrotask(closeOne);
        else s.on('close', closeOne);
      };
      const collect = (s: Readable, onData: (d: Buffer) => void) => {
        s.on('data', (d: Buffer) => {
          onData(d);
          touch();
        });
        whenClosed(s);
      };
      if (streamStdout) {
        whenClosed(child.stdio[1] as Readable);
        giveStdout(child.stdio[1] as Readable);
      } else {
        collect(child.stdio[1] as Readable, (d) => out.push(d));
      }
      let partial = '';
      const onLine = options.onStderrLine;
      collect(child.stdio[2] as Readable, (d) => {
        let text = d.toString('utf8');
        if (onLine) {
          const lines = (partial + text).split('\n');
          partial = lines.pop()!;
          text = lines
            .filter((l) => !onLine(l))
            .map((l) => `${l}\n`)
            .join('');
        }
        // Keep the tail only: a chatty ffmpeg must not grow memory without bound.
        stderr = (stderr + text).slice(-16_384);
      });
      for (let i = 0; i < extraCount; i++) collect(child.stdio[3 + i] as Readable, (d) => extra[i]!.push(d));

      const watchdog = setInterval(
        () => {
          const now = Date.now();
          if (!waitingForOutput) lastActivity = now;
          if (options.stallTimeoutMs && now - lastActivity > options.stallTimeoutMs) killedBy = 'stall';
          else if (options.timeoutMs && now - started > options.timeoutMs) killedBy = 'timeout';
          if (killedBy) {
            clearInterval(watchdog);
            child.kill();
          }
        },
        Math.max(50, Math.min(1000, (options.stallTimeoutMs ?? 1000) / 4)),
      );
      watchdog.unref();

      const onAbort = () => child.kill();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) child.kill();

      child.onExit((code, signal) => {
        status = [code, signal];
        closeOne();
      });

      const stdin = child.stdio[0] as Writable | null;
      if (options.input && stdin) {
        // ffmpeg stops reading once it has what it needs (-t); the broken pipe that follows is expected.
        stdin.on('error', () => {});
        if (options.input instanceof Uint8Array) stdin.end(options.input);
        else void feed(stdin, options.input).catch(() => child.kill());
      }
    }, cannot);
  });
  return {
    stdout: stdoutReady,
    done,
    kill: () => {
      killed = true;
      killChild();
    },
    waiting: (on) => {
      if (on && !waitingForOutput) touch();
      waitingForOutput = on;
    },
  };
}

/**
 * Writes one chunk to a child's stdin and, when its pipe is full, waits for 'drain' (or for the
 * pipe to close: a child that exited drains nothing), so a producer never outruns the child.
 */
export async function writeToChild(stdin: Writable, chunk: Uint8Array): Promise<void> {
  if (stdin.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      stdin.off('drain', done);
      stdin.off('close', done);
      resolve();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  });
}

/** Writes chunks to a child's stdin, waiting for 'drain' when its pipe is full. */
async function feed(stdin: Writable, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
  for await (const chunk of chunks) {
    if (stdin.destroyed || stdin.writableEnded) return;
    await writeToChild(stdin, chunk);
  }
  stdin.end();
}

/** What went wrong with a child, in a few words: `exit 1`, `killed by SIGSEGV`, `stalled (no output for 30 s)`. */
export function describeExit(r: Pick<RunResult, 'code' | 'signal' | 'killedBy'>, options: Pick<RunOptions, 'stallTimeoutMs' | 'timeoutMs'> = {}): string {
  if (r.killedBy === 'stall') return `stalled (no output for ${((options.stallTimeoutMs ?? 0) / 1000).toFixed(0)} s) and was killed`;
  if (r.killedBy === 'timeout') return `ran past its ${((options.timeoutMs ?? 0) / 1000).toFixed(0)} s limit and was killed`;
  if (r.signal) return `was killed by ${r.signal}`;
  return `exited with ${r.code}`;
}

/** The last lines of a tool's stderr, joined on one line for a message. */
export function stderrTail(stderr: string, lines = 2): string {
  return stderr.trim().split('\n').slice(-lines).join(' | ');
}

/**
 * A media tool that failed: exited non-zero, was killed by a signal (a segfaulting ffprobe),
 * or was killed by the watchdog. `code` is the library's error code; the child's own status is
 * `exitCode` / `signal` / `killedBy`.
 */
export class ToolFailure extends ClipstreamError {
  readonly binary: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly killedBy: 'stall' | 'timeout' | undefined;
  readonly stderrTail: string;
  readonly file: string | undefined;

  constructor(binary: string, what: string, r: Pick<RunResult, 'code' | 'signal' | 'killedBy' | 'stderr'>, options: RunOptions = {}) {
    const tail = stderrTail(r.stderr);
    const file = options.where?.file;
    const tool = binary.split('/').pop() ?? binary;
    super(
      r.killedBy ? 'ERR_DECODE_TIMEOUT' : 'ERR_DECODE',
      `${file ? `${file}: ` : ''}${what}: ${tool} ${describeExit(r, options)}${tail ? `: ${tail}` : ''}`,
      { where: options.where },
    );
    this.name = 'ToolFailure';
    this.binary = binary;
    this.exitCode = r.code;
    this.signal = r.signal;
    this.killedBy = r.killedBy;
    this.stderrTail = tail;
    this.file = file;
  }
}

/** True when the run ended well: exit 0, no signal, not killed by the watchdog. */
export function succeeded(r: Pick<RunResult, 'code' | 'signal' | 'killedBy'>): boolean {
  return r.code === 0 && r.signal === null && !r.killedBy;
}

/**
 * runTool that throws a ToolFailure (exit code, signal, stall or timeout, stderr tail, the file
 * from `where`) unless the child exited 0. `what` says what the run was for, in the message.
 *
 * @example
 * const { stdout } = await runToolOrThrow(ffprobePath(), args, { what: 'cannot probe', where: { file } });
 */
export async function runToolOrThrow(binary: string, args: string[], options: RunOptions & { what: string }): Promise<RunResult> {
  const r = await runTool(binary, args, options);
  if (!succeeded(r)) throw new ToolFailure(binary, options.what, r, options);
  return r;
}

/**
 * Runs a tool and yields its stdout in chunks of exactly `chunkBytes` (raw video frames), as
 * the consumer asks for them: a slow consumer pauses the child through the pipe, and the stall
 * watchdog only counts time spent waiting for output. A trailing partial chunk is dropped.
 * Throws a ToolFailure after the last chunk when the child failed; stopping early kills it.
 *
 * @example
 * for await (const frame of toolOutput(ffmpeg, args, { chunkBytes: w * h * 3, what: 'cannot decode', where: { file } })) use(frame);
 */
export async function* toolOutput(
  binary: string,
  args: string[],
  options: RunOptions & { chunkBytes: number; what: string },
): AsyncGenerator<Buffer, RunResult, undefined> {
  const run = startRun(binary, args, options, true);
  run.done.catch(() => {});
  let finished = false;
  try {
    const stdout = await run.stdout;
    // Destroyed already: it ended, empty, before we got it (see whenClosed); nothing to read.
    if (stdout && !stdout.destroyed) {
      let pending: Buffer[] = [];
      let have = 0;
      const size = options.chunkBytes;
      run.waiting(true);
      for await (const data of stdout as AsyncIterable<Buffer>) {
        pending.push(data);
        have += data.length;
        while (have >= size) {
          const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
          // A copy, so that a yielded chunk does not keep the whole read buffer alive.
          const chunk = Buffer.from(all.subarray(0, size));
          pending = have > size ? [all.subarray(size)] : [];
          have -= size;
          run.waiting(false);
          yield chunk;
          run.waiting(true);
        }
      }
    }
    const r = await run.done;
    finished = true;
    if (!succeeded(r)) throw new ToolFailure(binary, options.what, r, options);
    return r;
  } finally {
    if (!finished) {
      run.kill();
      await run.done.catch(() => {});
    }
  }
}

/** Starts the tool from the spawn helper (see spawner.ts), or from this process. */
async function startTool(binary: string, args: string[], stdio: Array<'pipe' | 'ignore'>): Promise<Started> {
  if (useSpawnHelper()) {
    let s: Awaited<ReturnType<typeof spawnViaHelper>> | null = null;
    try {
      s = await spawnViaHelper(binary, args, stdio);
    } catch (err) {
      if (useSpawnHelper()) throw err; // the tool could not start (e.g. ENOENT)
      // the helper itself is gone: spawn directly
    }
    if (s) {
      const sp = s;
      let exited = false;
      void sp.exited.then(() => {
        exited = true;
      });
      return {
        stdio: sp.stdio,
        kill: () => {
          if (!exited) sp.kill();
        },
        onExit: (cb) => void sp.exited.then(({ code, signal }) => cb(code, signal)),
      };
    }
  }
  return new Promise<Started>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { stdio, windowsHide: true });
    } catch (err) {
      reject(err as Error);
      return;
    }
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => {});
      resolve({
        stdio: child.stdio as Started['stdio'],
        kill: () => child.kill('SIGKILL'),
        onExit: (cb) => child.once('exit', cb),
      });
    });
  });
}

function abortError(signal: AbortSignal, where?: Where): ClipstreamError {
  return new ClipstreamError('ERR_PIPELINE', 'aborted', { cause: signal.reason, where });
}

/** A tool started with streaming pipes (see spawnTool). */
export interface StreamingTool {
  /** The child's stdin, when `stdin` was asked for. */
  stdin: Writable | null;
  stdout: Readable;
  /** Exit status and stderr tail, once the child exited and its pipes closed; never rejects. */
  done: Promise<RunResult>;
  kill(): void;
}

/**
 * Starts a media tool whose stdin/stdout are streamed by the caller (frames in, frames out)
 * instead of buffered as runTool does, so memory stays at one pipe's worth whatever the video
 * length. The same guarantees as runTool: killed on abort, on the stall watchdog (no stdout
 * and no stdin progress), and at process exit.
 *
 * @example
 * const t = await spawnTool(ffmpegPath(), ['-i', 'a.mp4', '-f', 'rawvideo', 'pipe:1']);
 * for await (const chunk of t.stdout) { ... }
 * const { code } = await t.done;
 */
export async function spawnTool(
  binary: string,
  args: string[],
  options: { stdin?: boolean; stallTimeoutMs?: number; signal?: AbortSignal; where?: Where } = {},
): Promise<StreamingTool> {
  installExitHook();
  if (options.signal?.aborted) throw abortError(options.signal, options.where);
  let child: Started;
  try {
    child = await startTool(binary, args, [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe']);
  } catch (err) {
    throw new ClipstreamError('ERR_DECODE', `cannot run ${binary}: ${(err as Error).message}`, { cause: err, where: options.where });
  }
  live.add(child);
  const stdout = child.stdio[1] as Readable;
  const stdin = (child.stdio[0] as Writable | null) ?? null;
  stdin?.on('error', () => {});
  let stderr = '';
  let killedBy: RunResult['killedBy'];
  let last = Date.now();
  const touch = () => {
    last = Date.now();
  };
  stdout.on('data', touch);
  const stderrStream = child.stdio[2] as Readable;
  stderrStream.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-16_384);
  });
  stderrStream.on('error', () => {});
  if (stdin) {
    const write = stdin.write.bind(stdin);
    stdin.write = ((chunk: unknown, ...rest: unknown[]) => {
      touch();
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stdin.write;
  }
  const watchdog = options.stallTimeoutMs
    ? setInterval(
        () => {
          if (Date.now() - last > options.stallTimeoutMs!) {
            killedBy = 'stall';
            child.kill();
          }
        },
        Math.max(50, Math.min(1000, options.stallTimeoutMs / 4)),
      )
    : null;
  watchdog?.unref();
  const onAbort = () => child.kill();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const closed = (s: Readable) =>
    new Promise<void>((resolve) => {
      if (s.destroyed || s.readableEnded) resolve();
      else s.once('close', () => resolve());
    });
  const done = new Promise<RunResult>((resolve) => {
    child.onExit((code, signal) => {
      void Promise.all([closed(stdout), closed(stderrStream)]).then(() => {
        if (watchdog) clearInterval(watchdog);
        live.delete(child);
        options.signal?.removeEventListener('abort', onAbort);
        resolve({ code, signal, stdout: Buffer.alloc(0), extra: [], stderr, killedBy });
      });
    });
  });
  // A caller that stops reading early kills the child; draining lets the pipe close so `done` settles.
  return {
    stdin,
    stdout,
    done,
    kill: () => {
      child.kill();
      stdout.resume();
    },
  };
}
