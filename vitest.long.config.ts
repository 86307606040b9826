import { defineConfig } from 'vitest/config';

// The long fault scenarios (test-long/): run after the main suite by `npm run check`.
export default defineConfig({
  test: {
    include: ['test-long/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
