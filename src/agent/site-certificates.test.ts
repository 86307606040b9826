import 'reflect-metadata';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HoxError } from '../shared/errors.js';
import { createLocalCa, issueServerCertificate, type LocalCa } from '../shared/pki/local-ca.js';
import type { HeldCertificate } from './partition-secret.js';
import { siteCertificateFiles, type CertificateStatus, type SiteCertificateAsk } from './site-certificates.js';

const DAY = 86_400_000;

/** A master stand-in that signs with a local CA, counts what it was asked, and refuses what it is told to. */
function issuer(ca: LocalCa, refuse?: HoxError) {
  const asked: SiteCertificateAsk[] = [];
  return {
    asked,
    issue: async (ask: SiteCertificateAsk) => {
      asked.push(ask);
      if (refuse !== undefined) throw refuse;
      const certificate = await issueServerCertificate({
        ca,
        publicKeyPem: ask.public_key_pem,
        commonName: ask.dns_names[0] ?? ask.ip_addresses[0] ?? 'x',
        dnsNames: ask.dns_names,
        ipAddresses: ask.ip_addresses,
        validityMs: ask.lifetime_days * DAY,
      });
      return { certificate, ca_certificates: ca.certificatePem, not_after: '' };
    },
  };
}

const file = (files: { path: string; content: string }[], path: string) => files.find((f) => f.path === path)?.content;
const statusOf = (files: { path: string; content: string }[]) =>
  JSON.parse(file(files, 'certificates/status.json')!) as Record<string, CertificateStatus>;

describe('siteCertificateFiles', () => {
  it('asks once, keeps the certificate until two thirds of its life, and asks again after or for new names', async () => {
    const ca = await createLocalCa('test sites CA', 'tests');
    const master = issuer(ca);
    const specs = [{ name: 'site-a', dnsNames: ['A.example'], days: 3 }];
    const first = await siteCertificateFiles({ specs, held: {}, nowMs: Date.now(), issue: master.issue });
    expect(master.asked).toHaveLength(1);
    expect(master.asked[0]!.dns_names).toEqual(['a.example']);
    expect(first.changed).toBe(true);
    const leaf = new X509Certificate(file(first.files, 'certificates/site-a.crt')!);
    expect(leaf.subjectAltName).toBe('DNS:a.example');
    expect(leaf.checkPrivateKey(createPrivateKey(file(first.files, 'certificates/site-a.key')!))).toBe(true);
    expect(first.files.find((f) => f.path === 'certificates/site-a.key')!.mode).toBe(0o600);
    expect(first.files.every((f) => f.reload === true)).toBe(true);
    expect(file(first.files, 'certificates/ca.crt')).toBe(ca.certificatePem);
    expect(statusOf(first.files)['site-a']!.ok).toBe(true);
    // The key comes before its certificate, so a certificate on disk always has its key.
    const paths = first.files.map((f) => f.path);
    expect(paths.indexOf('certificates/site-a.key')).toBeLessThan(paths.indexOf('certificates/site-a.crt'));

    const held = first.held['site-a']!;
    const lifeMs = held.notAfterMs - held.notBeforeMs;
    const kept = await siteCertificateFiles({
      specs,
      held: first.held,
      nowMs: held.notBeforeMs + lifeMs * 0.6,
      issue: master.issue,
    });
    expect(master.asked).toHaveLength(1);
    expect(kept.changed).toBe(false);
    expect(file(kept.files, 'certificates/site-a.crt')).toBe(held.chainPem);

    const renewed = await siteCertificateFiles({
      specs,
      held: first.held,
      nowMs: held.notBeforeMs + lifeMs * 0.7,
      issue: master.issue,
    });
    expect(master.asked).toHaveLength(2);
    expect(renewed.held['site-a']!.keyPem).not.toBe(held.keyPem);

    await siteCertificateFiles({
      specs: [{ name: 'site-a', dnsNames: ['a.example', 'b.example'], days: 3 }],
      held: first.held,
      nowMs: Date.now(),
      issue: master.issue,
    });
    expect(master.asked.at(-1)!.dns_names).toEqual(['a.example', 'b.example']);
  });

  it('says a refusal, keeps a valid certificate when a renewal fails, and drops what the plan no longer asks', async () => {
    const ca = await createLocalCa('test sites CA', 'tests');
    const refused = issuer(ca, new HoxError('HOX_FORBIDDEN', "dns_names: 'a.example' belongs to another site"));
    const specs = [{ name: 'site-a', dnsNames: ['a.example'] }];
    const none = await siteCertificateFiles({ specs, held: {}, nowMs: Date.now(), issue: refused.issue });
    expect(statusOf(none.files)).toEqual({
      'site-a': { ok: false, error: "dns_names: 'a.example' belongs to another site", refused: true },
    });
    expect(none.files.some((f) => f.path.endsWith('.crt'))).toBe(false);

    const good = await siteCertificateFiles({ specs, held: {}, nowMs: Date.now(), issue: issuer(ca).issue });
    const held: Record<string, HeldCertificate> = good.held;
    const lateMs = held['site-a']!.notBeforeMs + (held['site-a']!.notAfterMs - held['site-a']!.notBeforeMs) * 0.8;
    const down = issuer(ca, new HoxError('HOX_MASTER_UNREACHABLE', 'master unreachable'));
    const stillValid = await siteCertificateFiles({ specs, held, nowMs: lateMs, issue: down.issue });
    expect(down.asked).toHaveLength(1);
    expect(stillValid.held['site-a']).toEqual(held['site-a']);
    expect(statusOf(stillValid.files)['site-a']).toMatchObject({
      ok: true,
      warning: 'not renewed: master unreachable',
    });
    const expired = await siteCertificateFiles({
      specs,
      held,
      nowMs: held['site-a']!.notAfterMs + 1,
      issue: down.issue,
    });
    expect(statusOf(expired.files)['site-a']).toMatchObject({
      ok: false,
      refused: false,
    });
    expect(expired.files.some((f) => f.path.endsWith('.crt'))).toBe(false);

    const dropped = await siteCertificateFiles({ specs: [], held, nowMs: Date.now(), issue: down.issue });
    expect(dropped.changed).toBe(true);
    expect(dropped.held).toEqual({});
    expect(dropped.files).toEqual([]);
  });

  it('refuses names that are not usable file names, or reserved, or repeated', async () => {
    const ca = await createLocalCa('test sites CA', 'tests');
    for (const name of ['../x', 'ca', 'status', '', 'a/b'])
      await expect(
        siteCertificateFiles({
          specs: [{ name, dnsNames: ['a.example'] }],
          held: {},
          nowMs: 0,
          issue: issuer(ca).issue,
        }),
      ).rejects.toThrow(/not a usable certificate name/);
    await expect(
      siteCertificateFiles({
        specs: [
          { name: 'x', dnsNames: ['a.example'] },
          { name: 'x', dnsNames: ['b.example'] },
        ],
        held: {},
        nowMs: Date.now(),
        issue: issuer(ca).issue,
      }),
    ).rejects.toThrow(/once/);
  });
});
