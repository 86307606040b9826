import { defineConfig } from 'vitest/config';

// The long fault scenarios (test-long/): run after the main suite by `npm run check`.
export default defineConfig({
  test: {
    include: ['test-long/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // One file at a time: each runs whole clusters (hyperdb-faults' timings, multi-machine's five machines),
    // and two at once on a 2-core machine would measure each other.
    fileParallelism: false,
    reporters: ['default'],
  },
});
