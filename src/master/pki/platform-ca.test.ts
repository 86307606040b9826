/**
 * The platform CA for real: certificates it issues are checked by Node's `tls` (a server on 127.0.0.1 and a client
 * that trusts only the root), by `openssl verify` (what libpq and PostgreSQL use) and by the platform's own
 * verifier; revoked, expired and foreign certificates are refused; rotations keep old certificates working; keys
 * are kept sealed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type ConnectionOptions, type TlsOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPin, matchesCaPin, pinnedRoots } from '../../shared/pki/ca-pin.js';
import { createKeyAndRequest } from '../../shared/pki/certificate-request.js';
import { readTrustBundle, tlsTrustOptions } from '../../shared/pki/trust-bundle.js';
import { verifyCertificate, type VerifyResult } from '../../shared/pki/verify-certificate.js';
import { x509 } from '../../shared/pki/x509.js';
import { newStoreKeyText, parseStoreKey } from '../../store/secret-box.js';
import { PlatformCa, type PkiStateStorage } from './platform-ca.js';

const DAY_MS = 24 * 3600 * 1000;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hox-pki-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The state in memory, as the store keeps it (one text, saved whole). */
class MemoryStorage implements PkiStateStorage {
  readonly description = 'test state';
  text: string | undefined;
  load(): Promise<string | undefined> {
    return Promise.resolve(this.text);
  }
  save(text: string): Promise<void> {
    this.text = text;
    return Promise.resolve();
  }
}

function fresh(now?: () => Date) {
  const storage = new MemoryStorage();
  const box = parseStoreKey(newStoreKeyText(), 'test key');
  return { storage, box, open: () => PlatformCa.open({ storage, box, now }) };
}

let counter = 0;
/** Writes PEM text to a file for openssl. */
function file(name: string, text: string): string {
  const path = join(dir, `${++counter}-${name}`);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

function opensslVerify(args: string[]): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync('openssl', ['verify', ...args], { encoding: 'utf8', stdio: 'pipe' }) };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

/** 'ok', or why the verifier refused. */
function reasonOf(result: VerifyResult): string {
  return result.ok ? 'ok' : result.reason;
}

interface Handshake {
  authorized: boolean;
  error?: string;
  serverSawClient?: string;
}

/** One TLS handshake between a server and a client on 127.0.0.1, both ends with Node's `tls`; bounded by a timeout. */
async function handshake(server: TlsOptions, client: ConnectionOptions): Promise<Handshake> {
  let serverSawClient: string | undefined;
  let reportServerError: (message: string) => void = () => {};
  const serverError = new Promise<string>((resolve) => {
    reportServerError = resolve;
  });
  // Refuses an unauthorized client as `rejectUnauthorized` does (Node's own check, `socket.authorized`), but keeps
  // the reason, which Node drops when it refuses.
  const refuseUnauthorized = server.rejectUnauthorized === true;
  const tlsServer = createServer({ ...server, rejectUnauthorized: false }, (socket: TLSSocket) => {
    if (refuseUnauthorized && !socket.authorized) {
      reportServerError(String(socket.authorizationError));
      socket.destroy();
      return;
    }
    serverSawClient = socket.authorized ? (socket.getPeerCertificate().subject?.CN as string | undefined) : undefined;
    socket.end('hello');
  });
  tlsServer.on('tlsClientError', (error) => reportServerError(error.message));
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const port = (tlsServer.address() as { port: number }).port;
  try {
    const outcome = await new Promise<Handshake>((resolve) => {
      const timer = setTimeout(() => resolve({ authorized: false, error: 'timeout' }), 10_000);
      const socket = connect({ ...client, host: '127.0.0.1', port });
      const finish = (result: Handshake) => {
        clearTimeout(timer);
        resolve(result);
        socket.destroy();
      };
      socket.on('data', () => finish({ authorized: socket.authorized, serverSawClient }));
      socket.on('error', (error: Error) => finish({ authorized: false, error: error.message }));
      socket.on('end', () => finish({ authorized: false, error: 'closed by the server' }));
    });
    if (outcome.authorized) return outcome;
    // The server's reason, when it refused the client (TLS 1.3 tells the client only after its handshake).
    const serverReason = await Promise.race([
      serverError,
      new Promise<undefined>((resolve) => setTimeout(resolve, 2000)),
    ]);
    return { authorized: false, error: `client: ${outcome.error}; server: ${serverReason ?? '-'}` };
  } finally {
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  }
}

