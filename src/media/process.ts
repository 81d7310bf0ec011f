import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClipstreamError, isTransient, type ErrorCode, type Where } from '../errors.js';
import { MS_PER_TICK, sampleCpu } from '../util/pid.js';
import { spawnViaHelper, useSpawnHelper, type ReadSink } from './spawner.js';

/** A started tool: its pipes, how to kill it, how it ended. */
interface Started {
  /** Its process id, where known (the watchdog reads its CPU time from /proc). */
  pid: number | undefined;
  stdio: Array<Readable | Writable | null>;
  /** True when stdout is read into the sink startTool was given (its socket emits no 'data'). */
  stdoutSunk: boolean;
  kill(): void;
  /** Set once this process asked for it to be killed: a signal it then dies of is ours, not someone else's. */
  readonly killedHere: boolean;
  /** Called once with the exit status. */
  onExit(cb: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** Every child we started (ffmpeg, ffprobe, a decompressor, a `pipe:` command, ...) and that has not exited yet. */
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
  /**
   * Consumers of the extra pipes instead of collecting them (their `extra` buffers stay empty):
   * called at every start of the child (a retry starts afresh), it returns one consumer per
   * extra pipe. A consumer that returns a promise pauses its pipe until it settles (the child
   * waits); one that throws or rejects kills the child, and the result carries the error (`extraError`).
   */
  extraSinks?: () => readonly ((chunk: Buffer) => void | Promise<void>)[];
  /**
   * A consumer of stdout instead of collecting it (`stdout` stays empty): called at every start
   * of the child (a retry starts afresh), it returns the consumer of that run's chunks, which
   * must not throw, and must copy what it keeps: a chunk may be a view of a buffer that the next
   * read overwrites (spawner.ts, ReadSink).
   */
  stdoutSink?: () => ReadSink;
  /**
   * Kill the child when it made no progress for this long (a hung decoder): no output while
   * it was running. Time it spent stopped (SIGSTOP, a paused VM) or waiting for a CPU or the
   * disk (a loaded node, a swap storm) is not counted: a starved child is not a hung one.
   * CLIPSTREAM_STALL_TIMEOUT_MS overrides it for every tool that has one.
   */
  stallTimeoutMs?: number;
  /** Kill the child when it runs longer than this in total. */
  timeoutMs?: number;
  signal?: AbortSignal;
  where?: Where;
  /** Sees every stderr line as it arrives; lines it returns true for are not kept in `stderr` (e.g. per-frame showinfo lines). */
  onStderrLine?: (line: string) => boolean;
  /** The child's environment (a `pipe:` command sees the one of the moment it starts); default: inherited. */
  env?: NodeJS.ProcessEnv;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  extra: Buffer[];
  stderr: string;
  /** Set when the watchdog killed the child. */
  killedBy?: 'stall' | 'timeout';
  /** A failure of circumstance, not of the input: the watchdog killed it, or a signal this process did not send (the OOM killer, a `kill -9`). */
  transient?: boolean;
  /** How many times the tool was started (runTool retries a transient failure). */
  attempts?: number;
  /** The first error of an `extraSinks` consumer (the child was killed for it). */
  extraError?: unknown;
}

/** What a tool prints when a write of its output failed for want of space (ENOSPC, EDQUOT). */
const DISK_FULL_TEXT = /No space left on device|Disk quota exceeded/;

/** Signals a child raises itself when it crashes on its input: permanent, unlike a kill from outside. */
const CRASH_SIGNALS = new Set<string>(['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGABRT', 'SIGSYS', 'SIGTRAP']);
/** Spawn errors of a machine out of processes, file descriptors or memory: retried. */
const TRANSIENT_SPAWN = /\b(EAGAIN|EMFILE|ENFILE|ENOMEM)\b/;

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Each retry of a transient failure multiplies the stall and total limits by this scale (see retryTransient). */
const limitScale = new AsyncLocalStorage<number>();

/** The limits a run gets: the caller's, the stall one overridden by CLIPSTREAM_STALL_TIMEOUT_MS, both scaled on a retry. */
function effectiveLimits(options: Pick<RunOptions, 'stallTimeoutMs' | 'timeoutMs'>): Pick<RunOptions, 'stallTimeoutMs' | 'timeoutMs'> {
  const scale = limitScale.getStore() ?? 1;
  const stall = options.stallTimeoutMs === undefined ? undefined : (envNumber('CLIPSTREAM_STALL_TIMEOUT_MS') ?? options.stallTimeoutMs);
  return {
    stallTimeoutMs: stall === undefined ? undefined : stall * scale,
    timeoutMs: options.timeoutMs === undefined ? undefined : options.timeoutMs * scale,
  };
}

/** How many more times a transient failure is tried in the run (CLIPSTREAM_TRANSIENT_RETRIES, default 2), and the first pause between tries (CLIPSTREAM_RETRY_BACKOFF_MS, default 500, doubled each time). */
export function retryPolicy(): { retries: number; backoffMs: number } {
  return { retries: Math.floor(envNumber('CLIPSTREAM_TRANSIENT_RETRIES') ?? 2), backoffMs: envNumber('CLIPSTREAM_RETRY_BACKOFF_MS') ?? 500 };
}

/**
 * Runs `attempt` and, while it fails transiently (see ClipstreamError.transient), runs it again
 * after a pause that doubles each time, with every media tool's stall and total limits doubled
 * too; the last failure is rethrown (still transient, so the job records it as worth a retry by
 * the next run). Permanent failures and aborts are rethrown at once.
 *
 * @example const clip = await retryTransient(() => cutClip(source, span), { signal });
 */
export async function retryTransient<T>(
  attempt: (tryNumber: number) => Promise<T>,
  o: { signal?: AbortSignal; onRetry?: (err: unknown, tryNumber: number) => void } = {},
): Promise<T> {
  const { retries, backoffMs } = retryPolicy();
  const outer = limitScale.getStore() ?? 1;
  for (let i = 0; ; i++) {
    try {
      return await limitScale.run(outer * 2 ** i, () => attempt(i + 1));
    } catch (err) {
      if (i >= retries || !isTransient(err) || o.signal?.aborted) throw err;
      o.onRetry?.(err, i + 1);
      await sleep(backoffMs * 2 ** i, undefined, o.signal ? { signal: o.signal } : {});
    }
  }
}

/**
 * Runs a media tool with its input fed through a pipe and its outputs collected from pipes.
 * Never rejects for a non-zero exit (callers decide what an exit code means); rejects only
 * when the process cannot be started or the signal aborts it. The child is killed on abort,
 * on the watchdog, and at process exit.
 */
export async function runTool(binary: string, args: string[], options: RunOptions = {}): Promise<ToolResult> {
  // Bytes in memory (or none) can be fed again: a transient failure is retried here, transparently.
  const replayable = options.input === undefined || options.input instanceof Uint8Array;
  const modes: Modes = { stdin: options.input ? 'feed' : 'none', stdout: 'collect' };
  if (!replayable) return startRun(binary, args, options, modes).done;
  try {
    return await retryTransient(
      async (n) => {
        const r: ToolResult = { ...(await startRun(binary, args, options, modes).done), attempts: n };
        if (r.transient) throw new TransientResult(r);
        return r;
      },
      { signal: options.signal },
    );
  } catch (err) {
    // Still failing after the retries: the result says so (`transient`), as runTool never rejects for an exit.
    if (err instanceof TransientResult) return err.result;
    throw err;
  }
}

/** Carries a transient result through retryTransient. */
class TransientResult extends ClipstreamError {
  constructor(readonly result: ToolResult) {
    super('ERR_TOOL', 'transient tool failure', { transient: true });
  }
}

/** A running tool whose pipes the caller uses (see `streamTool`); `done` settles like runTool's promise. */
interface Run {
  /** The pipes handed to the caller once the child started (null when it could not start). */
  pipes: Promise<{ stdin: Writable | null; stdout: Readable | null } | null>;
  done: Promise<ToolResult>;
  kill(): void;
  /** Tells the stall watchdog whether the caller is waiting on the child (time spent elsewhere is not a stall). */
  waiting(on: boolean): void;
  /** Counts as activity for the watchdog (input taken by the child). */
  touch(): void;
}

/** How startRun wires the child: stdin fed from `options.input`, handed to the caller, or none; stdout collected, handed over, or ignored. */
interface Modes {
  stdin: 'feed' | 'stream' | 'none';
  stdout: 'collect' | 'stream' | 'ignore';
}

function startRun(binary: string, args: string[], options: RunOptions, modes: Modes): Run {
  installExitHook();
  const extraCount = options.extraOutputs ?? 0;
  const stdio: Array<'pipe' | 'ignore'> = [modes.stdin === 'none' ? 'ignore' : 'pipe', modes.stdout === 'ignore' ? 'ignore' : 'pipe', 'pipe'];
  for (let i = 0; i < extraCount; i++) stdio.push('pipe');
  // Kept so the rejection points at the caller, not at a child-process callback. Never thrown:
  // only its stack is used (test/unit/errors.test.ts allowlist).
  const callerStack = new Error('runTool caller');
  let givePipes: (p: { stdin: Writable | null; stdout: Readable | null } | null) => void = () => {};
  const pipesReady = new Promise<{ stdin: Writable | null; stdout: Readable | null } | null>((resolve) => {
    givePipes = resolve;
  });
  let killChild = () => {};
  let killed = false;
  let waitingForOutput = modes.stdin !== 'stream' && modes.stdout !== 'stream';
  let touch = () => {};
  const setWaiting = (on: boolean) => {
    if (on && !waitingForOutput) touch();
    waitingForOutput = on;
  };

  const done = new Promise<ToolResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      givePipes(null);
      reject(abortError(options.signal, options.where));
      return;
    }
    const cannot = (err: Error) => {
      // Out of processes, descriptors or memory: the machine's state, not the tool's or the input's.
      const transient = TRANSIENT_SPAWN.test(`${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`);
      const e = new ClipstreamError('ERR_TOOL', `cannot run ${binary}: ${err.message}`, { cause: err, where: options.where, transient });
      e.stack = `${e.stack}\n--- caller ---\n${callerStack.stack}`;
      givePipes(null);
      reject(e);
    };
    const stdoutSink = modes.stdout === 'collect' ? options.stdoutSink?.() : undefined;
    const sunk = stdoutSink
      ? (chunk: Buffer) => {
          stdoutSink(chunk);
          touch();
        }
      : undefined;
    startTool(binary, args, stdio, options.env, sunk).then((child) => {
      live.add(child);
      killChild = () => child.kill();
      if (killed) child.kill();
      const out: Buffer[] = [];
      const extra: Buffer[][] = Array.from({ length: extraCount }, () => []);
      let stderr = '';
      let killedBy: ToolResult['killedBy'];
      let extraError: unknown;
      const sinks = options.extraSinks?.();
      const limits = effectiveLimits(options);
      // Progress clocks, in ms: `idle` since the last output, `active` since the start, each
      // counting only time the child could have used (see stallTimeoutMs).
      let idle = 0;
      let active = 0;
      let lastTick = Date.now();
      let lastCpu = -1;
      touch = () => {
        idle = 0;
        lastCpu = -1;
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
        // A signal this process did not send, other than a crash of the child's own: someone killed it (the OOM killer, an operator).
        const fromOutside = status[1] !== null && !child.killedHere && !CRASH_SIGNALS.has(status[1]);
        const transient = killedBy !== undefined || fromOutside;
        // ffmpeg exits 0 when its last writes (the trailer, the close) fail on a full disk, its
        // output truncated: every caller must see that as the failure it is, exit 0 or not.
        const diskFull = status[0] === 0 && DISK_FULL_TEXT.test(stderr);
        resolve({
          code: diskFull ? 1 : status[0],
          signal: status[1],
          stdout: Buffer.concat(out),
          extra: extra.map((e) => Buffer.concat(e)),
          stderr,
          killedBy,
          ...(transient && extraError === undefined ? { transient } : {}),
          ...(extraError !== undefined ? { extraError } : {}),
        });
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
      if (modes.stdout === 'stream' || child.stdoutSunk) whenClosed(child.stdio[1] as Readable);
      else if (modes.stdout === 'collect') collect(child.stdio[1] as Readable, stdoutSink ?? ((d) => out.push(d)));
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
      const sinkFailed = (err: unknown) => {
        if (extraError === undefined) extraError = err;
        child.kill();
      };
      for (let i = 0; i < extraCount; i++) {
        const pipe = child.stdio[3 + i] as Readable;
        const sink = sinks?.[i];
        if (!sink) {
          collect(pipe, (d) => extra[i]!.push(d));
          continue;
        }
        collect(pipe, (d) => {
          if (extraError !== undefined) return;
          try {
            const wait = sink(d);
            if (wait) {
              pipe.pause();
              wait.then(
                () => pipe.resume(),
                (err: unknown) => {
                  sinkFailed(err);
                  pipe.resume();
                },
              );
            }
          } catch (err) {
            sinkFailed(err);
          }
        });
      }

      const tickMs = Math.max(50, Math.min(1000, (limits.stallTimeoutMs ?? 1000) / 4));
      const watchdog = setInterval(() => {
        const now = Date.now();
        // A late tick means this process was not scheduled either (a paused VM, a starved node): that gap is nobody's stall.
        const dt = Math.min(now - lastTick, 2 * tickMs);
        lastTick = now;
        // Ask /proc only while the clock would run: the child owes output and gave none since the last tick.
        const sample = waitingForOutput && idle > 0 && child.pid !== undefined ? sampleCpu(child.pid) : null;
        let ran = dt;
        if (sample) {
          const cpuMs = lastCpu < 0 ? 0 : (sample.cpuTicks - lastCpu) * MS_PER_TICK;
          lastCpu = sample.cpuTicks;
          // Burning CPU without output counts (up to the wall time: threads run side by side);
          // no CPU while stopped or waiting for a CPU or the disk is starvation, not a hang;
          // no CPU while every thread sleeps is a child blocked on something that never comes.
          if (sample.stopped) ran = 0;
          else if (cpuMs > 0) ran = Math.min(dt, cpuMs);
          else if (sample.waitingToRun) ran = 0;
        }
        active += ran;
        idle = waitingForOutput ? idle + ran : 0;
        if (limits.stallTimeoutMs && idle > limits.stallTimeoutMs) killedBy = 'stall';
        else if (limits.timeoutMs && active > limits.timeoutMs) killedBy = 'timeout';
        if (killedBy) {
          clearInterval(watchdog);
          child.kill();
        }
      }, tickMs);
      watchdog.unref();

      const onAbort = () => child.kill();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) child.kill();

      child.onExit((code, signal) => {
        status = [code, signal];
        closeOne();
      });

      const stdin = child.stdio[0] as Writable | null;
      // ffmpeg stops reading once it has what it needs (-t); the broken pipe that follows is expected.
      stdin?.on('error', () => {});
      if (modes.stdin === 'feed' && options.input && stdin) {
        if (options.input instanceof Uint8Array) stdin.end(options.input);
        else void feed(stdin, options.input, setWaiting).catch(() => child.kill());
      }
      givePipes({ stdin: modes.stdin === 'stream' ? stdin : null, stdout: modes.stdout === 'stream' ? (child.stdio[1] as Readable) : null });
    }, cannot);
  });
  return {
    pipes: pipesReady,
    done,
    touch: () => touch(),
    kill: () => {
      killed = true;
      killChild();
    },
    waiting: setWaiting,
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

/**
 * Writes chunks to a child's stdin, waiting for 'drain' when its pipe is full. While the next
 * chunk is being made (an upstream decoder that is itself slow, stopped or starved) the child
 * has nothing to work on: `waiting(false)` keeps that time off its stall clock. `wrote` is told
 * after each chunk the child took.
 */
async function feed(
  stdin: Writable,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  waiting: (on: boolean) => void,
  wrote: () => void = () => {},
): Promise<void> {
  const it = (Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]()) as AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  for (;;) {
    waiting(false);
    const next = await it.next();
    waiting(true);
    if (next.done) break;
    if (stdin.destroyed || stdin.writableEnded) {
      await it.return?.();
      return;
    }
    await writeToChild(stdin, next.value);
    wrote();
  }
  stdin.end();
}

