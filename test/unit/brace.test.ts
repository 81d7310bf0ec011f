import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { braceExpand, expandShardPatterns } from '../../src/shards/brace.js';
import { ClipstreamError } from '../../src/errors.js';
import { BRACEEXPAND_CASES } from '../helpers/braceexpand-cases.js';

// Python braceexpand 0.1.7's own suite (86 cases) plus 19 corners of its grammar; every
// expected result was checked by running the real braceexpand module.
describe.each(BRACEEXPAND_CASES)('braceExpand equals Python braceexpand: %s', (_group, cases) => {
  it.each(cases.map((c) => [JSON.stringify(c.pattern) + (c.escape === false ? ' (escape=False)' : ''), c] as const))('%s', (_name, c) => {
    if (c.expected === null) {
      expect(() => braceExpand(c.pattern, { escape: c.escape })).toThrow(`Unbalanced braces in shard pattern '${c.pattern}'`);
      return;
    }
    const got = braceExpand(c.pattern, { escape: c.escape });
    const shown = c.check === 'first2' ? got.slice(0, 2) : c.check === 'last2' ? got.slice(-2) : c.check === 'first1' ? got.slice(0, 1) : got;
    expect(shown).toEqual(c.expected);
  });
});

// Expected values follow Python's braceexpand (what ACAV100M and webdataset use), not bash.
// The real module, where one is importable (PyPI's braceexpand, or BRACEEXPAND_PATH naming a
// folder that holds its source): random patterns must expand alike.
const pythonPath = [process.env.BRACEEXPAND_PATH, process.env.PYTHONPATH].filter(Boolean).join(':');
const hasBraceexpand =
  spawnSync('/usr/bin/python3', ['-c', 'import braceexpand'], { env: { ...process.env, PYTHONPATH: pythonPath }, stdio: 'ignore' }).status === 0;
if (!hasBraceexpand)
  console.warn('brace.test: Python braceexpand not importable (set BRACEEXPAND_PATH to its source folder): random differential check skipped');

describe.skipIf(!hasBraceexpand)('braceExpand against the real Python braceexpand', () => {
  it('expands 3000 random patterns alike, errors included', () => {
    const atoms = ['{', '}', ',', '.', '..', '\\', 'a', 'Z', 'z', 'A', '1', '0', '-', '9', '\n', '$', '{1..3}', '{a,b}', '..2', 'b'];
    let x = 0x9e3779b9;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const cases = Array.from({ length: 3000 }, () => ({
      pattern: Array.from({ length: 1 + rand(10) }, () => atoms[rand(atoms.length)]).join(''),
      escape: rand(5) > 0,
    }));
    const script = [
      'import json, sys',
      'from braceexpand import braceexpand, UnbalancedBracesError',
      'def one(c):',
      '    try: return list(braceexpand(c["pattern"], escape=c["escape"]))',
      '    except UnbalancedBracesError: return None',
      'print(json.dumps([one(c) for c in json.load(sys.stdin)]))',
    ].join('\n');
    const r = spawnSync('/usr/bin/python3', ['-c', script], {
      input: JSON.stringify(cases),
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: pythonPath },
      maxBuffer: 256 << 20,
    });
    expect(r.status, r.stderr).toBe(0);
    const expected = JSON.parse(r.stdout) as Array<string[] | null>;
    const differ = cases.filter((c, i) => {
      let got: string[] | null;
      try {
        got = braceExpand(c.pattern, { escape: c.escape });
      } catch {
        got = null;
      }
      return JSON.stringify(got) !== JSON.stringify(expected[i]);
    });
    expect(differ).toEqual([]);
  });
});

describe('expandShardPatterns', () => {
  it.each<[string, string | string[], string[]]>([
    ['no braces: returned as is', 'data/shard-000007.tar', ['data/shard-000007.tar']],
    ['zero-padded 6-digit range', 'shard-{000000..000003}.tar', ['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar', 'shard-000003.tar']],
    [
      'seed example: padding outside the braces',
      'data/video/shard-00000{0..4}.tar',
      [
        'data/video/shard-000000.tar',
        'data/video/shard-000001.tar',
        'data/video/shard-000002.tar',
        'data/video/shard-000003.tar',
        'data/video/shard-000004.tar',
      ],
    ],
    ['padding kept across a digit-count change', 's-{0008..0011}', ['s-0008', 's-0009', 's-0010', 's-0011']],
    ['padding taken from the wider end', 's{00..2}', ['s00', 's01', 's02']],
    ['no padding without a leading zero', 'x{8..11}', ['x8', 'x9', 'x10', 'x11']],
    ['descending range', 'x{3..1}', ['x3', 'x2', 'x1']],
    ['range with a step', 'x{1..10..3}', ['x1', 'x4', 'x7', 'x10']],
    ['letter range', '{a..c}.tar', ['a.tar', 'b.tar', 'c.tar']],
    ['comma list', 'dir/{train,val}.tar', ['dir/train.tar', 'dir/val.tar']],
    ['empty alternative', 'a{,b}', ['a', 'ab']],
    ['nested', 'a{b{c,d},e}', ['abc', 'abd', 'ae']],
    ['product of two sets, left varies slowest', '{a,b}-{00..01}', ['a-00', 'a-01', 'b-00', 'b-01']],
    ['single item is not a set', 'x{a}y', ['x{a}y']],
    ['empty braces are literal', 'x{}y', ['x{}y']],
    ['escaped braces are literal', 'x\\{a,b\\}', ['x{a,b}']],
    ['dollar before braces still expands (bash would not)', '${a,b}', ['$a', '$b']],
    ['several patterns keep their order', ['b-{1..2}', 'a-{1..2}'], ['b-1', 'b-2', 'a-1', 'a-2']],
    ['duplicates dropped, first occurrence wins', ['s-{000001..000003}', 's-{000000..000002}'], ['s-000001', 's-000002', 's-000003', 's-000000']],
    ['duplicates inside one pattern', '{a,b,a}', ['a', 'b']],
  ])('%s', (_name, input, expected) => {
    expect(expandShardPatterns(input)).toEqual(expected);
  });

  it('expands the full ACAV-style range of 100 shards with 6-digit names', () => {
    const urls = expandShardPatterns('/data/shard-{000000..000099}.tar');
    expect(urls).toHaveLength(100);
    expect(urls[0]).toBe('/data/shard-000000.tar');
    expect(urls[99]).toBe('/data/shard-000099.tar');
    expect(urls.every((u) => /^\/data\/shard-\d{6}\.tar$/.test(u))).toBe(true);
  });

  it.each(['shard-{000000..000003.tar', 'shard-000000..000003}.tar', 'a{b,{c}'])('rejects unbalanced braces in %s', (pattern) => {
    expect(() => expandShardPatterns(pattern)).toThrow(ClipstreamError);
    expect(() => expandShardPatterns(pattern)).toThrow(`Unbalanced braces in shard pattern '${pattern}'`);
  });

  it('rejects empty and non-string patterns with a message naming the value', () => {
    expect(() => expandShardPatterns('')).toThrow(/non-empty shard pattern/);
    expect(() => expandShardPatterns([42 as unknown as string])).toThrow(/received 42/);
  });

  it('refuses patterns that expand to a million names or more', () => {
    expect(() => expandShardPatterns('s-{0000000..1999999}')).toThrow(/expands to 1000000 or more names/);
  });
});
