import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time: most files spend their time waiting on servers they started, so two halve the
    // suite on 2 cores (1260 s with one, 659 s with two, on the same code: session 12). The harnesses give each
    // worker its own partition addresses, hence ports (src/testing/worker-slot.ts). Written down so
    // that a bigger machine does not change it behind our back; `--maxWorkers=1` runs one file at a time.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