/** What went wrong with a child, in a few words: `exit 1`, `killed by SIGSEGV`, `stalled (no output for 30 s)`. */
export function describeExit(r: Pick<ToolResult, 'code' | 'signal' | 'killedBy'>, options: Pick<RunOptions, 'stallTimeoutMs' | 'timeoutMs'> = {}): string {
  if (r.killedBy === 'stall') return `stalled (no output for ${((options.stallTimeoutMs ?? 0) / 1000).toFixed(0)} s) and was killed`;
  if (r.killedBy === 'timeout') return `ran past its ${((options.timeoutMs ?? 0) / 1000).toFixed(0)} s limit and was killed`;
  if (r.signal) return `was killed by ${r.signal}`;
  return `exited with ${r.code}`;
}

/** ffmpeg's banner and stream listing: lines that never say what went wrong. */
const FFMPEG_NOISE =
  /^(Input|Output|Stream|Duration|Metadata|major_brand|minor_version|compatible_brands|encoder|handler_name|creation_time|Press|frame=|size=|video:|\[| {2})/;

/**
 * The last lines of a tool's stderr, joined on one line for a message: the one helper every
 * message about a failed child uses. `skipBanner` leaves out ffmpeg's banner and stream listing
 * (falling back to the last two raw lines when nothing else is left).
 *
 * @example stderrTail('a\nb\nc\n', 2) // 'b | c'
 */
export function stderrTail(stderr: string, lines = 2, options: { skipBanner?: boolean } = {}): string {
  if (options.skipBanner) {
    const kept = stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !FFMPEG_NOISE.test(l) && !l.startsWith('Stream mapping'));
    const last = kept.slice(-lines).join(' | ');
    if (last) return last;
    return stderrTail(stderr, 2);
  }
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

  constructor(
    binary: string,
    what: string,
    r: Pick<ToolResult, 'code' | 'signal' | 'killedBy' | 'stderr' | 'transient'>,
    options: RunOptions & { code?: ErrorCode } = {},
  ) {
    const tail = stderrTail(r.stderr);
    const file = options.where?.file;
    const tool = binary.split('/').pop() ?? binary;
    super(
      r.killedBy ? 'ERR_DECODE_TIMEOUT' : (options.code ?? 'ERR_DECODE'),
      `${file ? `${file}: ` : ''}${what}: ${tool} ${describeExit(r, effectiveLimits(options))}${tail ? `: ${tail}` : ''}`,
      { where: options.where, transient: r.transient === true },
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
export function succeeded(r: Pick<ToolResult, 'code' | 'signal' | 'killedBy'>): boolean {
  return r.code === 0 && r.signal === null && !r.killedBy;
}

/**
 * runTool that throws a ToolFailure (exit code, signal, stall or timeout, stderr tail, the file
 * from `where`) unless the child exited 0. `what` says what the run was for, in the message.
 *
 * @example
 * const { stdout } = await runToolOrThrow(ffprobePath(), args, { what: 'cannot probe', where: { file } });
 */
export async function runToolOrThrow(binary: string, args: string[], options: RunOptions & { what: string; code?: ErrorCode }): Promise<ToolResult> {
  const r = await runTool(binary, args, options);
  if (!succeeded(r)) throw new ToolFailure(binary, options.what, r, options);
  return r;
}

/** Options of a streamed tool run: `what` and `code` name its failure (a ToolFailure). */
export interface StreamOptions extends Omit<RunOptions, 'input' | 'extraOutputs'> {
  what: string;
  /** The library error code of a failure (default ERR_DECODE; a stall is always ERR_DECODE_TIMEOUT). */
  code?: ErrorCode;
  /** The caller writes the child's stdin (`write`, then `finish`). */
  stdin?: boolean;
  /** `stream` (default): the caller reads stdout with `chunks`; `ignore`: none (an encoder writing a file). */
  stdout?: 'stream' | 'ignore';
}

/** A running tool whose pipes are streamed by the caller (see streamTool). */
export interface ToolStream {
  /** Writes one chunk to stdin, waiting while its pipe is full; throws the ToolFailure when the child ended early. */
  write(chunk: Uint8Array): Promise<void>;
  /** stdout in chunks of exactly `chunkBytes` (a trailing partial chunk is dropped), read as asked for. */
  chunks(chunkBytes: number): AsyncGenerator<Buffer, void, undefined>;
  /** Ends stdin and waits for the child; throws a ToolFailure unless it exited 0. */
  finish(): Promise<ToolResult>;
  /** Kills the child and waits until it is gone; never throws. */
  kill(): Promise<void>;
}

/**
 * The one streaming runner: a media tool whose stdin and/or stdout the caller streams (frames
 * in, frames out), so memory stays at one pipe's worth whatever the video length. The same
 * guarantees as runTool: killed on abort, on the watchdog and at process exit; the stall
 * watchdog counts only time the caller spends waiting on the child (for output, or for its full
 * stdin pipe), so a slow consumer or producer is never taken for a hung child. Failures are
 * ToolFailures (exit code, signal, stall or timeout, stderr tail, file).
 *
 * @example
 * const enc = streamTool(ffmpegPath(), [...rawRgbInputArgs(w, h, '25/1'), 'out.mp4'], { what: 'cannot encode', stdin: true, stdout: 'ignore', where: { file } });
 * for (const frame of frames) await enc.write(frame);
 * await enc.finish();
 */
export function streamTool(binary: string, args: string[], options: StreamOptions): ToolStream {
  const run = startRun(binary, args, options, { stdin: options.stdin ? 'stream' : 'none', stdout: options.stdout ?? 'stream' });
  run.done.catch(() => {});
  const failure = (r: ToolResult) => new ToolFailure(binary, options.what, r, options);
  return {
    async write(chunk) {
      const pipes = await run.pipes;
      if (!pipes?.stdin) {
        await run.done;
        throw new ClipstreamError('ERR_PIPELINE', `${options.what}: ${binary} was not started with stdin`, { where: options.where });
      }
      const stdin = pipes.stdin;
      if (!stdin.destroyed && !stdin.writableEnded) {
        run.waiting(true);
        try {
          await writeToChild(stdin, chunk);
        } finally {
          run.waiting(false);
        }
        run.touch();
      }
      if (stdin.destroyed || stdin.writableEnded) {
        // The child closed its input: it ended, well or (far more likely) badly.
        const r = await run.done;
        if (!succeeded(r)) throw failure(r);
        throw new ClipstreamError(options.code ?? 'ERR_DECODE', `${options.what}: ${binary} exited before taking all its input`, { where: options.where });
      }
    },
    async *chunks(chunkBytes) {
      const pipes = await run.pipes;
      const stdout = pipes?.stdout;
      // Destroyed already: it ended, empty, before we got it (see whenClosed); nothing to read.
      if (!stdout || stdout.destroyed) return;
      let pending: Buffer[] = [];
      let have = 0;
      run.waiting(true);
      try {
        for await (const data of stdout as AsyncIterable<Buffer>) {
          pending.push(data);
          have += data.length;
          while (have >= chunkBytes) {
            const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
            // A copy, so that a yielded chunk does not keep the whole read buffer alive.
            const chunk = Buffer.from(all.subarray(0, chunkBytes));
            pending = have > chunkBytes ? [all.subarray(chunkBytes)] : [];
            have -= chunkBytes;
            run.waiting(false);
            yield chunk;
            run.waiting(true);
          }
        }
      } finally {
        run.waiting(false);
      }
    },
    async finish() {
      const pipes = await run.pipes;
      pipes?.stdin?.end();
      run.waiting(true);
      const r = await run.done;
      if (!succeeded(r)) throw failure(r);
      return r;
    },
    async kill() {
      run.kill();
      await run.done.catch(() => {});
    },
  };
}

/**
 * streamTool for a tool read only (a decoder): yields its stdout in chunks of exactly
 * `chunkBytes` (raw video frames) as the consumer asks for them, then throws the ToolFailure
 * when the child failed; stopping early kills it.
 *
 * @example
 * for await (const frame of toolOutput(ffmpeg, args, { chunkBytes: w * h * 3, what: 'cannot decode', where: { file } })) use(frame);
 */
export async function* toolOutput(
  binary: string,
  args: string[],
  options: Omit<StreamOptions, 'stdin' | 'stdout'> & { chunkBytes: number },
): AsyncGenerator<Buffer, ToolResult, undefined> {
  const tool = streamTool(binary, args, options);
  let finished = false;
  try {
    yield* tool.chunks(options.chunkBytes);
    const r = await tool.finish();
    finished = true;
    return r;
  } finally {
    if (!finished) await tool.kill();
  }
}

/** Options of `toolReadable`. */
export interface ReadableToolOptions extends Omit<StreamOptions, 'stdin' | 'stdout'> {
  /** Bytes fed to the child's stdin, with backpressure; stdin is closed when they end. None: no stdin. */
  input?: AsyncIterable<Uint8Array>;
  /** The error the stream fails with when the child did not exit 0 (default: a ToolFailure); `exit` says how it ended (describeExit). */
  failure?: (r: ToolResult, exit: string) => Error;
  /** The error the stream fails with when the child could not be started (default: the runner's ERR_DECODE). */
  cannotStart?: (err: ClipstreamError) => Error;
}

/**
 * A tool's stdout as a byte stream, in chunks as they come (a decompressor, a `pipe:` command),
 * optionally fed `input`. The same guarantees as runTool: the child is counted by
 * liveChildProcesses, killed on abort, on the watchdog and at process exit, and the stall clock
 * runs only while the consumer waits for output and the child is not itself waiting for input.
 * The stream ends only once the child exited 0; otherwise it fails with `failure(result)` (a
 * ToolFailure by default); an error of `input` fails it with that error, the child killed.
 * Destroying the stream kills the child; its 'close' comes once the child is gone.
 *
 * @example
 * const tar = toolReadable('/usr/bin/xz', ['-dc'], { input: createReadStream('a.tar.xz'), what: 'cannot decompress', where: { file: 'a.tar.xz' } });
 */
export function toolReadable(binary: string, args: string[], options: ReadableToolOptions): Readable {
  const input = options.input;
  const run = startRun(binary, args, options, { stdin: input ? 'stream' : 'none', stdout: 'stream' });
  run.done.catch(() => {});
  let readerWaiting = false;
  let inputWaiting = false;
  let inputError: unknown = null;
  let ended = false;
  const setWaiting = () => run.waiting(readerWaiting && !inputWaiting);
  const failure = (r: ToolResult) =>
    options.failure ? options.failure(r, describeExit(r, effectiveLimits(options))) : new ToolFailure(binary, options.what, r, options);
  let stdout: Readable | null = null;
  const out: Readable = new Readable({
    read() {
      readerWaiting = true;
      setWaiting();
      stdout?.resume();
    },
    destroy(err, cb) {
      readerWaiting = false;
      if (ended) {
        cb(err);
        return;
      }
      run.kill();
      // A paused pipe would hold its end (and so the run's) back: nobody reads it any more.
      stdout?.destroy();
      run.done.then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
  const fail = (err: unknown) => {
    if (!out.destroyed) out.destroy(err as Error);
  };

  void run.pipes.then((pipes) => {
    if (!pipes?.stdout) {
      run.done.then(
        (r) => fail(failure(r)),
        (err: unknown) => fail(err instanceof ClipstreamError && options.cannotStart && !options.signal?.aborted ? options.cannotStart(err) : err),
      );
      return;
    }
    stdout = pipes.stdout;
    if (input && pipes.stdin) void feedInput(pipes.stdin);
    stdout.on('data', (chunk: Buffer) => {
      run.touch();
      if (!out.push(chunk)) {
        readerWaiting = false;
        setWaiting();
        stdout?.pause();
      }
    });
    // Its end, or (a pipe handed over by the spawn helper, see whenClosed) its close before we got it.
    let over = false;
    const atEnd = () => {
      if (over) return;
      over = true;
      run.done.then(
        (r) => {
          if (inputError !== null) fail(inputError);
          else if (!succeeded(r)) fail(failure(r));
          else if (!out.destroyed) {
            ended = true;
            out.push(null);
          }
        },
        (err: unknown) => fail(inputError ?? err),
      );
    };
    if (stdout.destroyed || stdout.readableEnded) atEnd();
    stdout.once('end', atEnd);
    stdout.once('close', atEnd);
    if (!readerWaiting) stdout.pause();
  });

  // The stall clock is off while the input is being made (feed's `waiting(false)`); a chunk the child took is progress.
  async function feedInput(stdin: Writable): Promise<void> {
    try {
      await feed(
        stdin,
        input!,
        (clockOn) => {
          inputWaiting = !clockOn;
          setWaiting();
        },
        () => run.touch(),
      );
    } catch (err) {
      inputWaiting = false;
      inputError = err;
      run.kill();
    }
  }
  return out;
}

/**
 * Starts the tool from the spawn helper (see spawner.ts), or from this process. From the helper,
 * stdout is read into `stdoutSink` when one is given (`stdoutSunk`); otherwise it comes as 'data'.
 */
async function startTool(binary: string, args: string[], stdio: Array<'pipe' | 'ignore'>, env?: NodeJS.ProcessEnv, stdoutSink?: ReadSink): Promise<Started> {
  if (useSpawnHelper()) {
    let s: Awaited<ReturnType<typeof spawnViaHelper>> | null = null;
    try {
      s = await spawnViaHelper(binary, args, stdio, env, stdoutSink ? { 1: stdoutSink } : {});
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
        pid: sp.pid,
        stdio: sp.stdio,
        stdoutSunk: stdoutSink !== undefined && sp.stdio[1] !== null,
        killedHere: false,
        kill() {
          (this as { killedHere: boolean }).killedHere = true;
          if (!exited) sp.kill();
        },
        onExit: (cb) => void sp.exited.then(({ code, signal }) => cb(code, signal)),
      };
    }
  }
  return new Promise<Started>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { stdio, env, windowsHide: true });
    } catch (err) {
      reject(err as Error);
      return;
    }
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => {});
      resolve({
        pid: child.pid,
        stdio: child.stdio as Started['stdio'],
        stdoutSunk: false,
        killedHere: false,
        kill() {
          (this as { killedHere: boolean }).killedHere = true;
          child.kill('SIGKILL');
        },
        onExit: (cb) => child.once('exit', cb),
      });
    });
  });
}

function abortError(signal: AbortSignal, where?: Where): ClipstreamError {
  return new ClipstreamError('ERR_PIPELINE', 'aborted', { cause: signal.reason, where });
}
