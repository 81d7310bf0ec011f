/**
 * Python braceexpand 0.1.7's own test suite (test_braceexpand.py and the doctests in its module),
 * as data: every pattern with the result braceexpand gives (checked by running the real module),
 * so test/unit/brace.test.ts can hold our expander to it. `null` means UnbalancedBracesError.
 */
export interface BraceCase {
  pattern: string;
  /** false: backslashes are plain characters (braceexpand's escape=False). */
  escape?: boolean;
  expected: string[] | null;
  /** The suite checks only the first or last names of these (test_zero_padding and friends). */
  check?: 'first2' | 'last2' | 'first1';
}

const chars = (s: string) => [...s];

export const BRACEEXPAND_CASES: Array<[group: string, cases: BraceCase[]]> = [
  [
    'tests',
    [
      { pattern: '{1,2}', expected: ['1', '2'] },
      { pattern: '{1}', expected: ['{1}'] },
      { pattern: '{1,2{}}', expected: ['1', '2{}'] },
      { pattern: '}{', expected: ['}{'] },
      { pattern: 'a{b,c}d{e,f}', expected: ['abde', 'abdf', 'acde', 'acdf'] },
      { pattern: 'a{b,c{d,e,}}', expected: ['ab', 'acd', 'ace', 'ac'] },
      { pattern: 'a{b,{c,{d,e}}}', expected: ['ab', 'ac', 'ad', 'ae'] },
      { pattern: '{{a,b},{c,d}}', expected: ['a', 'b', 'c', 'd'] },
      { pattern: '{7..10}', expected: ['7', '8', '9', '10'] },
      { pattern: '{10..7}', expected: ['10', '9', '8', '7'] },
      { pattern: '{1..5..2}', expected: ['1', '3', '5'] },
      { pattern: '{5..1..2}', expected: ['5', '3', '1'] },
      { pattern: '{1..3..0}', expected: ['1', '2', '3'] },
      { pattern: '{1..3..-0}', expected: ['1', '2', '3'] },
      { pattern: '{a..b..0}', expected: ['a', 'b'] },
      { pattern: '{a..b..-0}', expected: ['a', 'b'] },
      { pattern: '{07..10}', expected: ['07', '08', '09', '10'] },
      { pattern: '{7..010}', expected: ['007', '008', '009', '010'] },
      { pattern: '{1..-2}', expected: ['1', '0', '-1', '-2'] },
      { pattern: '{01..-2}', expected: ['01', '00', '-1', '-2'] },
      { pattern: '{1..-02}', expected: ['001', '000', '-01', '-02'] },
      { pattern: '{-01..3..2}', expected: ['-01', '001', '003'] },
      { pattern: '{a..e}', expected: ['a', 'b', 'c', 'd', 'e'] },
      { pattern: '{a..e..2}', expected: ['a', 'c', 'e'] },
      { pattern: '{e..a}', expected: ['e', 'd', 'c', 'b', 'a'] },
      { pattern: '{e..a..2}', expected: ['e', 'c', 'a'] },
      { pattern: '{1..a}', expected: ['{1..a}'] },
      { pattern: '{a..1}', expected: ['{a..1}'] },
      { pattern: '{1..1}', expected: ['1'] },
      { pattern: '{a..a}', expected: ['a'] },
      { pattern: '{,}', expected: ['', ''] },
      { pattern: '{Z..a}', expected: ['Z', 'a'] },
      { pattern: '{a..Z}', expected: ['a', 'Z'] },
      { pattern: '{A..z}', expected: chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') },
      { pattern: '{z..A}', expected: chars('zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA') },
      { pattern: '{a.{b,c}}', expected: ['{a.b}', '{a.c}'] },
      { pattern: '{a.{1..2}}', expected: ['{a.1}', '{a.2}'] },
      { pattern: '{{{,}}}', expected: ['{{}}', '{{}}'] },
    ],
  ],
  ['unbalanced_tests', ['{{1,2}', '{1,2}}', '{1},2}', '{1,{2}', '{}1,2}', '{1,2{}', '}{1,2}', '{1,2}{'].map((pattern) => ({ pattern, expected: null }))],
  [
    'escape_tests',
    [
      { pattern: '\\{1,2\\}', expected: ['{1,2}'] },
      { pattern: '{1\\,2}', expected: ['{1,2}'] },
      { pattern: '\\}{1,2}', expected: ['}1', '}2'] },
      { pattern: '\\{{1,2}', expected: ['{1', '{2'] },
      { pattern: '{1,2}\\}', expected: ['1}', '2}'] },
      { pattern: '{1,2}\\{', expected: ['1{', '2{'] },
      { pattern: '{\\,1,2}', expected: [',1', '2'] },
      { pattern: '{1\\,,2}', expected: ['1,', '2'] },
      { pattern: '{1,\\,2}', expected: ['1', ',2'] },
      { pattern: '{1,2\\,}', expected: ['1', '2,'] },
      { pattern: '\\\\{1,2}', expected: ['\\1', '\\2'] },
      { pattern: '\\{1..2\\}', expected: ['{1..2}'] },
    ],
  ],
  [
    'no_escape_tests',
    [
      { pattern: '\\{1,2}', escape: false, expected: ['\\1', '\\2'] },
      { pattern: '{1,2\\}', escape: false, expected: ['1', '2\\'] },
      { pattern: '{1\\,2}', escape: false, expected: ['1\\', '2'] },
      { pattern: '{\\,1,2}', escape: false, expected: ['\\', '1', '2'] },
      { pattern: '{1\\,,2}', escape: false, expected: ['1\\', '', '2'] },
      { pattern: '{1,\\,2}', escape: false, expected: ['1', '\\', '2'] },
      { pattern: '{1,2\\,}', escape: false, expected: ['1', '2\\', ''] },
      { pattern: '\\{1..2\\}', escape: false, expected: ['\\{1..2\\}'] },
    ],
  ],
  [
    'test_zero_padding',
    [
      { pattern: '{00..10}', check: 'first2', expected: ['00', '01'] },
      { pattern: '{10..00}', check: 'last2', expected: ['01', '00'] },
      { pattern: '{0..010}', check: 'first2', expected: ['000', '001'] },
      { pattern: '{01..1000}', check: 'first1', expected: ['0001'] },
    ],
  ],
  [
    'test_zero_single_digit',
    [
      { pattern: '{0..10}', check: 'first2', expected: ['0', '1'] },
      { pattern: '{10..0}', check: 'last2', expected: ['1', '0'] },
    ],
  ],
  [
    'test_negative_zero',
    [
      { pattern: '{-0..1}', expected: ['0', '1'] },
      { pattern: '{1..-0}', expected: ['1', '0'] },
      { pattern: '{0..-0}', expected: ['0'] },
    ],
  ],
  [
    'doctests',
    [
      { pattern: 'item{1..3}', expected: ['item1', 'item2', 'item3'] },
      { pattern: '{a..c}', expected: ['a', 'b', 'c'] },
      { pattern: 'index.html{,.backup}', expected: ['index.html', 'index.html.backup'] },
      { pattern: 'python{2.{5..7},3.{2,3}}', expected: ['python2.5', 'python2.6', 'python2.7', 'python3.2', 'python3.3'] },
      { pattern: '{07..10}', expected: ['07', '08', '09', '10'] },
      { pattern: '{a..g..2}', expected: ['a', 'c', 'e', 'g'] },
      { pattern: '{4..1}', expected: ['4', '3', '2', '1'] },
      { pattern: '{2..-1}', expected: ['2', '1', '0', '-1'] },
      { pattern: '{1{2,3}', expected: null },
      { pattern: '{1\\{2,3}', expected: ['1{2', '3'] },
      { pattern: '\\{1,2}', escape: false, expected: ['\\1', '\\2'] },
    ],
  ],
  [
    // Not in braceexpand's suite: corners of its grammar met by shard lists, results from running braceexpand 0.1.7.
    'more',
    [
      { pattern: '{c..A}', expected: chars('cbaZYXWVUTSRQPONMLKJIHGFEDCBA') },
      { pattern: '{A..e..5}', expected: ['A', 'F', 'K', 'P', 'U', 'Z', 'e'] },
      { pattern: '{z..A..10}', expected: ['z', 'p', 'f', 'V', 'L', 'B'] },
      { pattern: '{-3..3..2}', expected: ['-3', '-1', '1', '3'] },
      { pattern: '{0001..3}', expected: ['0001', '0002', '0003'] },
      { pattern: '{-05..5..5}', expected: ['-05', '000', '005'] },
      {
        pattern: 'shard-{a,b}-{000..002}.tar',
        expected: ['shard-a-000.tar', 'shard-a-001.tar', 'shard-a-002.tar', 'shard-b-000.tar', 'shard-b-001.tar', 'shard-b-002.tar'],
      },
      { pattern: '${a,b}', expected: ['$a', '$b'] },
      { pattern: '{a,b}}{', expected: ['a}{', 'b}{'] },
      { pattern: 'x}{y', expected: ['x}{y'] },
      { pattern: '{1..3..}', expected: ['{1..3..}'] },
      { pattern: '{1...3}', expected: ['{1...3}'] },
      { pattern: '{ 1..3}', expected: ['{ 1..3}'] },
      { pattern: '{aa..c}', expected: ['{aa..c}'] },
      { pattern: '{1..2}{a..b}', expected: ['1a', '1b', '2a', '2b'] },
      { pattern: 'a\\', expected: ['a\\'] },
      { pattern: '\\a\\\\b', expected: ['a\\b'] },
      { pattern: '{x,\\}}', expected: ['x', '}'] },
      { pattern: '{99999999999999999998..99999999999999999999}', expected: ['99999999999999999998', '99999999999999999999'] },
    ],
  ],
];
