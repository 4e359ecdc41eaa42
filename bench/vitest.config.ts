import { defineConfig } from 'vitest/config';

/** Benchmarks report ratios against a baseline measured in the same run; they assert nothing about speed. */
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    fileParallelism: false,
  },
});
