// ESLint flat config: type-aware rules, and the layering the architecture promises.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.js', 'scripts/*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.test.json', './src/console/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // Plain JavaScript programs of built-in releases and tests' probes (no TypeScript project): the untyped rules only.
    files: ['src/**/*.mjs', 'test-long/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The example apps (examples/*): plain JavaScript ESM programs run by Node, no TypeScript project, and they log
    // to stdout for the platform to collect.
    files: ['examples/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-console': 'off' },
  },
  {
    // The domain and the store never reach the HTTP edge, the CLI or the agent.
    files: ['src/master/**/*.ts', 'src/store/**/*.ts', 'src/shared/**/*.ts', 'src/protocol/**/*.ts'],
    ignores: ['src/master/http/**', 'src/master/create-master.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/agent/**', '**/cli/**', '**/bin/**', '**/client/**', 'fastify'],
              message: 'layering: see docs/architecture.md',
            },
          ],
        },
      ],
    },
  },
  {
    // Master and agent meet only through the protocol module.
    files: ['src/agent/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/master/**', '**/store/**'],
              message: 'the agent talks to the master through src/client only',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/**/*.test.ts', 'src/testing/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', 'no-console': 'off' },
  },
);
