import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One test file at a time: what vitest picks by itself on this 2-core machine (cores - 1), written down so
    // that a bigger machine does not change it behind our back. The harnesses give each worker its own
    // partition addresses (src/testing/worker-slot.ts), so two files may run at once: `npx vitest run
    // --maxWorkers=2` (the CLI flag wins over this). Make it 2 here only after full runs with it pass.
    maxWorkers: 1,
    minWorkers: 1,
    reporters: ['default'],
  },
});