describe('platform CA', () => {
  it('keeps its keys sealed in its state and reopens to the same root only with the same store key', async () => {
    const { storage, box, open } = fresh();
    const ca = await open();
    const text = storage.text ?? '';
    expect(text).not.toMatch(/PRIVATE KEY/);
    expect(text).not.toMatch(/MIG[0-9A-Za-z+/]{20}/); // no base64 DER of a PKCS#8 key either
    expect(text).toMatch(/"sealedKey": "hox:v1:/);
    const again = await PlatformCa.open({ storage, box });
    expect(again.pin).toBe(ca.pin);
    const otherKey = parseStoreKey(newStoreKeyText(), 'other key');
    await expect(PlatformCa.open({ storage, box: otherKey })).rejects.toMatchObject({
      code: 'HOX_STORE_KEY',
    });
  });

  it('computes the CA pin as kubeadm does (SHA-256 of the root SubjectPublicKeyInfo) and checks it', async () => {
    const ca = await fresh().open();
    const bundle = await ca.trustBundle();
    const root = bundle.roots[0]!;
    const spki = execFileSync('openssl', ['x509', '-noout', '-pubkey'], { input: root, encoding: 'utf8' });
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: spki });
    const hex = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: der, encoding: 'utf8' }).split(' ')[0];
    expect(ca.pin).toBe(`sha256:${hex}`);
    expect(caPin(root)).toBe(ca.pin);
    expect(matchesCaPin(root, ca.pin.toUpperCase().replace('SHA256', 'sha256'))).toBe(true);
    const other = await fresh().open();
    expect(matchesCaPin(root, other.pin)).toBe(false);
    expect(() => pinnedRoots([new x509.X509Certificate(root)], other.pin)).toThrow(/CA pin/);
    expect(() => matchesCaPin(root, 'sha256:abc')).toThrow(/not a CA pin/);
  });

  it("serves the master's HTTPS certificate to a client that trusts only the root, and not to one trusting another root", async () => {
    const ca = await fresh().open();
    const server = await createKeyAndRequest('ignored');
    const issued = await ca.issueMasterServer({
      dnsNames: ['master.hox.test'],
      ipAddresses: ['127.0.0.1'],
      csrPem: server.csrPem,
    });
    const trust = tlsTrustOptions(await ca.trustBundle());
    const serverOptions = { key: server.privateKeyPem, cert: issued.chainPem };
    const good = await handshake(serverOptions, { ca: trust.ca, servername: 'master.hox.test' });
    expect(good).toMatchObject({ authorized: true });
    const byIp = await handshake(serverOptions, { ca: trust.ca }); // no servername: checked against the IP SAN
    expect(byIp).toMatchObject({ authorized: true });
    const wrongName = await handshake(serverOptions, { ca: trust.ca, servername: 'other.hox.test' });
    expect(wrongName.error).toMatch(/altnames|Hostname/);
    const foreign = await fresh().open();
    const refused = await handshake(serverOptions, {
      ca: tlsTrustOptions(await foreign.trustBundle()).ca,
      servername: 'master.hox.test',
    });
    expect(refused.authorized).toBe(false);
    expect(refused.error).toMatch(/issuer|self.signed|unable to (get|verify)/i);
  });

  it('authenticates compute nodes by client certificate (mutual TLS) and refuses one revoked, expired or absent', async () => {
    let nowMs = Date.now();
    const ca = await fresh(() => new Date(nowMs)).open();
    const server = await createKeyAndRequest('master');
    const serverCert = await ca.issueMasterServer({ ipAddresses: ['127.0.0.1'], csrPem: server.csrPem });
    const node = await createKeyAndRequest('evil-name-ignored');
    const nodeCert = await ca.issueComputeNode({ nodeId: 'node-a', csrPem: node.csrPem });
    expect(nodeCert.certificate.subject).toBe('CN=node-a, OU=compute-node, O=HyperOpenX');
    const serverWith = async () => ({
      key: server.privateKeyPem,
      cert: serverCert.chainPem,
      requestCert: true,
      rejectUnauthorized: true,
      ...tlsTrustOptions(await ca.trustBundle()),
    });
    const clientCa = tlsTrustOptions(await ca.trustBundle()).ca;
    const accepted = await handshake(await serverWith(), {
      ca: clientCa,
      key: node.privateKeyPem,
      cert: nodeCert.chainPem,
    });
    expect(accepted).toMatchObject({ authorized: true, serverSawClient: 'node-a' });

    const anonymous = await handshake(await serverWith(), { ca: clientCa });
    expect(anonymous.authorized).toBe(false);

    // A node certificate issued 10 days ago for 2 days: expired now.
    nowMs = Date.now() - 10 * DAY_MS;
    const old = await createKeyAndRequest('node-b');
    const expiredCert = await ca.issueComputeNode({ nodeId: 'node-b', csrPem: old.csrPem, lifetimeMs: 2 * DAY_MS });
    nowMs = Date.now();
    const expired = await handshake(await serverWith(), {
      ca: clientCa,
      key: old.privateKeyPem,
      cert: expiredCert.chainPem,
    });
    expect(expired.authorized).toBe(false);
    expect(expired.error, String(expired.error)).toMatch(/expired/i);
    const trust = await ca.trustMaterial();
    expect(reasonOf(await verifyCertificate(expiredCert.certificate, trust, { purpose: 'client' }))).toMatch(
      /not valid at/,
    );

    await ca.revoke(nodeCert.serial, { notAfter: nodeCert.notAfter });
    expect(ca.revokedSerials().has(nodeCert.serial)).toBe(true);
    const revoked = await handshake(await serverWith(), {
      ca: clientCa,
      key: node.privateKeyPem,
      cert: nodeCert.chainPem,
    });
    expect(revoked.authorized).toBe(false);
    expect(revoked.error).toMatch(/CERT_REVOKED/);
    const afterRevocation = await ca.trustMaterial();
    expect(reasonOf(await verifyCertificate(nodeCert.certificate, afterRevocation, { purpose: 'client' }))).toMatch(
      /revoked \(CRL/,
    );
    // The master's own check counts the revocation even with CRLs from before it.
    expect(
      reasonOf(
        await verifyCertificate(nodeCert.certificate, trust, {
          purpose: 'client',
          revokedSerials: ca.revokedSerials(),
        }),
      ),
    ).toMatch(/revoked \(master's list\)/);
  });

  it('verifies identities and purposes, and fails closed without a current CRL', async () => {
    let nowMs = Date.now();
    const ca = await fresh(() => new Date(nowMs)).open();
    const { csrPem } = await createKeyAndRequest('x');
    const instance = await ca.issueInstance({ instanceGuid: 'SOFTINST-k3m9x2qa7d', csrPem });
    const member = await ca.issueHyperDbMember({ memberName: 'db-1', ipAddresses: ['10.0.0.2', '::1'], csrPem });
    const trust = await ca.trustMaterial();
    expect(
      await verifyCertificate(instance.certificate, trust, { purpose: 'client', kinds: ['instance'] }),
    ).toMatchObject({
      ok: true,
      identity: { kind: 'instance', id: 'SOFTINST-k3m9x2qa7d' },
    });
    expect(
      await verifyCertificate(instance.certificate, trust, { purpose: 'client', kinds: ['compute-node'] }),
    ).toMatchObject({
      ok: false,
    });
    expect(reasonOf(await verifyCertificate(instance.certificate, trust, { purpose: 'server' }))).toMatch(
      /not for TLS server/,
    );
    expect(
      await verifyCertificate(member.certificate, trust, { purpose: 'server', kinds: ['hyper-db-member'] }),
    ).toMatchObject({
      ok: true,
    });
    expect(
      reasonOf(await verifyCertificate(member.certificate, { ...trust, crls: [] }, { purpose: 'server' })),
    ).toMatch(/no current CRL/);
    nowMs += 2 * DAY_MS; // the CRLs of the trust material, a day long, are stale
    expect(
      reasonOf(await verifyCertificate(member.certificate, trust, { purpose: 'server', now: new Date(nowMs) })),
    ).toMatch(/no current CRL/);
  });

  it('hands verifiers a bundle of PEM texts (OpenSSL headers) that reads back and verifies, and refuses a bad one', async () => {
    const ca = await fresh().open();
    const { csrPem } = await createKeyAndRequest('x');
    const node = await ca.issueComputeNode({ nodeId: 'node-a', csrPem });
    const bundle = JSON.parse(JSON.stringify(await ca.trustBundle())) as Awaited<ReturnType<typeof ca.trustBundle>>;
    expect(bundle.crls[0]).toMatch(/^-----BEGIN X509 CRL-----/);
    const trust = readTrustBundle(bundle);
    expect(
      reasonOf(await verifyCertificate(node.certificate, trust, { purpose: 'client', kinds: ['compute-node'] })),
    ).toBe('ok');
    expect(() => readTrustBundle({ ...bundle, crls: ['not pem'] })).toThrow(/crls\[0\]/);
    expect(() => readTrustBundle({ ...bundle, roots: 'x' as unknown as string[] })).toThrow(/roots is not a list/);
  });

  it('refuses bad requests: a forged CSR, a wrong key type, bad names, an unbounded lifetime', async () => {
    const ca = await fresh().open();
    const { csrPem } = await createKeyAndRequest('x');
    const body = csrPem
      .split('\n')
      .filter((line) => !line.startsWith('-----'))
      .join('');
    const der = Buffer.from(body, 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0x01; // inside the signature
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(ca.issueComputeNode({ nodeId: 'node-a', csrPem: forged })).rejects.toMatchObject({
      code: 'HOX_BAD_REQUEST',
    });
    const rsa = execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], {
      encoding: 'utf8',
    });
    const rsaPublic = execFileSync('openssl', ['pkey', '-pubout'], { input: rsa, encoding: 'utf8' });
    await expect(ca.issueComputeNode({ nodeId: 'node-a', publicKeyPem: rsaPublic })).rejects.toThrow(/not ECDSA P-256/);
    await expect(ca.issueComputeNode({ nodeId: 'a,OU=master', csrPem })).rejects.toThrow(/not an id/);
    await expect(ca.issueMasterServer({ dnsNames: ['Bad Name'], csrPem })).rejects.toThrow(/not a lowercase DNS name/);
    await expect(ca.issueMasterServer({ ipAddresses: ['300.1.1.1'], csrPem })).rejects.toThrow(/not an IP address/);
    await expect(ca.issueMasterServer({ csrPem })).rejects.toThrow(/at least one DNS name or IP/);
    await expect(ca.issueComputeNode({ nodeId: 'node-a', csrPem, lifetimeMs: 365 * DAY_MS })).rejects.toThrow(
      /lifetimeMs/,
    );
    await expect(ca.revoke('not hex')).rejects.toMatchObject({ code: 'HOX_BAD_REQUEST' });
  });

  it('agrees with openssl verify (as libpq checks a PostgreSQL server), revocation included', async () => {
    const ca = await fresh().open();
    const { csrPem } = await createKeyAndRequest('x');
    const member = await ca.issueHyperDbMember({ memberName: 'db-1', ipAddresses: ['127.0.0.1'], csrPem });
    const bundle = await ca.trustBundle();
    const rootFile = file('root.pem', bundle.roots.join('\n'));
    const untrusted = file('issuing.pem', bundle.intermediates.join('\n'));
    const leaf = file('leaf.pem', member.certificatePem);
    const verified = opensslVerify(['-CAfile', rootFile, '-untrusted', untrusted, '-purpose', 'sslserver', leaf]);
    expect(verified).toMatchObject({ ok: true });
    expect(
      opensslVerify([
        '-CAfile',
        rootFile,
        '-untrusted',
        untrusted,
        '-crl_check_all',
        '-CRLfile',
        file('crl.pem', bundle.crls.join('\n')),
        leaf,
      ]).ok,
    ).toBe(true);
    const foreignRoot = file('foreign.pem', (await (await fresh().open()).trustBundle()).roots.join('\n'));
    expect(opensslVerify(['-CAfile', foreignRoot, '-untrusted', untrusted, leaf]).ok).toBe(false);
    await ca.revoke(member.serial);
    const crls = file('crl2.pem', (await ca.trustBundle()).crls.join('\n'));
    const refused = opensslVerify([
      '-CAfile',
      rootFile,
      '-untrusted',
      untrusted,
      '-crl_check_all',
      '-CRLfile',
      crls,
      leaf,
    ]);
    expect(refused.ok).toBe(false);
    expect(refused.output).toMatch(/revoked/);
  });

  it('rotates the issuing CA with overlap: old certificates verify until they expire, new ones under the new CA', async () => {
    let nowMs = Date.now();
    const ca = await fresh(() => new Date(nowMs)).open();
    const { csrPem, privateKeyPem } = await createKeyAndRequest('x');
    const before = await ca.issueComputeNode({ nodeId: 'node-a', csrPem, lifetimeMs: 3 * DAY_MS });
    await ca.rotateIssuingCa();
    const after = await ca.issueComputeNode({ nodeId: 'node-a', csrPem });
    expect(after.certificate.issuer).not.toBe(before.certificate.issuer);
    expect(ca.status().issuers.map((issuer) => issuer.current)).toEqual([true, false]);
    const bundle = await ca.trustBundle();
    expect(bundle.intermediates).toHaveLength(2);
    expect(bundle.crls).toHaveLength(3); // one root, two issuing CAs
    const trust = await ca.trustMaterial();
    for (const issued of [before, after])
      expect(
        await verifyCertificate(issued.certificate, trust, { purpose: 'client', kinds: ['compute-node'] }),
      ).toMatchObject({
        ok: true,
      });
    // Both generations pass a real mutual-TLS handshake with the same server trust.
    const server = await createKeyAndRequest('m');
    const serverCert = await ca.issueMasterServer({ ipAddresses: ['127.0.0.1'], csrPem: server.csrPem });
    const tlsTrust = tlsTrustOptions(bundle);
    for (const issued of [before, after])
      expect(
        await handshake(
          {
            key: server.privateKeyPem,
            cert: serverCert.chainPem,
            requestCert: true,
            rejectUnauthorized: true,
            ...tlsTrust,
          },
          { ca: tlsTrust.ca, key: privateKeyPem, cert: issued.chainPem },
        ),
      ).toMatchObject({ authorized: true, serverSawClient: 'node-a' });
    nowMs += 4 * DAY_MS;
    const later = await ca.trustMaterial();
    expect(
      reasonOf(await verifyCertificate(before.certificate, later, { purpose: 'client', now: new Date(nowMs) })),
    ).toMatch(/not valid at/);
    const afterLater = await verifyCertificate(after.certificate, later, { purpose: 'client', now: new Date(nowMs) });
    expect(afterLater.ok ? 'ok' : afterLater.reason).toBe('ok');
  });

  it('rotates the root: both roots trusted, and a verifier pinned to the old root follows the cross-certificate', async () => {
    const { storage, box, open } = fresh();
    const ca = await open();
    const oldPin = ca.pin;
    const { csrPem } = await createKeyAndRequest('x');
    const before = await ca.issueInstance({ instanceGuid: 'SOFTINST-aaaaaaaaaa', csrPem });
    await ca.rotateRoot();
    expect(ca.pin).not.toBe(oldPin);
    const after = await ca.issueInstance({ instanceGuid: 'SOFTINST-bbbbbbbbbb', csrPem });
    const status = ca.status();
    expect(status.roots.map((root) => root.pin)).toEqual([ca.pin, oldPin]);
    expect(status.crossCertificates).toBe(1);
    const trust = await ca.trustMaterial();
    for (const issued of [before, after])
      expect(await verifyCertificate(issued.certificate, trust, { purpose: 'client' })).toMatchObject({ ok: true });
    const oldRootOnly = { ...trust, roots: pinnedRoots(trust.roots, oldPin) };
    expect(oldRootOnly.roots).toHaveLength(1);
    const viaCross = await verifyCertificate(after.certificate, oldRootOnly, { purpose: 'client' });
    expect(viaCross).toMatchObject({ ok: true });
    expect(viaCross.ok && viaCross.chain.length).toBe(4);
    // openssl agrees: the new chain verifies from the old root alone through the cross-certificate.
    const bundle = await ca.trustBundle();
    const oldRootFile = file('old-root.pem', bundle.roots[1]!);
    const untrusted = file('untrusted.pem', bundle.intermediates.join('\n'));
    const crossVerified = opensslVerify([
      '-CAfile',
      oldRootFile,
      '-untrusted',
      untrusted,
      file('after.pem', after.certificatePem),
    ]);
    expect(crossVerified.output).toMatch(/: OK/);
    // The rotation survives a reopen.
    const reopened = await PlatformCa.open({ storage, box });
    expect(reopened.status().roots.map((root) => root.pin)).toEqual([ca.pin, oldPin]);
  });
});
