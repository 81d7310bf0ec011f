/**
 * What an encoder fed RGB frames (segments, faces clips) adds so its YUV output means what the
 * source does: the RGB → YUV conversion by the source's own matrix and range, and the source's
 * colour tags (media/facts.ts: rgbToYuvFilter, outputTagArgs).
 */
import { type MediaFacts, outputTagArgs, rgbToYuvFilter } from './facts.js';

/**
 * The conversion filter (null: none needed) and the tag options. A source stored as RGB (matrix
 * `gbr`: VP9 or H.264 4:4:4 RGB, PNG-like screen captures) has no YUV matrix to keep: the output
 * is YUV, so that matrix is not claimed (x264 refuses `-colorspace gbr` on YUV anyway); its
 * primaries, transfer and range still are.
 *
 * @example const { filter, tags } = rgbEncodeColour(facts); // { filter: 'scale=out_color_matrix=bt709:out_range=tv', tags: ['-color_primaries', 'bt709', ...] }
 */
export function rgbEncodeColour(facts: Pick<MediaFacts, 'colour'>): { filter: string | null; tags: string[] } {
  const c = facts.colour;
  const colour = c.matrix === 'gbr' ? { ...c, matrix: null } : c;
  return { filter: rgbToYuvFilter({ colour }), tags: outputTagArgs({ colour }) };
}
