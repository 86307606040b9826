/**
 * Writes docs/api.md and docs/errors.md from the route table, the schemas and
 * the error catalogue. Run after changing any of them:
 *
 *   npx tsx scripts/gen-api-docs.ts
 *
 * test/docs.test.ts fails until the files match.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderApiDocs } from '../src/protocol/api-docs.js';
import { renderErrorDocs } from '../src/shared/error-docs.js';

const docsDir = fileURLToPath(new URL('../docs/', import.meta.url));
mkdirSync(docsDir, { recursive: true });

const outputs: [string, string][] = [
  ['api.md', renderApiDocs()],
  ['errors.md', renderErrorDocs()],
];
for (const [name, text] of outputs) {
  writeFileSync(`${docsDir}${name}`, text);
  process.stdout.write(`wrote docs/${name}\n`);
}
