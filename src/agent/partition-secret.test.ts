/** Partition secrets: derivation, names, and the store on a real directory. */
import { createHmac, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HoxError } from '../shared/errors.js';
import { PartitionSecretStore, deriveSecret } from './partition-secret.js';

describe('deriveSecret', () => {
  const key = Buffer.alloc(32, 7);

  it('is base64url(HMAC-SHA256(key, name)), 43 characters, one per name', () => {
    const value = deriveSecret(key, 'postgres-password');
    expect(value).toBe(createHmac('sha256', key).update('postgres-password').digest('base64url'));
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deriveSecret(key, 'postgres-password')).toBe(value);
    expect(deriveSecret(key, 'replication')).not.toBe(value);
    expect(deriveSecret(Buffer.alloc(32, 8), 'postgres-password')).not.toBe(value);
  });

  it('accepts letters, digits and _ . : - up to 128 characters, and refuses anything else', () => {
    for (const name of ['a', 'db:main.password_1-x', 'x'.repeat(128)])
      expect(() => deriveSecret(key, name)).not.toThrow();
    for (const name of ['', 'x'.repeat(129), 'with space', 'slash/name', 'é', 'a\nb']) {
      expect(() => deriveSecret(key, name)).toThrow(HoxError);
      expect(() => deriveSecret(key, name)).toThrow(/^secret name .* must match/);
    }
  });
});

describe('PartitionSecretStore', () => {
  let dir: string;

  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'hox-secret-')), 'state');
  });
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('draws 32 bytes once per tenancy, keeps them (mode 0600, directory 0700) across instances of the store', async () => {
    const store = new PartitionSecretStore(dir);
    const first = await store.load('p0', 'guid-a');
    expect(first.length).toBe(32);
    expect(await store.load('p0', 'guid-a')).toEqual(first);
    // Another store on the same directory: an agent restarted.
    expect(await new PartitionSecretStore(dir).load('p0', 'guid-a')).toEqual(first);
    expect(statSync(join(dir, 'p0.secret.json')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(join(dir, 'p0.secret.json'), 'utf8'))).toEqual({
      instanceGuid: 'guid-a',
      secret: first.toString('base64'),
    });

    const other = await store.load('p1', 'guid-b');
    expect(other).not.toEqual(first);
  });

  it('gives a new tenant a new secret: after remove, and for another instance', async () => {
    const store = new PartitionSecretStore(dir);
    const first = await store.load('p0', 'guid-a');
    await store.remove('p0');
    const second = await store.load('p0', 'guid-a');
    expect(second).not.toEqual(first);
    const third = await store.load('p0', 'guid-c');
    expect(third).not.toEqual(second);
    expect(await store.load('p0', 'guid-c')).toEqual(third);
  });

  it('generates a declared certificate authority once per tenancy, keeps it with the secret, drops it with it', async () => {
    const store = new PartitionSecretStore(dir);
    const spec = { 'cluster-ca': { commonName: 'test CA', organization: 'test' } };
    await expect(store.authorities('p0', 'guid-a', spec)).rejects.toThrow(/no secret/);
    const secret = await store.load('p0', 'guid-a');
    const { 'cluster-ca': ca } = await store.authorities('p0', 'guid-a', spec);
    const cert = new X509Certificate(ca!.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toMatch(/^CN=test CA [0-9a-f]{8}\nO=test$/);
    expect(cert.checkPrivateKey(createPrivateKey(ca!.privateKeyPem))).toBe(true);
    // The same CA from another store on the same directory (an agent restart); the secret is unchanged.
    const again = new PartitionSecretStore(dir);
    expect(await again.load('p0', 'guid-a')).toEqual(secret);
    expect(await again.authorities('p0', 'guid-a', spec)).toEqual({ 'cluster-ca': ca });
    expect(statSync(join(dir, 'p0.secret.json')).mode & 0o777).toBe(0o600);
    // Nothing declared, nothing generated.
    expect(await again.authorities('p0', 'guid-a', {})).toEqual({});
    // Another tenant: another CA.
    await store.remove('p0');
    await store.load('p0', 'guid-b');
    const other = await store.authorities('p0', 'guid-b', spec);
    expect(other['cluster-ca']!.certificatePem).not.toBe(ca!.certificatePem);
  });
});
