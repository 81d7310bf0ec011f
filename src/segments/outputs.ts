/**
 * Output names of a folder of videos. Each video's output is its relative path with the
 * extension replaced (`.mp4`, or none for a PNG folder); videos of one name in different
 * containers (`x.mp4` beside `x.mkv`) would then share an output and a work folder, so one
 * run would overwrite the other's. Those get names of their own, deterministically, and every
 * other video keeps the name it always had.
 */
import { extname } from 'node:path';

/** The work folder of an output: `out/talk.mp4` → `out/talk.segments/`. */
export function workDirFor(output: string): string {
  return `${output.replace(/\.[^./\\]+$/, '')}.segments`;
}

const stemOf = (rel: string) => rel.slice(0, rel.length - extname(rel).length);

/**
 * The output of each relative path (same order). A name several videos would take goes to
 * the one whose own name it is (`x.mp4`, for mp4 output); the others keep their extension in
 * the name (`x.mkv.mp4`; for a PNG folder `x_mkv`, dots made `_`, since a dotted folder name
 * would share the work folder `x.segments`), with `~2`, `~3`, ... where that is taken too. Work folders are
 * kept distinct the same way.
 *
 * @example outputNames(['x.mkv', 'x.mp4'], 'mp4') // ['x.mkv.mp4', 'x.mp4']
 */
export function outputNames(rels: readonly string[], format: 'mp4' | 'png'): string[] {
  const suffix = format === 'mp4' ? '.mp4' : '';
  const natural = rels.map((r) => `${stemOf(r)}${suffix}`);
  const count = new Map<string, number>();
  for (const n of natural) count.set(n, (count.get(n) ?? 0) + 1);
  const taken = new Set<string>();
  const free = (name: string) => !taken.has(name) && !taken.has(workDirFor(name));
  const take = (name: string) => {
    taken.add(name);
    taken.add(workDirFor(name));
    return name;
  };
  const out: (string | undefined)[] = rels.map(() => undefined);
  // First the names that are a video's own: an .mp4 source's among those sharing one (x.mp4 → x.mp4), then
  // the unshared ones, those whose work folder is their own name's first (a PNG folder `a.b` shares `a.segments` with `a`).
  const shared = (i: number) => count.get(natural[i]!)! > 1;
  const plain = (i: number) => workDirFor(natural[i]!) === `${natural[i]!.slice(0, natural[i]!.length - suffix.length)}.segments`;
  for (const own of [(i: number) => shared(i) && extname(rels[i]!) === '.mp4', (i: number) => !shared(i) && plain(i), (i: number) => !shared(i)])
    rels.forEach((_, i) => {
      if (out[i] === undefined && own(i) && free(natural[i]!)) out[i] = take(natural[i]!);
    });
  rels.forEach((rel, i) => {
    if (out[i] !== undefined) return;
    const ext = extname(rel);
    // A PNG folder's name has no dot left, so its work folder is its own (`x_mkv.segments`) and the counter always ends.
    const slash = Math.max(rel.lastIndexOf('/'), rel.lastIndexOf('\\')) + 1;
    const base = format === 'mp4' ? `${stemOf(rel)}${ext}` : `${rel.slice(0, slash)}${rel.slice(slash).replace(/\./g, '_')}`;
    let name = `${base}${suffix}`;
    for (let k = 2; !free(name); k++) name = `${base}~${k}${suffix}`;
    out[i] = take(name);
  });
  return out as string[];
}
