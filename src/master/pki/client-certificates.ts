/**
 * Mutual TLS on the master's API. The HTTPS server asks every client for a certificate and has Node's TLS verify
 * the chain against the platform CA (without refusing the connection: a CLI or a browser has none). A request that
 * came with a certificate is then held to it, before any route runs:
 *
 * - the chain must verify (`socket.authorized`), else 401;
 * - the certificate must be one the master issued to a node, an instance or a user and still remembers: one revoked
 *   (its node's certificate removed, its instance destroyed) or unknown is refused at once, else 401;
 * - the bearer token must be its holder's: a node's token with that node's certificate, an instance's with that
 *   instance's, else 403. A stolen token is then worth nothing without the matching key, and vice versa.
 *
 * A client that presents no certificate is authenticated by its token alone, but for nodes: a node's token works
 * only with its certificate, but to ask for one (`refuseNodeWithoutCertificate`), unless the master was started
 * with `--allow-nodes-without-certificates` (nodes of an older version, during an upgrade).
 */
import type { TLSSocket } from 'node:tls';
import { HoxError } from '../../shared/errors.js';
import { hashToken } from '../../shared/ids.js';
import { normalizeSerial } from '../../shared/pki/x509.js';
import type { IssuedCertificateRow, Store, StoreTx } from '../../store/store.js';
import type { Principal } from '../principal.js';

/** What a request's TLS client certificate says, when it presented one. */
export interface PresentedCertificate {
  authorized: boolean;
  authorizationError: string | undefined;
  serial: string;
  commonName: string;
  unit: string;
}

/**
 * What each TLS connection's client presented, read once per connection: `getPeerCertificate()` builds the whole
 * certificate as an object (0.68 s of a 26 s CPU profile of master and clients in one process), and a connection's
 * certificate never changes. Whether it is still valid is checked for every request ({@link checkPresentedCertificate}).
 */
const presentedBySocket = new WeakMap<object, PresentedCertificate | null>();

/** The certificate a client presented on this socket, if any (plain HTTP: none). */
export function presentedCertificate(socket: unknown): PresentedCertificate | undefined {
  if (typeof socket !== 'object' || socket === null) return undefined;
  const known = presentedBySocket.get(socket);
  if (known !== undefined) return known ?? undefined;
  const presented = readPresentedCertificate(socket);
  presentedBySocket.set(socket, presented ?? null);
  return presented;
}

function readPresentedCertificate(socket: object): PresentedCertificate | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== 'function') return undefined;
  const peer = tls.getPeerCertificate();
  if (peer === null || peer === undefined || typeof peer.serialNumber !== 'string') return undefined;
  const field = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(',') : (value ?? ''));
  return {
    authorized: tls.authorized === true,
    authorizationError: tls.authorizationError === undefined ? undefined : String(tls.authorizationError),
    serial: normalizeSerial(peer.serialNumber),
    commonName: field(peer.subject?.CN),
    unit: field(peer.subject?.OU),
  };
}

/**
 * Checks a presented certificate against the store and the request's bearer token (see the module comment).
 * `token` is undefined when the request carries none (the route then refuses it as unauthenticated).
 */
export async function checkPresentedCertificate(
  store: Store,
  adminTokenHash: string,
  presented: PresentedCertificate,
  token: string | undefined,
): Promise<void> {
  if (!presented.authorized)
    throw new HoxError(
      'HOX_UNAUTHENTICATED',
      `client certificate not issued by this platform's CA (${presented.authorizationError ?? 'unverified'})`,
    );
  await store.transaction(async (tx) => {
    const known = await rememberedCertificate(tx, presented);
    if (known === undefined)
      throw new HoxError(
        'HOX_UNAUTHENTICATED',
        `client certificate ${presented.serial} is revoked or unknown: ask for a new one (compute_node_certificate, software_instance_certificate)`,
      );
    if (token === undefined) return;
    const hash = hashToken(token);
    const row = hash === adminTokenHash ? undefined : await tx.getToken(hash);
    const holder = row?.kind === 'node' ? 'compute-node' : (row?.kind ?? 'admin');
    if (holder !== known.kind || row?.subject !== known.subject)
      throw new HoxError(
        'HOX_FORBIDDEN',
        `the client certificate is ${known.kind} '${known.subject}''s, the token is not: present the holder's own`,
      );
  });
}

/** Unless `--allow-nodes-without-certificates`: a node's token without a certificate is refused (401). */
export async function refuseNodeWithoutCertificate(store: Store, token: string): Promise<void> {
  const row = await store.transaction((tx) => tx.getToken(hashToken(token)));
  if (row?.kind === 'node')
    throw new HoxError(
      'HOX_UNAUTHENTICATED',
      `this master requires node certificates: compute node '${row.subject ?? ''}' must present its own (it asks for one with slapos.post.v0.compute_node_certificate)`,
    );
}

/** The issued certificate the master remembers for `presented`, subject and kind matching; undefined otherwise. */
async function rememberedCertificate(
  tx: StoreTx,
  presented: PresentedCertificate,
): Promise<IssuedCertificateRow | undefined> {
  const known = await tx.getCertificate(presented.serial);
  return known !== undefined && known.subject === presented.commonName && known.kind === presented.unit
    ? known
    : undefined;
}

/**
 * Who a request with no bearer token is, by the client certificate it presented (the slap protocol: SlapOS's nodes,
 * instances and users authenticate by certificate alone). The onRequest check has already refused a certificate that
 * does not verify or that the master does not remember.
 */
export async function certificateHolder(tx: StoreTx, presented: PresentedCertificate | undefined): Promise<Principal> {
  if (presented === undefined)
    throw new HoxError(
      'HOX_UNAUTHENTICATED',
      'present a client certificate the platform issued (a compute node, an instance or a user one), or a bearer token',
    );
  const known = presented.authorized ? await rememberedCertificate(tx, presented) : undefined;
  if (known === undefined)
    throw new HoxError('HOX_UNAUTHENTICATED', `client certificate ${presented.serial} is revoked or unknown`);
  switch (known.kind) {
    case 'compute-node':
      return { kind: 'node', nodeId: known.subject };
    case 'user':
      return { kind: 'user', userId: known.subject };
    case 'instance':
      return { kind: 'instance', instanceId: known.subject };
  }
}
