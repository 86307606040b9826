import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveClusterCa, issueServerCertificate } from './certificates.js';

const dir = mkdtempSync(join(tmpdir(), 'hyperdb-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function serverKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}

/** `openssl verify -x509_strict`, when openssl is installed (undefined otherwise). */
async function opensslVerify(caPem: string, certPem: string): Promise<string | undefined> {
  writeFileSync(join(dir, 'ca.pem'), caPem);
  writeFileSync(join(dir, 'cert.pem'), certPem);
  try {
    const { stdout } = await promisify(execFile)('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      join(dir, 'ca.pem'),
      join(dir, 'cert.pem'),
    ]);
    return stdout.trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

describe('hyper_db cluster CA', () => {
  it('is derived: the same seed gives the same certificate and key, another seed another CA', () => {
    const a = deriveClusterCa('seed-1');
    expect(deriveClusterCa('seed-1')).toEqual(a);
    const b = deriveClusterCa('seed-2');
    expect(b.certificatePem).not.toBe(a.certificatePem);
    expect(b.privateKeyPem).not.toBe(a.privateKeyPem);
  });

  it('is a self-signed CA certificate that Node and OpenSSL accept', async () => {
    const ca = deriveClusterCa('seed-1');
    const cert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe(cert.issuer);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(ca.privateKeyPem))).toBe(true);
    const verdict = await opensslVerify(ca.certificatePem, ca.certificatePem);
    if (verdict !== undefined) expect(verdict).toMatch(/: OK$/);
  });
});

describe('hyper_db server certificates', () => {
  it('are signed by the CA, for the key sent and the addresses given, and verify with OpenSSL', async () => {
    const ca = deriveClusterCa('seed-1');
    const key = serverKey();
    const pem = issueServerCertificate({
      ca,
      publicKeyPem: key.publicKeyPem,
      commonName: 'member-1',
      ipAddresses: ['127.0.0.11', '127.0.0.2'],
      validityMs: 86_400_000,
    });
    const cert = new X509Certificate(pem);
    const caCert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(false);
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
    const verdict = await opensslVerify(ca.certificatePem, pem);
    if (verdict !== undefined) expect(verdict).toMatch(/: OK$/);
  });

  it('each get a serial of their own, and are not accepted under another CA', () => {
    const ca = deriveClusterCa('seed-1');
    const request = {
      ca,
      publicKeyPem: serverKey().publicKeyPem,
      commonName: 'member-2',
      ipAddresses: ['127.0.0.12'],
      validityMs: 3_600_000,
    };
    const one = new X509Certificate(issueServerCertificate(request));
    const two = new X509Certificate(issueServerCertificate(request));
    expect(one.serialNumber).not.toBe(two.serialNumber);
    expect(one.verify(new X509Certificate(deriveClusterCa('seed-2').certificatePem).publicKey)).toBe(false);
  });

  it('refuses what is not an IPv4 address', () => {
    const ca = deriveClusterCa('seed-1');
    expect(() =>
      issueServerCertificate({
        ca,
        publicKeyPem: serverKey().publicKeyPem,
        commonName: 'x',
        ipAddresses: ['db.example'],
        validityMs: 1000,
      }),
    ).toThrow(/not an IPv4 address/);
  });
});
