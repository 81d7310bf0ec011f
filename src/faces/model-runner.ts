/**
 * The face models (detector, scorers) run on the library's one model runner
 * (`src/infer/model-runner.ts`): worker thread by default, `thread: 'main'` on request, CUDA
 * then CPU, errors naming the model file and the frame. The one-image interface they need is read
 * by `readGraphInterface` (src/infer/graph.ts), which the clips job's plug-in scorers share.
 */
export { type GraphInterface, readGraphInterface } from '../infer/graph.js';
export { ModelRunner, openModelRunner } from '../infer/model-runner.js';
