import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalCa, issueServerCertificate, type LocalCa } from './local-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'local-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let ca: LocalCa;
let other: LocalCa;
beforeAll(async () => {
  ca = await createLocalCa('hyper_db cluster CA', 'hyper_db');
  other = await createLocalCa('hyper_db cluster CA', 'hyper_db');
});

function serverKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}

/** `openssl verify -x509_strict` (openssl is a dependency of PostgreSQL: always there where the tests run). */
async function opensslVerify(caPem: string, certPem: string): Promise<string> {
  writeFileSync(join(dir, 'ca.pem'), caPem);
  writeFileSync(join(dir, 'cert.pem'), certPem);
  const { stdout } = await promisify(execFile)('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    join(dir, 'ca.pem'),
    join(dir, 'cert.pem'),
  ]);
  return stdout.trim();
}

describe('a local CA', () => {
  it('is a self-signed CA certificate with its key, that Node and OpenSSL accept; each one is new', async () => {
    const cert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe(cert.issuer);
    expect(cert.subject).toMatch(/^CN=hyper_db cluster CA [0-9a-f]{8}\nO=hyper_db$/);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(ca.privateKeyPem))).toBe(true);
    expect(await opensslVerify(ca.certificatePem, ca.certificatePem)).toMatch(/: OK$/);
    expect(other.certificatePem).not.toBe(ca.certificatePem);
    expect(other.privateKeyPem).not.toBe(ca.privateKeyPem);
  });
});

describe('server certificates of a local CA', () => {
  it('are signed by the CA, for the key sent and the addresses given, and verify with OpenSSL', async () => {
    const key = serverKey();
    const pem = await issueServerCertificate({
      ca,
      publicKeyPem: key.publicKeyPem,
      commonName: 'member-1',
      ipAddresses: ['127.0.0.11', '127.0.0.2'],
      validityMs: 86_400_000,
    });
    const cert = new X509Certificate(pem);
    const caCert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=member-1\nO=hyper_db');
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(key.privateKey)).toBe(true);
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.11, IP Address:127.0.0.2');
    expect(cert.checkIP('127.0.0.2')).toBe('127.0.0.2');
    expect(cert.checkIP('127.0.0.12')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    const lifetime = Date.parse(cert.validTo) - Date.now();
    expect(lifetime).toBeGreaterThan(86_400_000 - 60_000);
    expect(lifetime).toBeLessThanOrEqual(86_400_000);
    expect(await opensslVerify(ca.certificatePem, pem)).toMatch(/: OK$/);
  });

  it('each get a serial of their own, and are not accepted under another CA', async () => {
    const request = {
      ca,
      publicKeyPem: serverKey().publicKeyPem,
      commonName: 'member-2',
      ipAddresses: ['127.0.0.12'],
      validityMs: 3_600_000,
    };
    const one = new X509Certificate(await issueServerCertificate(request));
    const two = new X509Certificate(await issueServerCertificate(request));
    expect(one.serialNumber).not.toBe(two.serialNumber);
    expect(one.verify(new X509Certificate(other.certificatePem).publicKey)).toBe(false);
    await expect(opensslVerify(other.certificatePem, one.toString())).rejects.toThrow(/unable to get local issuer/);
  });

  it('refuses what is not an IPv4 address or a DNS name, and no name at all; names a DNS name it is given', async () => {
    const request = { ca, publicKeyPem: serverKey().publicKeyPem, commonName: 'x', validityMs: 1000 };
    await expect(issueServerCertificate({ ...request, ipAddresses: ['db.example'] })).rejects.toThrow(
      /not an IPv4 address/,
    );
    await expect(issueServerCertificate({ ...request, ipAddresses: [] })).rejects.toThrow(
      /at least one name or address/,
    );
    for (const bad of ['Video.Test', 'a..b', '-a.test', 'a b', '*.*.test', 'x'.repeat(64) + '.test'])
      await expect(issueServerCertificate({ ...request, ipAddresses: [], dnsNames: [bad] })).rejects.toThrow(
        /not a DNS name/,
      );
    const named = new X509Certificate(
      await issueServerCertificate({ ...request, ipAddresses: [], dnsNames: ['video.test', '*.cdn.test'] }),
    );
    expect(named.subjectAltName).toBe('DNS:video.test, DNS:*.cdn.test');
  });
});
