/**
 * A cluster CA and certificates signed by it, as a hyper_db router signs them (server and client, for
 * an address): for tests of the cluster's TLS channels without a running router.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { ChannelTls, TlsIdentity } from '../releases/hyper_db/cluster-tls.js';
import { createLocalCa, issueServerCertificate, type LocalCa } from '../shared/pki/local-ca.js';

export interface ClusterTlsFixture {
  ca: LocalCa;
  /** A key and a certificate of this CA for `ip` (server and client). */
  identity(ip?: string, commonName?: string): Promise<TlsIdentity>;
  /** What a client of this cluster holds: the CA and (unless `anonymous`) its own certificate. */
  client(options?: { anonymous?: boolean; ip?: string }): Promise<ChannelTls>;
}

export async function clusterTlsFixture(name = 'test cluster CA'): Promise<ClusterTlsFixture> {
  const ca = await createLocalCa(name, 'hyper_db');
  const identity = async (ip = '127.0.0.1', commonName = 'member-1'): Promise<TlsIdentity> => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = await issueServerCertificate({
      ca,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      commonName,
      ipAddresses: [ip],
      validityMs: 86_400_000,
      clientAuth: true,
    });
    return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert };
  };
  return {
    ca,
    identity,
    client: async (options = {}) => ({
      ca: ca.certificatePem,
      identity: options.anonymous === true ? null : await identity(options.ip ?? '127.0.0.1', 'a client'),
    }),
  };
}
