/**
 * Clips for the near-duplicate tests, with their truth from the recipe: several different shots
 * made with ffmpeg (lavfi sources; pans over one still, two shots of one scene; pans over a shared
 * photo when ../shared is there), and copies of each: re-encoded at another CRF, scaled to half
 * size, cropped by 5 %, and starting one frame later. A copy's `shot` is its original's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { HAS_PHOTOS, PHOTOS_DIR } from './shared.js';

export interface DedupClip {
  /** File name stem, also the clip id. */
  id: string;
  file: string;
  /** The shot it shows: copies share their original's. */
  shot: string;
  /** '' for an original; else the kind of copy. */
  copy: '' | 'crf' | 'half' | 'crop' | 'late';
}

const ENC = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-an'];

function ffmpeg(args: string[]): void {
  execFileSync(ffmpegPath(), ['-nostdin', '-v', 'error', '-y', ...args]);
}

/** The shots: name -> ffmpeg input arguments and filter giving 2 s of 320×240 at 25 fps. */
function shots(dir: string): Record<string, string[]> {
  // One still, rendered once: the scene two different shots are taken of.
  const still = join(dir, 'still.png');
  if (!existsSync(still)) ffmpeg(['-f', 'lavfi', '-i', 'mandelbrot=s=960x720:end_pts=1:outer=normalized_iteration_count', '-frames:v', '1', still]);
  const pan = (image: string, x: string, y: string) => [
    '-loop',
    '1',
    '-i',
    image,
    '-vf',
    `crop=320:240:x='${x}':y='${y}',format=yuv420p`,
    '-r',
    '25',
    '-t',
    '2',
  ];
  const out: Record<string, string[]> = {
    testsrc: ['-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=2'],
    zoom: ['-f', 'lavfi', '-i', 'mandelbrot=s=320x240:r=25', '-t', '2'],
    // Two shots of one scene: the still's left and right thirds, each slowly panned.
    scene_left: pan(still, '20+t*20', '240'),
    scene_right: pan(still, '600+t*20', '240'),
  };
  if (HAS_PHOTOS) {
    const photo = join(PHOTOS_DIR, 'ultraface-imgs-19.jpg');
    out.photo_left = pan(photo, '20+t*20', '40');
    out.photo_right = pan(photo, 'iw-360+t*20', 'ih-280');
  }
  return out;
}

/** Makes every shot and its four copies in `dir` (mp4, H.264); returns them, originals first. */
export function makeDedupClips(dir: string): DedupClip[] {
  const clips: DedupClip[] = [];
  for (const [shot, input] of Object.entries(shots(dir))) {
    const file = join(dir, `${shot}.mp4`);
    ffmpeg([...input, ...ENC, '-crf', '20', file]);
    clips.push({ id: shot, file, shot, copy: '' });
  }
  for (const orig of [...clips]) {
    const copies: Array<[DedupClip['copy'], string[]]> = [
      ['crf', ['-crf', '36']],
      ['half', ['-vf', 'scale=iw/2:ih/2', '-crf', '20']],
      ['crop', ['-vf', 'crop=iw*0.95:ih*0.95', '-crf', '20']],
      ['late', ['-vf', 'trim=start_frame=1,setpts=PTS-STARTPTS', '-crf', '20']],
    ];
    for (const [copy, args] of copies) {
      const id = `${orig.shot}_${copy}`;
      const file = join(dir, `${id}.mp4`);
      ffmpeg(['-i', orig.file, ...args, ...ENC, file]);
      clips.push({ id, file, shot: orig.shot, copy });
    }
  }
  return clips;
}
