/**
 * What hyper_cdn's pieces say to each other: the edge program's configuration (rendered by the `edge` profile),
 * what an edge publishes at runtime, and the control API's answers (purges, statistics) the CLI reads.
 */

/** A site as an edge serves it (the `cdn` profile checked it). */
export interface EdgeSiteSpec {
  /** `s` + 12 hex digits of the site's instance guid: what X-Hox-Site carries. */
  id: string;
  /** The shared instance's title (for logs). */
  title: string;
  domains: string[];
  origin: string;
  /** SHA-256 (hex) of the site's purge token: the edge checks tokens without holding them. */
  token_sha256: string;
}

/** `edge.json`, the edge program's configuration (reloaded when it changes). */
export interface EdgeConfig {
  /** The edge's name (`edge-1`…): its cache's name in Cache-Status, and in every answer. */
  name: string;
  ip: string;
  /** TCP and UDP port of the sites (HTTPS: HTTP/1.1, 2, 3). */
  port: number;
  /** TCP port of the control API (HTTPS). */
  controlPort: number;
  /** TCP port of plain HTTP: ACME challenges, and a redirect to HTTPS for the rest. */
  httpPort: number;
  /**
   * The sites' certificates come from the CDN's ACME service (in the root partition, `acme/main.ts`) rather than
   * from the master's sites CA: its address and the edges' token.
   */
  acme?: { url: string; token: string };
  /** TCP port of the certificate endpoint the edge Caddy calls (HTTP on the partition's address), and its token. */
  certificatePort: number;
  certificateToken: string;
  sites: EdgeSiteSpec[];
  /** The origin-side Caddy's admin socket and storage (the edge Caddy is never reloaded). */
  originAdminSocket: string;
  originStorageDir: string;
  varnishWorkDir: string;
  /** The VCL the edge program writes and loads into Varnish. */
  vclFile: string;
  varnishSocket: string;
  purgeSocket: string;
  originSocket: string;
  /**
   * Where the node's agent writes the certificates the edge's plan asks for (from the master's sites CA):
   * `<name>.crt` and `<name>.key` ({@link siteCertificateName}, {@link CONTROL_CERTIFICATE}), `ca.crt` and
   * `status.json` (src/agent/site-certificates.ts).
   */
  certificateDir: string;
}

/** The control API's certificate (the edge's address). */
export const CONTROL_CERTIFICATE = 'control';

/** A site's certificate files' name. */
export function siteCertificateName(siteId: string): string {
  return `site-${siteId}`;
}

/** What an edge publishes (`.hox/publish.json`), merged over its profile's `publish`. */
export interface EdgeStatus {
  url: string;
  /** Plain HTTP (ACME challenges, redirects to HTTPS). */
  http_url: string;
  control_url: string;
  /** Site ids this edge serves with their current configuration, and the hash of that configuration. */
  sites: string[];
  config_sha256: string;
  applied_at: string;
  /**
   * Sites this edge does not serve for want of a certificate, and why; `refused`: the master refused it (a host
   * name another tree's site declared first), which no retry mends.
   */
  site_errors: Record<string, { message: string; refused: boolean }>;
  /** The sites CA's roots, which the sites' and the control API's certificates chain to; null before any. */
  ca_cert: string | null;
  /** Why the last configuration was not applied (the previous one keeps serving), or null. */
  error: string | null;
}

export type PurgeKind = 'url' | 'prefix' | 'tag';

export interface PurgeRequest {
  site: string;
  kind: PurgeKind;
  /** Paths (`url`, `prefix`) or tags (`tag`). */
  values: string[];
}

export interface PurgeAnswer {
  edge: string;
  site: string;
  kind: PurgeKind;
  purged: number;
  at: string;
}

/** Per-site counters of one edge since it started, and its time-to-first-byte histogram. */
export interface SiteStats {
  edge: string;
  site: string;
  since: string;
  requests: number;
  hits: number;
  /** Requests answered from the cache after a refresh by the origin (a 304) count as misses. */
  misses: number;
  passes: number;
  errors: number;
  bytes_served: number;
  bytes_from_origin: number;
  origin_fetches: number;
  /** Time to first byte at the cache, in ms: counts per bucket whose upper bounds are TTFB_BUCKETS_MS. */
  ttfb_buckets: number[];
}

/** Upper bounds (ms) of the time-to-first-byte buckets; the last bucket holds everything above. */
export const TTFB_BUCKETS_MS = [
  0.1,
  0.2,
  0.5,
  1,
  2,
  5,
  10,
  20,
  50,
  100,
  200,
  500,
  1000,
  2000,
  5000,
  10_000,
  30_000,
  Number.POSITIVE_INFINITY,
];

/** A percentile (0–100) of a merged histogram: the upper bound of the bucket it falls in, or null when empty. */
export function histogramPercentile(buckets: number[], percentile: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil((percentile / 100) * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= rank) return TTFB_BUCKETS_MS[i] ?? null;
  }
  return null;
}
