/**
 * `hyper_cdn`: a content delivery network of edges, each the real Caddy (TLS, HTTP/1.1, 2 and 3) in front of
 * the real Varnish (the cache, with xkey for purges by tag), with sites as shared instances (the SlapOS
 * pattern: any user's site is hosted on the admin's CDN).
 *
 * - `cdn` (the root): requests `edges` edges (spread over nodes when it can), checks its sites (sites.ts: host
 *   names, origin, a host name served by one site only), hands every edge the sites, and publishes to each site's
 *   owner its edges, the sites CA, its purge token and whether every edge serves it.
 * - `edge` (internal): two Caddy processes (the edge, with a configuration that never changes, and the origin
 *   side: edge/caddy.ts), Varnish, and the edge program (edge/main.ts), which hands the sites' certificates to the
 *   edge Caddy, loads the sites' host names into Varnish and their origins into the origin Caddy when the sites
 *   change, answers purges and statistics on its control API, and publishes which sites it serves.
 * - certificates: each edge's plan asks for one per site (its domains) and one for its control API (its address);
 *   the node's agent gets them from the master's sites CA, whose key never leaves the master, and which gives a
 *   name only to the tree whose site declared it first, platform-wide (src/master/pki/site-certificates.ts).
 *   With `acme`, the sites' come from that ACME CA instead: the root runs an `acme` service (acme/) that orders
 *   them (http-01, answered by the edges on their plain HTTP port) and hands them to the edges.
 * - a site: a shared instance of type `cdn` (`hox cdn site add NAME --origin URL --domain D`), parameters
 *   `{domains, origin}`.
 */
import { join } from 'node:path';
import {
  defineRelease,
  type InstanceRequestSpec,
  type PartitionPlan,
  type ProfileInput,
} from '../../release-kit/types.js';
import { releaseProgram } from '../../release-kit/program.js';
import type { AcmeConfig } from './acme/acme-certificates.js';
import { edgeCaddyConfig, originCaddyConfig } from './edge/caddy.js';
import { varnishdCommand } from './edge/varnish.js';
import { edgeVcl } from './edge/vcl.js';
import {
  CONTROL_CERTIFICATE,
  siteCertificateName,
  type EdgeConfig,
  type EdgeSiteSpec,
  type EdgeStatus,
} from './protocol.js';
import { judgeSites } from './sites.js';

export const CDN_TYPE = 'cdn';
export const EDGE_TYPE = 'edge';
const DEFAULTS = { edges: 3, cacheMiB: 256, certificateDays: 30 };

const cdnParameters = {
  type: 'object',
  additionalProperties: false,
  properties: {
    edges: { type: 'integer', minimum: 1, maximum: 9, description: 'Edges, spread over nodes when there is room' },
    cache_mib: { type: 'integer', minimum: 16, maximum: 65536, description: "Each edge's cache, in MiB (memory)" },
    certificate_days: {
      type: 'integer',
      minimum: 1,
      maximum: 90,
      description: "Lifetime of the sites' certificates from the sites CA (renewed at two thirds)",
    },
    acme: {
      type: 'object',
      additionalProperties: false,
      required: ['directory'],
      description: "Take the sites' certificates from this ACME CA (http-01 through the edges) instead of the sites CA",
      properties: {
        directory: { type: 'string', pattern: '^https://', maxLength: 2048, description: 'The directory URL' },
        email: { type: 'string', maxLength: 254, description: "The account's contact" },
        ca_pem: {
          type: 'string',
          maxLength: 65536,
          description: "PEM roots trusted for the ACME server's own HTTPS (a test CA); the system's by default",
        },
      },
    },
  },
} as const;

const siteSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'title', 'domains', 'origin', 'token_sha256'],
  properties: {
    id: { type: 'string', pattern: '^s[0-9a-f]{12}$' },
    title: { type: 'string', maxLength: 200 },
    domains: { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string', maxLength: 253 } },
    origin: { type: 'string', maxLength: 2048 },
    token_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const;

const edgeParameters = {
  type: 'object',
  additionalProperties: false,
  required: ['cdn', 'sites'],
  properties: {
    cdn: { type: 'string', maxLength: 200 },
    cache_mib: { type: 'integer', minimum: 16, maximum: 65536 },
    certificate_days: { type: 'integer', minimum: 1, maximum: 90 },
    acme: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'token'],
      properties: { url: { type: 'string', maxLength: 300 }, token: { type: 'string', maxLength: 200 } },
    },
    sites: { type: 'array', maxItems: 500, items: siteSchema },
  },
} as const;

