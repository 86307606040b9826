/**
 * Certificates of web sites (hyper_cdn's sites), from the sites CA: a CA of the master's own, apart from the platform
 * CA, whose keys never leave the master (sealed in the store like the platform CA's). Edges hold only their sites'
 * leaf keys, which their node's agent makes and keeps (`src/agent/site-certificates.ts`).
 *
 * Why apart: a site's owner chooses its host names. From the platform CA, a certificate for the master's own name
 * would let them pose as the master to whatever trusts the platform root (nodes, the CLI, hyper_db members). The
 * sites CA's root is trusted only by those who fetch it to visit sites (`hox cdn ca`).
 *
 * Who may have which name. An instance (a CDN's edge) may have a certificate for:
 * - a host name that a live shared instance hosted in the instance's own tree declares in its `domains` parameter
 *   (a hyper_cdn site), provided no older live shared instance of another tree declares it: the first to ask for a
 *   name keeps it, platform-wide, as a CDN keeps it among its own sites. No wildcards;
 * - its own partition's IP addresses (an edge's control API).
 * Nothing else: not the master's names, not another tree's sites.
 */
import { isIP } from 'node:net';
import { HoxError } from '../../shared/errors.js';
import type { InstanceRow, JsonObject } from '../../store/store.js';
import type { OpContext } from '../context.js';
import { describePrincipal, loadInstance } from '../principal.js';
import { openCaInTransaction, rootsPem, rotateIfAging } from './master-tls.js';

const DAY_MS = 86_400_000;

export interface SiteCertificateRequest {
  instance_guid: string;
  dns_names: string[];
  ip_addresses: string[];
  public_key_pem: string;
  lifetime_days?: number;
}

export interface SiteCertificateAnswer {
  /** Leaf then issuing CA. */
  certificate: string;
  /** The sites CA's roots, what a client verifying a site trusts. */
  ca_certificates: string;
  not_after: string;
}

/** The host names a shared instance declares (`domains`, lower case), none when it declares none. */
export function declaredDomains(parameters: JsonObject): string[] {
  const domains = parameters['domains'];
  if (!Array.isArray(domains)) return [];
  return domains.filter((d): d is string => typeof d === 'string').map((d) => d.toLowerCase());
}

/** Issues a site certificate to an instance, if the names are its tree's to have (see the module's header). */
export async function issueSiteCertificate(
  ctx: OpContext,
  request: SiteCertificateRequest,
): Promise<SiteCertificateAnswer> {
  const instance = await loadInstance(ctx.tx, ctx.principal, request.instance_guid);
  const p = ctx.principal;
  const allowed =
    p.kind === 'admin' ||
    (p.kind === 'instance' && p.instanceId === instance.id) ||
    (p.kind === 'node' && instance.nodeId === p.nodeId);
  if (!allowed)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `${describePrincipal(p)} may not obtain site certificates for instance '${instance.id}'`,
    );
  if (instance.shared || instance.nodeId === null || instance.partitionId === null)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `instance '${instance.id}' has no partition of its own: only an instance that serves sites gets their certificates`,
      { field: 'instance_guid' },
    );
  if (instance.requestedState === 'destroyed')
    throw new HoxError('HOX_CONFLICT', `instance '${instance.id}' is being destroyed`);
  if (request.dns_names.length + request.ip_addresses.length === 0)
    throw new HoxError('HOX_BAD_REQUEST', 'a site certificate needs at least one host name or IP address', {
      field: 'dns_names',
    });

  // IP addresses: the instance's own partition's.
  const partition = await ctx.tx.getPartition(instance.nodeId, instance.partitionId);
  const own = new Set((partition?.ipList ?? []).map((ip) => ip['ip-address']));
  for (const address of request.ip_addresses)
    if (isIP(address) === 0 || !own.has(address))
      throw new HoxError(
        'HOX_FORBIDDEN',
        `ip_addresses: '${address.slice(0, 60)}' is not an address of instance '${instance.id}''s partition`,
        { field: 'ip_addresses' },
      );

  // Host names: the first live claim of each, platform-wide, must be a site hosted in the instance's tree.
  let subject = instance.id;
  if (request.dns_names.length > 0) {
    const claims = await ctx.tx.listLiveSharedInstances();
    const hostTree = new Map<string, string | undefined>();
    const treeOf = async (hostId: string | null): Promise<string | undefined> => {
      if (hostId === null) return undefined;
      if (!hostTree.has(hostId)) hostTree.set(hostId, (await ctx.tx.getInstance(hostId))?.treeId);
      return hostTree.get(hostId);
    };
    let first: InstanceRow | undefined;
    for (const name of request.dns_names) {
      if (name.startsWith('*.'))
        throw new HoxError('HOX_BAD_REQUEST', `dns_names: '${name.slice(0, 80)}': no wildcard site certificates`, {
          field: 'dns_names',
        });
      const claim = claims.find((c) => declaredDomains(c.parameters).includes(name));
      if (claim === undefined || (await treeOf(claim.hostInstanceId)) !== instance.treeId)
        throw new HoxError(
          'HOX_FORBIDDEN',
          claim === undefined
            ? `dns_names: no site hosted by instance '${instance.id}''s tree declares '${name.slice(0, 80)}'`
            : `dns_names: '${name.slice(0, 80)}' belongs to another site, which declared it first`,
          { field: 'dns_names' },
        );
      first ??= claim;
    }
    if (first !== undefined) subject = first.id;
  }

  const lifetimeMs = (request.lifetime_days ?? 30) * DAY_MS;
  const ca = await openCaInTransaction(ctx.tx, ctx.box, () => ctx.clock.nowMs(), 'sites');
  // No timer rotates the sites CA: issuances do, before its issuing CA would cap the leaves' lives.
  await rotateIfAging(ca, ctx.clock.nowMs());
  const issued = await ca.issueSite({
    siteId: subject,
    dnsNames: request.dns_names,
    ipAddresses: request.ip_addresses,
    publicKeyPem: request.public_key_pem,
    lifetimeMs,
  });
  return { certificate: issued.chainPem, ca_certificates: rootsPem(ca), not_after: issued.notAfter.toISOString() };
}
