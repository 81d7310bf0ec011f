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
  /** Bytes written to the child's stdin (then closed). */
  input?: Uint8Array;
  /** Extra output pipes: fd 3, 4, ... are collected into `extra`. */
  extraOutputs?: number;
  /** Kill the child when no output arrived for this long (a hung decoder). */
  stallTimeoutMs?: number;
  /** Kill the child when it runs longer than this in total. */
  timeoutMs?: number;
  signal?: AbortSignal;
  where?: Where;
  /**
   * Spawn from this process, not from the spawn helper. For short tools run a few times per
   * video (probe, join, remux): with the helper, about one run in ten of the segments job's
   * join/remux never settled (the child's end was not delivered and nothing kept the event
   * loop alive); direct spawning showed no such run in 25 (see the segments report).
   */
  direct?: boolean;
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
  installExitHook();
  const extraCount = options.extraOutputs ?? 0;
  const stdio: Array<'pipe' | 'ignore'> = [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  for (let i = 0; i < extraCount; i++) stdio.push('pipe');
  // Kept so the rejection points at the caller, not at a child-process callback.
  const callerStack = new Error('runTool caller');

  return new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError(options.signal, options.where));
      return;
    }
    const cannot = (err: Error) => {
      const e = new ClipstreamError('ERR_DECODE', `cannot run ${binary}: ${err.message}`, { cause: err, where: options.where });
      e.stack = `${e.stack}\n--- caller ---\n${callerStack.stack}`;
      reject(e);
    };
    startTool(binary, args, stdio, options.direct).then((child) => {
      live.add(child);
      const out: Buffer[] = [];
      const extra: Buffer[][] = Array.from({ length: extraCount }, () => []);
      let stderr = '';
      let killedBy: RunResult['killedBy'];
      let lastActivity = Date.now();
      const started = lastActivity;
      const touch = () => {
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
        resolve({ code: status[0], signal: status[1], stdout: Buffer.concat(out), extra: extra.map((e) => Buffer.concat(e)), stderr, killedBy });
      };
      const collect = (s: Readable, onData: (d: Buffer) => void) => {
        open++;
        s.on('data', (d: Buffer) => {
          onData(d);
          touch();
        });
        s.on('error', () => {});
        s.on('close', closeOne);
      };
      collect(child.stdio[1] as Readable, (d) => out.push(d));
      collect(child.stdio[2] as Readable, (d) => {
        // Keep the tail only: a chatty ffmpeg must not grow memory without bound.
        stderr = (stderr + d.toString('utf8')).slice(-16_384);
      });
      for (let i = 0; i < extraCount; i++) collect(child.stdio[3 + i] as Readable, (d) => extra[i]!.push(d));

      const watchdog = setInterval(() => {
        const now = Date.now();
        if (options.stallTimeoutMs && now - lastActivity > options.stallTimeoutMs) killedBy = 'stall';
        else if (options.timeoutMs && now - started > options.timeoutMs) killedBy = 'timeout';
        if (killedBy) {
          clearInterval(watchdog);
          child.kill();
        }
      }, Math.max(50, Math.min(1000, (options.stallTimeoutMs ?? 1000) / 4)));
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
        stdin.end(options.input);
      }
    }, cannot);
  });
}

/** Starts the tool from the spawn helper (see spawner.ts), or from this process. */
async function startTool(binary: string, args: string[], stdio: Array<'pipe' | 'ignore'>, direct = false): Promise<Started> {
  if (!direct && useSpawnHelper()) {
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
export async function spawnTool(binary: string, args: string[], options: { stdin?: boolean; stallTimeoutMs?: number; signal?: AbortSignal; where?: Where } = {}): Promise<StreamingTool> {
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
    ? setInterval(() => {
      if (Date.now() - last > options.stallTimeoutMs!) {
        killedBy = 'stall';
        child.kill();
      }
    }, Math.max(50, Math.min(1000, options.stallTimeoutMs / 4)))
    : null;
  watchdog?.unref();
  const onAbort = () => child.kill();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const closed = (s: Readable) => new Promise<void>((resolve) => {
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
  return { stdin, stdout, done, kill: () => { child.kill(); stdout.resume(); } };
}

/** The last `lines` lines of a tool's stderr on one line, for error messages. */
export function stderrTail(stderr: string, lines = 2): string {
  return stderr.trim().split('\n').slice(-lines).join(' | ') || 'no message';
}
