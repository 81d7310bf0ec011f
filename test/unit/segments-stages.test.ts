import { describe, expect, it } from 'vitest';
import { checkStages, contractOf } from '../../src/stage/contract.js';
import type { FrameModel } from '../../src/segments/model.js';
import { resolveSegmentsOptions } from '../../src/segments/options.js';
import { inferStage, joinStage, prepareStage, remuxStage, segmentsStages, splitStage } from '../../src/segments/stages.js';

// Building the stages touches neither the model nor a file; only running them does.
const ctx = { model: {} as FrameModel, options: resolveSegmentsOptions({ inputs: ['a.mp4'], outputs: ['out/a.mp4'] }, 'model.onnx') };

describe('segments stage contracts', () => {
  it('the job order passes, every stage has a contract', () => {
    const stages = segmentsStages(ctx);
    expect(checkStages(stages, ['input', 'output'])).toBe(stages);
    expect(stages.map((s) => contractOf(s)?.name)).toEqual(['prepare', 'split', 'infer', 'join', 'remux']);
  });

  it('a wrong order fails when built, naming both stages', () => {
    expect(() => checkStages([prepareStage(ctx), joinStage(ctx), inferStage(ctx), remuxStage(ctx)], ['input', 'output'])).toThrow(
      /stage 'join' needs 'segmentsDone', which stage 'infer' adds only after it/,
    );
    expect(() => checkStages([splitStage(ctx), prepareStage(ctx)], ['input', 'output'])).toThrow(/stage 'split' needs 'timeline'.*stage 'prepare'/);
  });

  it('a stage after one that drops what it needs fails, naming both', () => {
    expect(() => checkStages([prepareStage(ctx), inferStage(ctx), joinStage(ctx), remuxStage(ctx), remuxStage(ctx)], ['input', 'output'])).toThrow(
      /stage 'remux' needs 'joined', but stage 'remux' before it drops it/,
    );
  });
});
