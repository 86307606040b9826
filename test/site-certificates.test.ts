/**
 * Site certificates (issue 15: hyper_cdn's sites) on both stores: issued by the sites CA, which is not the platform
 * CA, only for host names a site hosted in the asking instance's tree declared first, platform-wide, and for the
 * instance's own addresses; to the instance (or its node), nobody else.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { expect, it } from 'vitest';
import type { MasterClient } from '../src/client/master-client.js';
import { addTestNode } from '../src/testing/test-master.js';
import { expectError, instanceClient, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

function publicKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();
}

const ask = (client: MasterClient, instanceGuid: string, names: { dns?: string[]; ip?: string[] }) =>
  client.call('issueSiteCertificate', {
    instance_guid: instanceGuid,
    dns_names: names.dns ?? [],
    ip_addresses: names.ip ?? [],
    public_key_pem: publicKeyPem(),
    lifetime_days: 20,
  });

describeEachStore('site certificates', (env) => {
  it('come from the sites CA, for names a site of the tree declared first and the partition own addresses', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 4, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const { token: bobToken } = await m.admin.call('createUser', { name: 'bob' });
    const bob = m.admin.withToken(bobToken);

    // Two hosts (two CDNs' roots), each in its own tree, and sites on them.
    const cdnA = await request(m.admin, 'cdn-a');
    const cdnB = await request(m.admin, 'cdn-b');
    await request(alice, 'alice-site', {
      shared: true,
      sla_parameters: { instance_guid: cdnA.instance_guid },
      parameters: { domains: ['shop.example', 'WWW.shop.example'], origin: 'http://127.0.0.1:1' },
    });
    // Bob declares alice's name later, on the other CDN: the first claim keeps it.
    await request(bob, 'bob-site', {
      shared: true,
      sla_parameters: { instance_guid: cdnB.instance_guid },
      parameters: { domains: ['shop.example', 'bob.example'], origin: 'http://127.0.0.1:1' },
    });
    const asA = await instanceClient(n1.client, cdnA.instance_guid);
    const asB = await instanceClient(n1.client, cdnB.instance_guid);

    const given = await ask(asA, cdnA.instance_guid, { dns: ['shop.example', 'www.shop.example'] });
    const [leafPem, issuerPem] = given.certificate.split(/(?=-----BEGIN)/);
    const leaf = new X509Certificate(leafPem!);
    const issuer = new X509Certificate(issuerPem!);
    expect(leaf.subjectAltName).toBe('DNS:shop.example, DNS:www.shop.example');
    expect(leaf.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(leaf.subject).toContain('OU=site');
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBeLessThanOrEqual(20 * 86_400_000 + 600_000);
    const root = new X509Certificate(given.ca_certificates);
    expect(root.subject).toContain('HyperOpenX sites root CA');
    expect(leaf.verify(issuer.publicKey) && issuer.verify(root.publicKey)).toBe(true);

    // Not the platform CA: nothing that trusts the platform's root trusts a site's certificate.
    const bundle = (await (await fetch(`${m.url}/pki/trust-bundle`)).json()) as { roots: string[] };
    for (const pem of bundle.roots) {
      const platformRoot = new X509Certificate(pem);
      expect(platformRoot.fingerprint256).not.toBe(root.fingerprint256);
      expect(issuer.verify(platformRoot.publicKey)).toBe(false);
    }

    // The same name for the tree that declared it second: refused; its own name is fine.
    await expectError(ask(asB, cdnB.instance_guid, { dns: ['shop.example'] }), 'HOX_FORBIDDEN', /declared it first/);
    expect((await ask(asB, cdnB.instance_guid, { dns: ['bob.example'] })).certificate).toContain('BEGIN CERTIFICATE');
    // A name no site declares (the master's, say), a wildcard, another partition's address: refused.
    await expectError(ask(asA, cdnA.instance_guid, { dns: ['localhost'] }), 'HOX_FORBIDDEN', /no site/);
    await expectError(ask(asA, cdnA.instance_guid, { dns: ['*.shop.example'] }), 'HOX_BAD_REQUEST', /wildcard/);
    const ipB = cdnB.ip_list[0]![1]!;
    const ipA = cdnA.ip_list[0]![1]!;
    await expectError(ask(asA, cdnA.instance_guid, { ip: [ipB] }), 'HOX_FORBIDDEN', /not an address/);
    const control = new X509Certificate(
      (await ask(asA, cdnA.instance_guid, { ip: [ipA] })).certificate.split(/(?=-----BEGIN)/)[0]!,
    );
    expect(control.subjectAltName).toBe(`IP Address:${ipA}`);
    // Only the instance itself (or its node): not another instance, not the sites' owners.
    await expectError(ask(asB, cdnA.instance_guid, { dns: ['shop.example'] }), 'HOX_INSTANCE_NOT_FOUND');
    await expectError(ask(alice, cdnA.instance_guid, { dns: ['shop.example'] }), 'HOX_FORBIDDEN', /may not call/);

    // Alice's site destroyed: the name is free, and Bob's tree, which declares it, may have it.
    await request(alice, 'alice-site', {
      shared: true,
      state: 'destroyed',
      sla_parameters: { instance_guid: cdnA.instance_guid },
      parameters: { domains: ['shop.example'], origin: 'http://127.0.0.1:1' },
    });
    await expectError(ask(asA, cdnA.instance_guid, { dns: ['shop.example'] }), 'HOX_FORBIDDEN');
    expect((await ask(asB, cdnB.instance_guid, { dns: ['shop.example'] })).certificate).toContain('BEGIN');
  });

  it('renew the sites CA itself: an issuance past half its issuing CA life makes a new one under the same root', async () => {
    let nowMs = Date.now();
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const cdn = await request(m.admin, 'cdn');
    await request(m.admin, 'site', {
      shared: true,
      sla_parameters: { instance_guid: cdn.instance_guid },
      parameters: { domains: ['a.example'], origin: 'http://127.0.0.1:1' },
    });
    const asCdn = await instanceClient(n1.client, cdn.instance_guid);
    const issuerOf = (chain: string) => new X509Certificate(chain.split(/(?=-----BEGIN)/)[1]!);
    const first = await ask(asCdn, cdn.instance_guid, { dns: ['a.example'] });
    expect(issuerOf((await ask(asCdn, cdn.instance_guid, { dns: ['a.example'] })).certificate).serialNumber).toBe(
      issuerOf(first.certificate).serialNumber,
    );
    nowMs += 200 * 86_400_000; // the issuing CA lives a year: less than half of it is left
    const later = await ask(asCdn, cdn.instance_guid, { dns: ['a.example'] });
    const [oldIssuer, newIssuer] = [issuerOf(first.certificate), issuerOf(later.certificate)];
    expect(newIssuer.serialNumber).not.toBe(oldIssuer.serialNumber);
    expect(newIssuer.subject).toContain('HyperOpenX sites issuing CA');
    expect(newIssuer.subject).not.toBe(oldIssuer.subject);
    expect(later.ca_certificates).toBe(first.ca_certificates);
    expect(newIssuer.verify(new X509Certificate(first.ca_certificates).publicKey)).toBe(true);
  });
});
