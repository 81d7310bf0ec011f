import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from './ffmpeg-path.js';
import { runTool } from './process.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { validateOneOf } from '../util/validate.js';

export const ENCODERS = ['libx264', 'libx265', 'h264_nvenc', 'hevc_nvenc'] as const;
export type Encoder = (typeof ENCODERS)[number];

/** The CPU encoder that produces the same codec as a GPU one. */
const CPU_FALLBACK: Record<Encoder, Encoder> = { libx264: 'libx264', libx265: 'libx265', h264_nvenc: 'libx264', hevc_nvenc: 'libx265' };

export interface EncoderChoice {
  encoder: Encoder;
  /** Decode with `-hwaccel cuda` too (only for NVENC, when the GPU answered). */
  hwaccel: boolean;
  /** The encoder that was asked for when it had to be replaced. */
  requested: Encoder;
}

const cache = new Map<string, Promise<EncoderChoice>>();
/** One warning per process and (ffmpeg, encoder): a thousand videos must not print it a thousand times. */
const warned = new Set<string>();

async function listEncoders(ffmpeg: string): Promise<string> {
  const res = await runTool(ffmpeg, ['-hide_banner', '-encoders'], { timeoutMs: 30_000 });
  return res.stdout.toString('utf8');
}

/** A GPU "answers" when a one-frame NVENC encode of decoded-on-GPU-capable input succeeds. */
async function nvencWorks(ffmpeg: string, encoder: Encoder): Promise<string | null> {
  const res = await runTool(
    ffmpeg,
    ['-hide_banner', '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'color=c=black:s=256x256:d=0.2', '-frames:v', '1', '-c:v', encoder, '-f', 'null', '-'],
    { timeoutMs: 30_000 },
  );
  return res.code === 0 ? null : res.stderr.trim().split('\n').pop() || `exit code ${res.code}`;
}

/**
 * Checks that `requested` can run with this ffmpeg (and, for NVENC, that a GPU answers);
 * otherwise picks the CPU encoder of the same codec and warns once.
 *
 * @example
 * const choice = await resolveEncoder('h264_nvenc'); // { encoder: 'libx264', hwaccel: false, requested: 'h264_nvenc' } without a GPU
 */
export async function resolveEncoder(requested: string, options: { ffmpegPath?: string; onWarning?: WarningHandler } = {}): Promise<EncoderChoice> {
  const enc = validateOneOf(requested, 'options.encoder', ENCODERS);
  const ffmpeg = options.ffmpegPath ?? ffmpegPath();
  const warn = options.onWarning ?? defaultWarningHandler;
  const key = `${ffmpeg}\0${enc}`;
  let p = cache.get(key);
  if (!p) {
    p = (async (): Promise<EncoderChoice> => {
      const list = await listEncoders(ffmpeg);
      const has = (name: string) => new RegExp(`^\\s*V\\S*\\s+${name}\\s`, 'm').test(list);
      let why: string | null = null;
      if (!has(enc))
        why = `${ffmpeg} has no ${enc} encoder${enc.includes('nvenc') ? ' (the bundled ffmpeg has no NVENC; pass --ffmpeg_path or FFMPEG_PATH)' : ''}`;
      else if (enc.includes('nvenc')) {
        const err = await nvencWorks(ffmpeg, enc);
        if (err) why = `${enc} did not start (no NVIDIA GPU answered: ${err})`;
      }
      if (!why) return { encoder: enc, hwaccel: enc.includes('nvenc'), requested: enc };
      const fallback = CPU_FALLBACK[enc];
      if (fallback === enc || !has(fallback)) {
        throw new ClipstreamError('ERR_INVALID_OPTION', `encoder ${enc} cannot be used: ${why}`, { where: { option: 'encoder' } });
      }
      return { encoder: fallback, hwaccel: false, requested: enc };
    })();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p.then((choice) => {
    if (choice.encoder !== choice.requested && !warned.has(key)) {
      warned.add(key);
      warn(
        new ClipstreamError(
          'ERR_INVALID_OPTION',
          `encoder ${choice.requested} is not available with ${ffmpeg} or no GPU answered; encoding on the CPU with ${choice.encoder} instead`,
          { where: { option: 'encoder' } },
        ),
      );
    }
    return choice;
  });
}

export interface EncodeSettings {
  encoder: Encoder;
  threads: number;
  /** Constant quality (x264/x265 CRF, NVENC CQ); ignored when `bitRate` is set. */
  crf: number;
  preset?: string;
  /** Target bit rate in bit/s (`use_input_bit_rate`). */
  bitRate?: number;
}

/** Output options for one encoded stream. Every mp4 is 8-bit 4:2:0, which all players and NVENC H.264 take. */
export function encoderArgs(s: EncodeSettings): string[] {
  const args = ['-c:v', s.encoder, '-pix_fmt', 'yuv420p'];
  const rate = s.bitRate && s.bitRate > 0 ? ['-b:v', String(Math.round(s.bitRate))] : null;
  if (s.encoder === 'libx264') {
    args.push('-preset', s.preset ?? 'medium', '-threads', String(s.threads), ...(rate ?? ['-crf', String(s.crf)]));
  } else if (s.encoder === 'libx265') {
    // x265 ignores -threads; its pool size is what limits it. hvc1 is the tag Apple players and Sekai's files use.
    args.push('-preset', s.preset ?? 'medium', '-x265-params', `log-level=error:pools=${s.threads}`, '-tag:v', 'hvc1', ...(rate ?? ['-crf', String(s.crf)]));
  } else {
    args.push(...(s.preset ? ['-preset', s.preset] : []), ...(rate ?? ['-rc', 'vbr', '-cq', String(s.crf), '-b:v', '0']));
    if (s.encoder === 'hevc_nvenc') args.push('-tag:v', 'hvc1');
  }
  return args;
}
