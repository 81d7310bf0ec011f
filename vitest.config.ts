import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // ffmpeg and ONNX Runtime already use both cores; more test workers only thrash.
    maxWorkers: 2,
    fileParallelism: true,
    // Hermetic: a model cache on the developer's machine must not change the jobs' defaults in tests
    // (faces takes a cached real detector by default); tests that need a cache make their own.
    env: { CLIPSTREAM_HOME: '/nonexistent/clipstream-test-model-cache' },
  },
});
