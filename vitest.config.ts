import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/longest-first.js';

// The suite in three folders by speed (docs/testing.md):
//   test/unit  pure logic and small real parts (tar, LMDB, ONNX sessions on tiny models): `npm run test:unit`, under a minute;
//   test/jobs  the jobs and the CLI end to end, on real ffmpeg, Redis and the built dist/;
//   test/zoo   the media zoo and the Python/PyAV references.
// `npm test` runs all three (CI).
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Hermetic: a model cache on the developer's machine must not change the jobs' defaults in tests
  // (faces takes a cached real detector by default); tests that need a cache make their own.
  env: { CLIPSTREAM_HOME: '/nonexistent/clipstream-test-model-cache' },
};

export default defineConfig({
  test: {
    // ffmpeg and ONNX Runtime already use both cores; more test workers only thrash.
    maxWorkers: 2,
    fileParallelism: true,
    // Longest files first, so that two workers finish together (test/longest-first.ts).
    sequence: { sequencer: LongestFirst },
    // Builds dist/ once per run, for the jobs and zoo tests that run the CLI; `npm run test:unit` skips it.
    globalSetup: ['test/global-setup.ts'],
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { ...shared, name: 'jobs', include: ['test/jobs/**/*.test.ts'] } },
      { test: { ...shared, name: 'zoo', include: ['test/zoo/**/*.test.ts'] } },
    ],
  },
});
