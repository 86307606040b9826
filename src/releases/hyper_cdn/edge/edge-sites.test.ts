import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCertificateEndpoint } from './edge-sites.js';

describe('the certificate endpoint the edge Caddy calls', () => {
  const token = 'a-token-of-the-edge-0123456789abcdef';
  let server: Awaited<ReturnType<typeof startCertificateEndpoint>>;
  let port: number;
  const get = (path: string, method = 'GET') =>
    new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] ?? '' }));
      });
      req.on('error', reject);
      req.end();
    });

  beforeAll(async () => {
    const bundles = new Map([['video.test', 'CERT\nKEY\n']]);
    server = await startCertificateEndpoint({
      host: '127.0.0.1',
      port: 0,
      token,
      sites: { certificateFor: (name) => bundles.get(name.toLowerCase()) },
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it("answers a site's bundle with the token, 204 for a name no site has, 403 without the token", async () => {
    const ok = await get(`/certificate?server_name=Video.test&token=${token}&signature_schemes=403`);
    expect(ok).toMatchObject({ status: 200, body: 'CERT\nKEY\n', type: 'application/x-pem-file' });
    expect((await get(`/certificate?server_name=other.test&token=${token}`)).status).toBe(204);
    expect((await get(`/certificate?server_name=`)).status).toBe(403);
    const wrong = await get(`/certificate?server_name=video.test&token=${token}x`);
    expect(wrong).toMatchObject({ status: 403, body: '' });
    expect((await get(`/certificate?server_name=video.test&token=${token}`, 'POST')).status).toBe(404);
    expect((await get(`/other?token=${token}`)).status).toBe(404);
  });
});
