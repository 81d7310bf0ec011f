/**
 * Keep lists: which clips go on, as `clipstream dedup` writes them (`keep.txt`) and `extract`,
 * `bundle` and the clips shard writer read them (`--keep_list=FILE`).
 *
 * The format: UTF-8 text, one clip name per line (`\n` ends), in the order of the input. A clip
 * is named by its clip_id and, where its file name's stem differs (a clip_id with characters a
 * webdataset key cannot hold), by that stem on a line of its own too; a reader keeps a clip when
 * either is listed. Blank lines and lines starting with `#` are ignored; spaces around a name are
 * trimmed.
 */
import { readFile } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';

/**
 * The names a keep list holds.
 *
 * @example await readKeepList('out/clips/keep.txt') // Set { 'abc_0_50', 'abc_50_100' }
 */
export async function readKeepList(path: string, option = 'options.keepList'): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `${option}: cannot read the keep list ${path}: ${(err as Error).message}`, {
      cause: err,
      where: { file: path, option },
    });
  }
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.trim();
    if (name !== '' && !name.startsWith('#')) names.add(name);
  }
  return names;
}

/** A keep list's text: the names given, one a line. */
export function formatKeepList(names: Iterable<string>): string {
  let out = '';
  for (const n of names) out += `${n}\n`;
  return out;
}
