/**
 * Certificates of compute nodes and instances (SlapOS's `compute_node_certificate` and
 * `software_instance_certificate`, issue 14) on both stores: issued by the platform CA to their holder only,
 * bounded per holder, revoked by their removal or their instance's destruction, and listed in the CRLs of the
 * trust bundle every verifier fetches.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { expect, it } from 'vitest';
import { caPin } from '../src/shared/pki/ca-pin.js';
import { normalizeSerial, x509 } from '../src/shared/pki/x509.js';
import { addTestNode, type TestMaster } from '../src/testing/test-master.js';
import { expectError, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

/** The serials the served trust bundle's CRLs list (the master's clock must have moved past its cache). */
async function revokedServed(m: TestMaster): Promise<Set<string>> {
  const bundle = (await (await fetch(`${m.url}/pki/trust-bundle`)).json()) as { crls: string[] };
  return new Set(
    bundle.crls.flatMap((pem) => new x509.X509Crl(pem).entries.map((e) => normalizeSerial(e.serialNumber))),
  );
}

function serialOf(chainPem: string): string {
  return normalizeSerial(new x509.X509Certificate(chainPem.split(/(?=-----BEGIN)/)[0]!).serialNumber);
}

describeEachStore('certificates of nodes and instances', (env) => {
  it('are issued to their holder only, bounded, revoked on removal and on destruction, and listed in the CRLs', async () => {
    let nowMs = Date.now();
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const later = () => (nowMs += 61_000); // past the minute the served trust bundle is kept
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 1, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);

    // A node's: its key and a client certificate naming it, from the issuing CA under the platform's root.
    const first = await n1.client.call('nodeCertificate', { computer_guid: 'n1' });
    const chain = first.certificate.split(/(?=-----BEGIN)/);
    expect(chain).toHaveLength(2);
    const leaf = new X509Certificate(chain[0]!);
    const issuer = new X509Certificate(chain[1]!);
    expect(leaf.subject).toContain('CN=n1');
    expect(leaf.subject).toContain('OU=compute-node');
    expect(leaf.checkPrivateKey(createPrivateKey(first.key))).toBe(true);
    expect(leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey)).toBe(true);
    expect(leaf.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    const bundle = (await (await fetch(`${m.url}/pki/trust-bundle`)).json()) as { roots: string[] };
    expect(caPin(bundle.roots[0]!)).toBe(m.master.pki.pin);
    expect(issuer.verify(new X509Certificate(bundle.roots[0]!).publicKey)).toBe(true);

    // Nobody else's to take.
    await expectError(n2.client.call('nodeCertificate', { computer_guid: 'n1' }), 'HOX_FORBIDDEN');
    await expectError(alice.call('nodeCertificate', { computer_guid: 'n1' }), 'HOX_FORBIDDEN');

    // At most three live per holder: a fourth revokes the oldest.
    const more = [];
    for (let i = 0; i < 3; i++) more.push(await n1.client.call('nodeCertificate', { computer_guid: 'n1' }));
    later();
    let revoked = await revokedServed(m);
    expect(revoked.has(serialOf(first.certificate))).toBe(true);
    for (const c of more) expect(revoked.has(serialOf(c.certificate))).toBe(false);

    // Removed: every live one is revoked, and listed in the CRLs served.
    expect((await n1.client.call('removeNodeCertificate', { computer_guid: 'n1' })).title).toBe('Certificate removed');
    later();
    revoked = await revokedServed(m);
    for (const c of more) expect(revoked.has(serialOf(c.certificate))).toBe(true);
    expect((await n1.client.call('removeNodeCertificate', { computer_guid: 'n1' })).title).toBe(
      'No certificate to remove',
    );

    // An instance's: for the node running it (or itself, or the admin), not its owner's user token.
    const doc = await request(alice, 'db', { sla_parameters: { computer_guid: 'n1' } });
    const own = await n1.client.call('instanceCertificate', { instance_guid: doc.instance_guid });
    expect(new X509Certificate(own.certificate.split(/(?=-----BEGIN)/)[0]!).subject).toContain(
      `CN=${doc.instance_guid}`,
    );
    await expectError(alice.call('instanceCertificate', { instance_guid: doc.instance_guid }), 'HOX_FORBIDDEN');
    await expectError(
      n2.client.call('instanceCertificate', { instance_guid: doc.instance_guid }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    // Destroyed: its certificate is revoked with its token.
    await request(alice, 'db', { state: 'destroyed' });
    later();
    expect((await revokedServed(m)).has(serialOf(own.certificate))).toBe(false);
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'destroyed' });
    later();
    expect((await revokedServed(m)).has(serialOf(own.certificate))).toBe(true);
  });
});
