/** The served OpenAPI document is valid OpenAPI 3.1 and covers every route of the table. */
import { expect, it } from 'vitest';
import { validate } from '@readme/openapi-parser';
import { ROUTES } from '../src/protocol/routes.js';
import { startTestMaster } from '../src/testing/test-master.js';

it('serves a valid OpenAPI document listing every endpoint', async () => {
  const m = await startTestMaster();
  try {
    const doc = (await (await fetch(`${m.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
      openapi: string;
    };
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
    for (const route of Object.values(ROUTES)) expect(Object.keys(doc.paths)).toContain(route.path);
    expect(Object.keys(doc.paths).length).toBe(Object.keys(ROUTES).length + 2);
  } finally {
    await m.stop();
  }
});
