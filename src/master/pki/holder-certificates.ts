/**
 * Certificates of compute nodes and instances, as SlapOS's `compute_node_certificate` and
 * `software_instance_certificate` give them: the master makes a key (ECDSA P-256) and a client certificate from the
 * platform CA's current issuing CA (a week by default), and answers both, over its HTTPS API only. Each issued
 * serial is remembered with its holder (`issued_certificate`), so that removing a node's certificate or destroying
 * an instance revokes its certificates in the same transaction: in the CA's revoked list at once, and in every CRL
 * the trust bundle serves from then on.
 *
 * A holder keeps at most {@link MAX_LIVE} live certificates: asking for one more revokes the oldest, so a holder
 * that asks in a loop cannot grow the CA's state.
 */
import { HoxError } from '../../shared/errors.js';
import type { OpContext } from '../context.js';
import { describePrincipal, loadInstance } from '../principal.js';
import { generateKeyPair, privateKeyToPem, subtle, x509 } from '../../shared/pki/x509.js';
import type { IssuedCertificateRow } from '../../store/store.js';
import { openCaInTransaction } from './master-tls.js';

export const MAX_LIVE = 3;

type HolderKind = IssuedCertificateRow['kind'];

/** A new key and certificate (chain: leaf, issuing CA) for a node or an instance; access is checked by the caller. */
export async function issueHolderCertificate(
  ctx: OpContext,
  kind: HolderKind,
  subject: string,
): Promise<{ key: string; certificate: string }> {
  const nowMs = ctx.clock.nowMs();
  const ca = await openCaInTransaction(ctx.tx, ctx.box, () => ctx.clock.nowMs());
  const keys = await generateKeyPair(true);
  const publicKeyPem = x509.PemConverter.encode(await subtle.exportKey('spki', keys.publicKey), 'PUBLIC KEY');
  const issued =
    kind === 'compute-node'
      ? await ca.issueComputeNode({ nodeId: subject, publicKeyPem })
      : kind === 'user'
        ? await ca.issueUser({ userId: subject, publicKeyPem })
        : await ca.issueInstance({ instanceGuid: subject, publicKeyPem });
  await ctx.tx.forgetCertificates({ expiredBeforeMs: nowMs });
  await ctx.tx.recordCertificate({ serial: issued.serial, kind, subject, notAfterMs: issued.notAfter.getTime() });
  const live = await ctx.tx.listCertificates(kind, subject);
  const excess = live.filter((c) => c.serial !== issued.serial).slice(0, Math.max(0, live.length - MAX_LIVE));
  for (const old of excess) await ca.revoke(old.serial, { notAfter: new Date(old.notAfterMs) });
  await ctx.tx.forgetCertificates({ serials: excess.map((c) => c.serial) });
  return { key: await privateKeyToPem(keys.privateKey), certificate: issued.chainPem };
}

/** Revokes every live certificate of a node or an instance; how many. Nothing is opened when it has none. */
export async function revokeHolderCertificates(ctx: OpContext, kind: HolderKind, subject: string): Promise<number> {
  const live = await ctx.tx.listCertificates(kind, subject);
  if (live.length === 0) return 0;
  const ca = await openCaInTransaction(ctx.tx, ctx.box, () => ctx.clock.nowMs());
  for (const c of live) await ca.revoke(c.serial, { notAfter: new Date(c.notAfterMs) });
  await ctx.tx.forgetCertificates({ serials: live.map((c) => c.serial) });
  return live.length;
}

/**
 * `software_instance_certificate`: for the instance itself, the node that runs it, or the admin. Other instances
 * of its tree may read it but not hold its identity.
 */
export async function instanceCertificate(
  ctx: OpContext,
  instanceGuid: string,
): Promise<{ key: string; certificate: string }> {
  const instance = await loadInstance(ctx.tx, ctx.principal, instanceGuid);
  const p = ctx.principal;
  const allowed =
    p.kind === 'admin' ||
    (p.kind === 'instance' && p.instanceId === instance.id) ||
    (p.kind === 'node' && instance.nodeId === p.nodeId && !instance.shared);
  if (!allowed)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `${describePrincipal(p)} may not obtain the certificate of instance '${instanceGuid}'`,
    );
  return await issueHolderCertificate(ctx, 'instance', instance.id);
}
