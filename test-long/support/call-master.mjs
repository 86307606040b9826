// @ts-check
/**
 * Run inside a machine of the lab (`ip netns exec NS node call-master.mjs <call.json>`): one call to a
 * master route as a node makes it, `{url, path, token, ca, key?, cert?, body}` (the client certificate
 * only when key and cert are given); prints `{status, body}` or `{error}` as one JSON line.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const call = JSON.parse(readFileSync(String(process.argv[2]), 'utf8'));
const payload = JSON.stringify(call.body ?? {});
const req = request(new URL(call.path, call.url), {
  method: 'POST',
  ca: call.ca,
  ...(call.key && call.cert ? { key: call.key, cert: call.cert } : {}),
  headers: {
    authorization: `Bearer ${call.token}`,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  },
  timeout: 10_000,
});
req.on('response', (res) => {
  /** @type {Buffer[]} */
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () =>
    process.stdout.write(`${JSON.stringify({ status: res.statusCode, body: Buffer.concat(chunks).toString() })}\n`),
  );
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (error) => process.stdout.write(`${JSON.stringify({ error: error.message })}\n`));
req.end(payload);