const looseObject = { type: 'object' } as const;

interface CdnParams {
  edges?: number;
  cache_mib?: number;
  certificate_days?: number;
  acme?: { directory: string; email?: string; ca_pem?: string };
}

interface EdgeParams {
  cdn: string;
  cache_mib?: number;
  certificate_days?: number;
  acme?: { url: string; token: string };
  sites: EdgeSiteSpec[];
}

/** An edge as the root sees it through its answer. */
interface EdgeView {
  name: string;
  url: string | null;
  http_url: string | null;
  control_url: string | null;
  sites: string[];
  site_errors: EdgeStatus['site_errors'];
  ca_cert: string | null;
  error: string | null;
}

function program(input: ProfileInput, relative: string, args: string[]): string[] {
  return releaseProgram(import.meta.url, input.tools.node, relative, args);
}

function cdnProfile(input: ProfileInput): PartitionPlan {
  const p = input.parameters as CdnParams;
  const name = input.instance_title;
  const edgeCount = p.edges ?? DEFAULTS.edges;
  const { accepted, refused } = judgeSites(input.slave_instance_list, (ref) => input.secret(`purge:${ref}`));
  // With ACME, the root's own service obtains the sites' certificates and hands them to the edges.
  const acme = p.acme === undefined ? undefined : acmeService(input, p.acme, accepted);

  const requests: InstanceRequestSpec[] = [];
  const edges: EdgeView[] = [];
  for (let i = 1; i <= edgeCount; i++) {
    const title = `edge-${i}`;
    const previous = input.requested[title];
    const noRoom = previous?.error !== undefined && /no free partition/i.test(previous.error);
    requests.push({
      title,
      softwareReleaseUrl: input.slap_software_release_url,
      softwareType: EDGE_TYPE,
      // On as many nodes as there are edges when there is room; otherwise share a node rather than not run.
      sla: noRoom ? {} : { anti_affinity: `hyper_cdn:${name}` },
      state: input.state,
      parameters: {
        cdn: name,
        ...(p.cache_mib === undefined ? {} : { cache_mib: p.cache_mib }),
        ...(p.certificate_days === undefined ? {} : { certificate_days: p.certificate_days }),
        ...(acme === undefined ? {} : { acme: acme.forEdges }),
        sites: accepted.map(({ reference: _r, ...site }) => site),
      } satisfies EdgeParams,
    });
    const status = previous?.ready === true ? (previous.connectionParameters as Partial<EdgeStatus>) : undefined;
    edges.push({
      name: title,
      url: status?.url ?? null,
      http_url: status?.http_url ?? null,
      control_url: status?.control_url ?? null,
      sites: Array.isArray(status?.sites) ? status.sites : [],
      site_errors: typeof status?.site_errors === 'object' && status.site_errors !== null ? status.site_errors : {},
      ca_cert: typeof status?.ca_cert === 'string' ? status.ca_cert : null,
      error: previous?.error ?? status?.error ?? null,
    });
  }
  // Fewer edges: those past the count are destroyed (gone once no longer among the answers).
  for (const title of Object.keys(input.requested)) {
    const match = /^edge-(\d+)$/.exec(title);
    if (match === null || Number(match[1]) <= edgeCount) continue;
    requests.push({
      title,
      softwareReleaseUrl: input.slap_software_release_url,
      softwareType: EDGE_TYPE,
      state: 'destroyed',
      parameters: { cdn: name, sites: [] },
    });
  }

  // The sites CA's roots, as the edges got them with their certificates (the same for every edge).
  const caCert = edges.find((e) => e.ca_cert !== null)?.ca_cert ?? null;
  const publishShared: Record<string, Record<string, unknown>> = {};
  for (const site of accepted) {
    const live = edges.filter((e) => e.sites.includes(site.id));
    // E.g. the master refused its certificate: a host name another tree's site declared first.
    const siteError = edges.map((e) => e.site_errors[site.id]).find((m) => m !== undefined);
    const state = live.length === edgeCount ? 'live' : siteError?.refused === true ? 'refused' : 'deploying';
    publishShared[site.reference] = {
      site_id: site.id,
      domains: site.domains,
      origin: site.origin,
      state,
      ...(siteError === undefined ? {} : { error: siteError.message }),
      live_edges: live.length,
      edge_count: edgeCount,
      // Where the site is served: connect there and ask for one of its domains (TLS SNI and Host).
      edges: edges
        .filter((e) => e.url !== null)
        .map((e) => ({ name: e.name, url: e.url, http_url: e.http_url, control_url: e.control_url })),
      // Who signs the site's certificate: the platform's sites CA (`ca_cert`) or the CDN's ACME CA.
      certificates: p.acme === undefined ? 'sites-ca' : 'acme',
      ca_cert: caCert,
      purge_token: input.secret(`purge:${site.reference}`),
    };
  }
  for (const [reference, reason] of refused) publishShared[reference] = { state: 'refused', error: reason };

  return {
    requests,
    ...(acme === undefined ? {} : acme.plan),
    publish: {
      edges,
      edge_count: edgeCount,
      sites: accepted.length,
      refused_sites: refused.size,
      ca_cert: caCert,
    },
    publishShared,
  };
}

