/**
 * Crossings pinned after the explorer (`npm run zoo`) found them failing: every one joins the
 * CI sample of test/zoo/zoo-generated.test.ts, whatever the seed picks, so a fixed defect stays
 * fixed. Add the lines the explorer's report prints; never remove one (see docs/zoo.md).
 */
import type { JobName } from './jobs.js';

export interface Regression {
  /** A crossing id (test/zoo/crossings.ts `crossingId`). */
  id: string;
  /** Where it was found: the explorer's seed, or an issue. */
  found: string;
  /** The jobs it failed in when found. */
  jobs: JobName[];
}

export const REGRESSIONS: Regression[] = [
  // From `npm run zoo -- --seed=random --count=60` (seed 429357087): classes the CI seed reaches only through a twin.
  { id: 'fmp4_mjpeg_cfr_plain_full_flac-mono-same_dash', found: 'seed 429357087', jobs: ['extract', 'segments'] },
  { id: 'mp4_vp9_ntsc-film_tiny_pq_flac-stereo-long_unicode', found: 'seed 429357087', jobs: ['extract', 'segments'] },
  // A restarting MPEG-TS without audio: clips still cuts it at the restart.
  { id: 'ts_mpeg2_cfr_sar16x15_untagged_noaudio_dash', found: 'seed 429357087', jobs: ['clips', 'faces', 'segments'] },
  // Seed 823423422: an odd-size 4:2:0 VP9/AV1 decodes an edge row or column far from the reference (mean 0.4, up to 109 levels).
  { id: 'mkv_av1_gap_odd_untagged_noaudio_dash', found: 'seed 823423422', jobs: ['extract'] },
  // Seed 1240441799 (500 crossings): a full-range VP9 read by its tag (fixed: the reference's range), a rotated 10-bit PQ
  // clip (open: the reference converts before it rotates), a hole inside a restarting MPEG-TS (clips' content time).
  { id: 'mkv_vp9_cfr_sar32x27_full_aac-stereo-same_plain', found: 'seed 1240441799', jobs: ['extract'] },
  { id: 'fmp4_h264_ntsc_rotate90_pq_noaudio_plain', found: 'seed 1240441799', jobs: ['extract'] },
  // Defect 9's other turns (fixed with it: extract converts to RGB before it turns the frame, as the reference does).
  { id: 'mp4_hevc_cfr_rotate270_pq_noaudio_plain', found: 'issue 22 session, by hand', jobs: ['extract'] },
  { id: 'mp4_h264_cfr_rotate180_pq_noaudio_plain', found: 'issue 22 session, by hand', jobs: ['extract'] },
  { id: 'ts_h264_gap_plain_pq_ac3-stereo-same_plain', found: 'seed 1240441799', jobs: ['clips'] },
];
