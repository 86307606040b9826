/**
 * SlapOS's JSON-RPC calls as its own test suites make them (POST `/<route>`, a JSON object, one caller), and the
 * checks every one of their tests makes: the status, then the Content-Type, exactly `application/json`.
 * Shared by the ports of SlapOS's master suite and of slapproxy's.
 */
import { expect } from 'vitest';
import type { TestMaster } from '../../src/testing/test-master.js';
import { httpCall } from './http-call.js';

export interface Rpc {
  status: number;
  contentType: string;
  json: Record<string, unknown>;
}

/** One call with `token`; `headers` adds request headers (`x-forwarded-proto`, as behind a TLS proxy). */
export async function rpc(
  m: TestMaster,
  token: string,
  route: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Rpc> {
  const a = await httpCall(Number(new URL(m.url).port), 'POST', `/${route}`, {
    authorization: `Bearer ${token}`,
    body: JSON.stringify(body),
    contentType: 'application/json',
    headers,
  });
  return {
    status: a.status,
    contentType: String(a.headers['content-type']),
    json: JSON.parse(a.body.toString('utf8')) as Record<string, unknown>,
  };
}

/** The status, then the header, exactly; the body. */
export function expectAnswer(r: Rpc, status: number): Record<string, unknown> {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.contentType).toBe('application/json');
  return r.json;
}

/** The usage report of SlapOS's tests (test_ComputeNodeAccess_10), with the transaction's `reference`. */
export const tioxml = (reference: string): string => `<?xml version='1.0' encoding='utf-8'?>
<journal>
<transaction type="Sale Packing List">
<title>Resource consumptions</title>
<start_date></start_date>
<stop_date></stop_date>
<reference>${reference}</reference>
<currency></currency>
<payment_mode></payment_mode>
<category></category>
<arrow type="Administration">
<source></source>
<destination></destination>
</arrow>
<movement>
<resource>CPU Consumption</resource>
<title>Title Sale Packing List Line 1</title>
<reference>slappart0</reference>
<quantity>42.42</quantity>
<price>0.00</price>
<VAT>None</VAT>
<category>None</category>
</movement>
</transaction>
</journal>`;
