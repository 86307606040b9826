/**
 * Let's Encrypt's ACME test server (Debian's `pebble`) for the tests, with its mock DNS (`pebble-challtestsrv`)
 * answering every name with one address: pebble validates `http-01` challenges at `http://<that address>:<httpPort>`,
 * as a public CA would at port 80 of the address a name points to. Its own HTTPS uses a certificate of a test CA
 * made here (`caPem`); the certificates it issues chain to a root of its own (`issuedRoots()`).
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalCa, issueServerCertificate } from '../../src/shared/pki/local-ca.js';
import { freePort } from '../../src/testing/free-port.js';

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** What pebble's own HTTPS chains to (give it to the ACME client). */
  caPem: string;
  /** The roots of the certificates pebble issues (what a visitor of the sites trusts). */
  issuedRoots(): Promise<string>;
  /** Its output so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export function havePebble(): boolean {
  return existsSync('/usr/bin/pebble') && existsSync('/usr/bin/pebble-challtestsrv');
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Starts pebble validating `http-01` at `address:httpPort` for every name. */
export async function startPebble(options: { address: string; httpPort: number }): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'hox-pebble-'));
  const ca = await createLocalCa('pebble test CA', 'HyperOpenX tests');
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificate = await issueServerCertificate({
    ca,
    publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    commonName: '127.0.0.1',
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
    validityMs: 86_400_000,
  });
  writeFileSync(join(dir, 'cert.pem'), certificate);
  writeFileSync(join(dir, 'key.pem'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), {
    mode: 0o600,
  });
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: options.httpPort,
        tlsPort: options.httpPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let output = '';
  const children: ChildProcess[] = [];
  const run = (command: string, args: string[], env: Record<string, string>) => {
    const child = spawn(command, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (output = `${output}${chunk.toString()}`.slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    children.push(child);
  };
  run(
    '/usr/bin/pebble-challtestsrv',
    [
      '-defaultIPv4',
      options.address,
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${dnsManagementPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
    ],
    {},
  );
  // No random sleeps before validating, no rejected nonces, no reused authorizations: every order is validated.
  run('/usr/bin/pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
    PEBBLE_AUTHZREUSE: '0',
  });
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try {
      if ((await get(directory, ca.certificatePem)).status === 200) break;
    } catch {
      // not up yet
    }
    if (i >= 100) {
      await stop();
      throw new Error(`pebble did not start:\n${output}`);
    }
    await sleep(100);
  }
  return {
    directory,
    caPem: ca.certificatePem,
    issuedRoots: async () => (await get(`https://127.0.0.1:${managementPort}/roots/0`, ca.certificatePem)).body,
    output: () => output,
    stop,
  };
}
