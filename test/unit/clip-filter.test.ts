import { describe, expect, it } from 'vitest';
import { countReasons, decide, failReason, parseFilter } from '../../src/clips/filter.js';

const COLS = ['motion', 'black', 'text_area'];

describe('parseFilter', () => {
  it('parses terms with every operator, spaces allowed', () => {
    expect(parseFilter('motion>=0.02, black <= 0.5,duration>2,num_frames<100,width==640,fps!=25', COLS)).toEqual([
      { column: 'motion', op: '>=', value: 0.02 },
      { column: 'black', op: '<=', value: 0.5 },
      { column: 'duration', op: '>', value: 2 },
      { column: 'num_frames', op: '<', value: 100 },
      { column: 'width', op: '==', value: 640 },
      { column: 'fps', op: '!=', value: 25 },
    ]);
    expect(parseFilter('', COLS)).toEqual([]);
  });

  it.each([
    ['motion=>0.02', /filter term 'motion=>0.02' is not <column><op><number>/],
    ['motion>=fast', /filter term 'motion>=fast' compares with 'fast', which is not a number/],
    ['blur<=3', /filter term 'blur<=3' names 'blur', which is not a score this run computes/],
    ['motion>=0.02,>=1', /filter term '>=1' is not/],
    ['motion 0.02', /filter term 'motion 0.02' is not/],
  ])('%s is refused, naming the bad term', (text, message) => {
    expect(() => parseFilter(text, COLS, '--filter')).toThrow(message);
  });

  it('a score this run does not compute is refused; rules as objects are checked too', () => {
    expect(() => parseFilter('motion>=0.1', [], '--filter')).toThrow(/--filter: filter term 'motion>=0.1' names 'motion'/);
    expect(() => parseFilter([{ column: 'motion', op: '>=', value: Number.NaN }], COLS)).toThrow(/not a number/);
    expect(parseFilter([{ column: 'duration', op: '>=', value: 2 }], [])).toEqual([{ column: 'duration', op: '>=', value: 2 }]);
  });
});

describe('decide', () => {
  const rules = parseFilter('motion>=0.02,black<=0.5,duration>=2', COLS);
  const clip = (motion: number, black: number, seconds: number) => ({ start_s: 10, end_s: 10 + seconds, num_frames: 25 * seconds, scores: { motion, black } });

  it('keeps a clip passing every rule; a failing one gets every failed rule negated', () => {
    expect(decide(rules, clip(0.05, 0, 3))).toEqual({ kept: true, reason: '' });
    expect(decide(rules, clip(0.01, 0.9, 3))).toEqual({ kept: false, reason: 'motion<0.02;black>0.5' });
    expect(decide(rules, clip(0.05, 0, 1.5))).toEqual({ kept: false, reason: 'duration<2' });
  });

  it('a score not known yet gives no verdict unless a known rule fails; an empty score fails its rule', () => {
    expect(decide(rules, { start_s: 0, end_s: 3, num_frames: 75 })).toBeNull();
    expect(decide(rules, { start_s: 0, end_s: 1, num_frames: 25 })).toEqual({ kept: false, reason: 'duration<2' });
    expect(decide(parseFilter('text_area<=0.1', COLS), { start_s: 0, end_s: 3, num_frames: 75, scores: { text_area: '' } })).toEqual({
      kept: false,
      reason: 'text_area>0.1',
    });
    expect(decide(parseFilter('duration>=2', COLS), { start_s: 0, end_s: 1, num_frames: 25 })).toEqual({ kept: false, reason: 'duration<2' });
  });

  it('negations and countReasons', () => {
    expect(parseFilter('a==1,a!=1,a>1,a<1', ['a']).map(failReason)).toEqual(['a!=1', 'a==1', 'a<=1', 'a>=1']);
    expect(
      countReasons([
        { kept: false, filter_reason: 'motion<0.02;black>0.5' },
        { kept: false, filter_reason: 'motion<0.02' },
        { kept: true, filter_reason: '' },
        {},
      ]),
    ).toEqual({ 'motion<0.02': 2, 'black>0.5': 1 });
  });
});
