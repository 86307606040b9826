/**
 * Caddy JSON configurations of hyper_edge (pure): the app's public endpoint
 * on the root partition, and each replica's local proxy in front of the
 * version it serves. Plain HTTP on the partition's address: TLS and HTTP/3
 * at the edge are hyper_cdn's job.
 */

export interface CaddyCommon {
  /** Where Caddy keeps its state (inside the partition). */
  storageDir: string;
  /** `unix/<path>` for an admin endpoint on a socket, or null to disable the admin API. */
  adminSocket: string | null;
  listen: string;
  /**
   * A unix socket to send the access log to, one JSON line per request (Caddy's `net` writer): the replica's
   * runner counts requests from it (runner/request-metrics.ts). It must listen before the configuration loads.
   */
  accessLog?: string;
}

/** The Host header the runner sends to its Caddy's admin socket (Caddy checks it). */
export const ADMIN_ORIGIN = 'hox-runner';

const ACCESS_LOGGER = 'access';

function base(common: CaddyCommon, route: Record<string, unknown>): Record<string, unknown> {
  const access = `http.log.access.${ACCESS_LOGGER}`;
  return {
    admin:
      common.adminSocket === null
        ? { disabled: true }
        : { listen: `unix/${common.adminSocket}`, origins: [ADMIN_ORIGIN], config: { persist: false } },
    logging: {
      logs:
        common.accessLog === undefined
          ? { default: { level: 'WARN' } }
          : {
              default: { level: 'WARN', exclude: [access] },
              [ACCESS_LOGGER]: {
                writer: { output: 'net', address: `unix/${common.accessLog}` },
                encoder: { format: 'json' },
                include: [access],
              },
            },
    },
    storage: { module: 'file_system', root: common.storageDir },
    apps: {
      http: {
        servers: {
          edge: {
            listen: [common.listen],
            automatic_https: { disable: true },
            ...(common.accessLog === undefined ? {} : { logs: { default_logger_name: ACCESS_LOGGER } }),
            routes: [{ handle: [route] }],
          },
        },
      },
    },
  };
}

function unavailable(message: string): Record<string, unknown> {
  return {
    handler: 'static_response',
    status_code: 503,
    headers: { 'Content-Type': ['text/plain; charset=utf-8'], 'Retry-After': ['2'] },
    body: `${message}\n`,
  };
}

/**
 * The public endpoint: round robin over the replicas' local proxies. A replica that refuses the connection
 * (restarting, moved) is skipped and the request retried on another for up to 5 s.
 */
export function publicEndpointConfig(
  common: CaddyCommon,
  upstreams: string[],
  appName: string,
): Record<string, unknown> {
  if (upstreams.length === 0) return base(common, unavailable(`${appName}: no replica is serving yet`));
  return base(common, {
    handler: 'reverse_proxy',
    upstreams: upstreams.map((dial) => ({ dial })),
    load_balancing: { selection_policy: { policy: 'round_robin' }, try_duration: '5s', try_interval: '100ms' },
    health_checks: { passive: { fail_duration: '5s', max_fails: 1 } },
    // The replica's Caddy says `Server: Caddy` too: one is enough.
    headers: { response: { delete: ['Server'] } },
  });
}

/** What a replica's local proxy serves: the app's web process, a static directory, or nothing yet. */
export type ReplicaTarget =
  { kind: 'proxy'; dial: string } | { kind: 'static'; root: string } | { kind: 'none'; message: string };

export function replicaProxyConfig(common: CaddyCommon, target: ReplicaTarget): Record<string, unknown> {
  switch (target.kind) {
    case 'proxy':
      return base(common, {
        handler: 'reverse_proxy',
        upstreams: [{ dial: target.dial }],
        load_balancing: { try_duration: '2s', try_interval: '100ms' },
      });
    case 'static':
      return base(common, { handler: 'file_server', root: target.root });
    case 'none':
      return base(common, unavailable(target.message));
  }
}