/**
 * The root's ACME service (acme/main.ts): its configuration, its API's certificate (sites CA, the root's address),
 * its service, and what the edges need to reach it.
 */
function acmeService(
  input: ProfileInput,
  acme: NonNullable<CdnParams['acme']>,
  sites: { id: string; domains: string[] }[],
): { plan: Pick<PartitionPlan, 'files' | 'certificates' | 'services'>; forEdges: { url: string; token: string } } {
  const path = input.partition.path;
  const { ip, portBase: port } = input.partition;
  const token = input.secret('acme-edges');
  const config: AcmeConfig = {
    directory: acme.directory,
    ...(acme.email === undefined ? {} : { email: acme.email }),
    ...(acme.ca_pem === undefined ? {} : { caPem: acme.ca_pem }),
    sites: sites.map(({ id, domains }) => ({ id, domains })),
    ip,
    port,
    token,
    certificateFile: join(path, 'certificates', `${ACME_API_CERTIFICATE}.crt`),
    keyFile: join(path, 'certificates', `${ACME_API_CERTIFICATE}.key`),
    stateDir: join(path, 'acme'),
  };
  return {
    plan: {
      files: [
        { path: 'acme/.keep', content: '', mode: 0o600 },
        { path: 'acme.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o600, reload: true },
      ],
      certificates: [{ name: ACME_API_CERTIFICATE, ipAddresses: [ip] }],
      services:
        input.state === 'started' ? [{ name: 'acme', command: program(input, 'acme/main', ['acme.json', path]) }] : [],
    },
    forEdges: { url: `https://${ip}:${port}`, token },
  };
}

/** The root's ACME API certificate (from the sites CA, for the root's address). */
const ACME_API_CERTIFICATE = 'acme-api';

/**
 * Ports an edge uses from its partition's range: sites, control API, certificate endpoint, Varnish's management,
 * plain HTTP.
 */
const EDGE_PORTS = 5;

function edgeProfile(input: ProfileInput): PartitionPlan {
  const p = input.parameters as unknown as EdgeParams;
  const path = input.partition.path;
  const ip = input.partition.ip;
  const port = input.partition.portBase;
  if (input.partition.portCount < EDGE_PORTS)
    throw new Error(`an edge needs ${EDGE_PORTS} ports; this partition has ${input.partition.portCount}`);
  const run = join(path, 'run');
  const days = p.certificate_days ?? DEFAULTS.certificateDays;
  const config: EdgeConfig = {
    name: input.instance_title,
    ip,
    port,
    controlPort: port + 1,
    httpPort: port + 4,
    ...(p.acme === undefined ? {} : { acme: p.acme }),
    certificatePort: port + 2,
    certificateToken: input.secret('certificate-endpoint'),
    sites: p.sites,
    originAdminSocket: join(run, 'caddy-origin-admin.sock'),
    originStorageDir: join(path, 'caddy', 'origin'),
    varnishWorkDir: join(path, 'varnish'),
    vclFile: join(run, 'live.vcl'),
    varnishSocket: join(run, 'varnish.sock'),
    purgeSocket: join(run, 'purge.sock'),
    originSocket: join(run, 'origin.sock'),
    certificateDir: join(path, 'certificates'),
  };
  // The edge Caddy's configuration never changes while the sites do (caddy.ts says why).
  const edgeCaddy = edgeCaddyConfig({
    adminSocket: join(run, 'caddy-edge-admin.sock'),
    storageDir: join(path, 'caddy', 'edge'),
    listen: `${ip}:${port}`,
    varnishSocket: config.varnishSocket,
    certificateUrl: `http://${ip}:${config.certificatePort}/certificate?token=${config.certificateToken}`,
  });
  // The origin side starts with no site; the edge program loads them.
  const originCaddy = originCaddyConfig({
    adminSocket: config.originAdminSocket,
    storageDir: config.originStorageDir,
    originSocket: config.originSocket,
    sites: [],
  });
  // What Varnish starts with (after a restart too): the current sites' host names; the edge program loads the
  // same VCL when they change, without a restart.
  const bootVcl = edgeVcl({
    originSocket: config.originSocket,
    cacheName: input.instance_title,
    sites: p.sites.map(({ id, domains }) => ({ id, domains })),
  });
  const running = input.state === 'started';
  const caddyEnv = (name: string) => ({
    XDG_DATA_HOME: join(path, 'caddy', name, 'data'),
    XDG_CONFIG_HOME: join(path, 'caddy', name, 'config'),
  });
  return {
    files: [
      { path: 'run/.keep', content: '', mode: 0o600 },
      { path: 'caddy/edge/.keep', content: '', mode: 0o600 },
      { path: 'caddy/origin/.keep', content: '', mode: 0o600 },
      { path: 'certificates/.keep', content: '', mode: 0o600 },
      { path: 'edge.vcl', content: bootVcl, mode: 0o600, reload: true },
      // Holds the certificate endpoint's token.
      { path: 'caddy-edge.json', content: `${JSON.stringify(edgeCaddy, null, 2)}\n`, mode: 0o600 },
      { path: 'caddy-origin-initial.json', content: `${JSON.stringify(originCaddy, null, 2)}\n`, mode: 0o600 },
      { path: 'edge.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o600, reload: true },
    ],
    // From the master's sites CA, through the agent (in certificates/: see SiteCertificateSpec).
    // With ACME, the sites' come from the root's ACME service instead (edge/main.ts).
    certificates: [
      ...(p.acme === undefined
        ? p.sites.map((site) => ({ name: siteCertificateName(site.id), dnsNames: site.domains, days }))
        : []),
      { name: CONTROL_CERTIFICATE, ipAddresses: [ip], days },
    ],
    services: running
      ? [
          { name: 'caddy-edge', command: ['caddy', 'run', '--config', 'caddy-edge.json'], env: caddyEnv('edge') },
          {
            name: 'caddy-origin',
            command: ['caddy', 'run', '--config', 'caddy-origin-initial.json'],
            env: caddyEnv('origin'),
          },
          {
            name: 'varnish',
            command: varnishdCommand({
              workDir: config.varnishWorkDir,
              vclFile: join(path, 'edge.vcl'),
              clientSocket: config.varnishSocket,
              purgeSocket: config.purgeSocket,
              cacheMiB: p.cache_mib ?? DEFAULTS.cacheMiB,
              management: `${ip}:${port + 3}`,
            }),
          },
          { name: 'edge', command: program(input, 'edge/main', ['edge.json', path]) },
        ]
      : [],
    promises: running
      ? [
          { name: 'edge-https', kind: 'tcp', host: ip, port, periodMs: 10_000 },
          { name: 'edge-control', kind: 'tcp', host: ip, port: config.controlPort, periodMs: 10_000 },
        ]
      : [],
    publish: {
      url: `https://${ip}:${port}`,
      http_url: `http://${ip}:${config.httpPort}`,
      control_url: `https://${ip}:${config.controlPort}`,
    },
  };
}

export default defineRelease({
  softwareTypes: {
    [CDN_TYPE]: {
      parameters: cdnParameters,
      connection: looseObject,
      profile: cdnProfile,
    },
    [EDGE_TYPE]: { parameters: edgeParameters, connection: looseObject, profile: edgeProfile },
  },
});
