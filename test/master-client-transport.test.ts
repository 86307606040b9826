/**
 * The master client's transport (src/client/http-transport.ts, node:http): what
 * it sends and how each way an exchange can go wrong reaches the caller, against
 * real HTTP servers on 127.0.0.1 that misbehave on purpose. The client against
 * a real master is covered by every other test that uses it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { HoxError } from '../src/shared/errors.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A server on 127.0.0.1 answering with `handle`; returns its base URL. */
async function serve(handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function failure(promise: Promise<unknown>): Promise<HoxError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HoxError);
  return error as HoxError;
}

describe('master client transport', () => {
  it('posts the JSON body with its length, type and bearer token, and reads the JSON answer', async () => {
    const seen: { method?: string; url?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const url = await serve((req, body, res) => {
      Object.assign(seen, { method: req.method, url: req.url, headers: req.headers, body: body.toString() });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result_list: [], é: 'ü' }));
    });
    const client = new MasterClient({ url: `${url}/`, token: 'hox_user_secret' });
    const answer = await client.call('listTreeStatus', {});
    expect(answer).toEqual({ result_list: [], é: 'ü' });
    expect(seen.method).toBe('POST');
    expect(seen.url).toMatch(/^\/hox/);
    expect(seen.headers?.authorization).toBe('Bearer hox_user_secret');
    expect(seen.headers?.['content-type']).toBe('application/json');
    expect(seen.headers?.['content-length']).toBe(String(Buffer.byteLength('{}')));
    expect(seen.body).toBe('{}');
  });

  it("turns the master's error body into the same HoxError, and a body that is not JSON into HOX_INTERNAL", async () => {
    let reply: [number, string] = [404, JSON.stringify({ type: 'HOX_INSTANCE_TREE_NOT_FOUND', title: "tree 'x'" })];
    const url = await serve((_req, _body, res) => res.writeHead(reply[0]).end(reply[1]));
    const client = new MasterClient({ url, token: 't' });
    const notFound = await failure(client.call('listTreeStatus', {}));
    expect(notFound.code).toBe('HOX_INSTANCE_TREE_NOT_FOUND');
    expect(notFound.message).toBe("tree 'x'");
    reply = [502, '<html>bad gateway</html>'];
    const garbled = await failure(client.call('listTreeStatus', {}));
    expect(garbled.code).toBe('HOX_INTERNAL');
    expect(garbled.message).toBe('master answered 502 with a body that is not JSON');
  });

  it('is HOX_MASTER_UNREACHABLE on a closed port, a timeout, and a connection cut in the middle of the answer', async () => {
    const closed = await failure(
      new MasterClient({ url: 'http://127.0.0.1:9', token: 't' }).call('listTreeStatus', {}),
    );
    expect(closed.code).toBe('HOX_MASTER_UNREACHABLE');
    expect(closed.message).toContain('http://127.0.0.1:9 is unreachable');
    expect(closed.cause).toBeInstanceOf(Error);

    const silent = await serve(() => undefined); // never answers
    const timedOut = await failure(
      new MasterClient({ url: silent, token: 't', timeoutMs: 200 }).call('listTreeStatus', {}),
    );
    expect(timedOut.code).toBe('HOX_MASTER_UNREACHABLE');

    const cut = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('{"result_list": [');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const broken = await failure(new MasterClient({ url: cut, token: 't' }).call('listTreeStatus', {}));
    expect(broken.code).toBe('HOX_MASTER_UNREACHABLE');
  });

  it("honours the caller's abort signal", async () => {
    const silent = await serve(() => undefined);
    const controller = new AbortController();
    const pending = new MasterClient({ url: silent, token: 't' }).call(
      'listTreeStatus',
      {},
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 50);
    expect((await failure(pending)).code).toBe('HOX_MASTER_UNREACHABLE');
  });

  it('uploads, checks and downloads artifacts as raw bytes', async () => {
    const stored = new Map<string, Buffer>();
    const url = await serve((req, body, res) => {
      const sha = req.url!.split('/').pop()!;
      if (req.headers.authorization !== 'Bearer t') return void res.writeHead(401).end('{}');
      if (req.method === 'PUT') {
        expect(req.headers['content-type']).toBe('application/octet-stream');
        stored.set(sha, body);
        return void res.writeHead(200).end(JSON.stringify({ sha256: sha, size_bytes: body.length }));
      }
      const content = stored.get(sha);
      if (content === undefined) return void res.writeHead(404).end(req.method === 'HEAD' ? undefined : '{}');
      res.writeHead(200, { 'content-length': String(content.length) }).end(req.method === 'HEAD' ? undefined : content);
    });
    const client = new MasterClient({ url, token: 't' });
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    expect(await client.hasArtifact('abc')).toBe(false);
    expect(await client.putArtifact('abc', bytes.subarray(1000))).toEqual({ sha256: 'abc', size_bytes: 299_000 });
    expect(await client.hasArtifact('abc')).toBe(true);
    expect((await client.getArtifact('abc')).equals(Buffer.from(bytes.subarray(1000)))).toBe(true);
    expect((await failure(client.withToken('wrong').getArtifact('abc'))).code).not.toBe('HOX_MASTER_UNREACHABLE');
  });

  it('reports health as a boolean, false when nothing listens', async () => {
    const url = await serve((req, _body, res) => res.writeHead(req.url === '/health' ? 200 : 404).end('{}'));
    expect(await new MasterClient({ url }).health()).toBe(true);
    expect(await new MasterClient({ url: 'http://127.0.0.1:9' }).health()).toBe(false);
  });
});
