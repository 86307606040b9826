/**
 * Docs that can rot are generated or tested: docs/api.md and docs/errors.md
 * must be exactly what the generator renders from the route table, the
 * schemas and the error catalogue; docs/glossary.md must define the frozen
 * vocabulary.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderApiDocs } from '../src/protocol/api-docs.js';
import { ERROR_CATALOGUE } from '../src/shared/errors.js';
import { renderErrorDocs } from '../src/shared/error-docs.js';

const REGENERATE = 'run npx tsx scripts/gen-api-docs.ts';

function readDoc(name: string): string {
  return readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');
}

describe('generated docs', () => {
  it('docs/api.md matches the route table and schemas', () => {
    expect(readDoc('api.md'), REGENERATE).toBe(renderApiDocs());
  });

  it('docs/errors.md matches the error catalogue', () => {
    expect(readDoc('errors.md'), REGENERATE).toBe(renderErrorDocs());
  });

  it('docs/errors.md lists every code with its status, retryability and description', () => {
    const text = readDoc('errors.md');
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      const row = text.split('\n').find((line) => line.startsWith(`| \`${code}\` `));
      expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
      const cells = (row ?? '').split(' | ').map((c) => c.replace(/^\|?\s*|\s*\|?$/g, ''));
      expect(cells.slice(1), `row of ${code}`).toEqual([
        String(spec.status),
        spec.retryable ? 'yes' : 'no',
        spec.description,
      ]);
    }
  });
});

describe('docs/glossary.md', () => {
  const text = readDoc('glossary.md');
  const glossary = text.toLowerCase();
  const headings = new Set(
    text
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .map((line) =>
        line
          .replace(/^#+\s*/, '')
          .trim()
          .toLowerCase(),
      ),
  );
  const terms = [
    'compute node',
    'partition',
    'software release',
    'software installation',
    'instance tree',
    'instance',
    'shared instance',
    'promise',
    'connection parameters',
  ];
  for (const term of terms) {
    it(`defines '${term}'`, () => {
      expect(glossary, `docs/glossary.md does not mention '${term}'`).toContain(term);
      expect(headings.has(term), `docs/glossary.md has no heading '${term}'`).toBe(true);
    });
  }
});
