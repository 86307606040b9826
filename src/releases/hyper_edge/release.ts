/**
 * `hyper_edge`: the PaaS release. An application is an instance tree whose
 * root (`app`) holds what to run; the platform does the rest.
 *
 * - `app` (the root): requests `scale` replicas (spread over nodes when it
 *   can), requests the app's postgres addon as a shared instance of a
 *   hyper_db cluster, hands every replica the release (source artifact, id)
 *   and its environment (config vars, generated secrets, the addon's
 *   `DATABASE_URL` and `PG*`), and runs the app's public endpoint: Caddy,
 *   round robin over the replicas that serve. Publishes `url` and the
 *   replicas' status.
 * - `replica`: the source archive (an artifact the agent copies in), a local
 *   Caddy (the replica's stable address) and the runner, which builds the
 *   release, checks its health and moves the local Caddy to it with no
 *   request lost, or rolls back (src/releases/hyper_edge/runner/runner.ts).
 *
 * The `deploy` parameters come from `hox app deploy` (src/cli/app/), which
 * reads the manifest first (src/releases/hyper_edge/manifest/).
 */
import { join } from 'node:path';
import {
  defineRelease,
  type InstanceRequestSpec,
  type PartitionPlan,
  type ProfileInput,
} from '../../release-kit/types.js';
import { releaseProgram } from '../../release-kit/program.js';
import { publicEndpointConfig, replicaProxyConfig } from './caddy-config.js';
import { appHealth, describeAppHealth, type ReplicaHealthInput } from './app-health.js';
import type { EndpointConfig, ReplicaStatus, RunnerConfig } from './protocol.js';
import { MAX_CDN_DOMAINS } from './manifest/hox-toml.js';

export const REPLICA_TYPE = 'replica';
export const APP_TYPE = 'app';
const HYPER_DB_RELEASE = 'hyper_db';
const HYPER_CDN_RELEASE = 'hyper_cdn';
const STOP_TIMEOUT_S = 10;

/** argv running one of this release's programs with the agent's Node.js (through tsx when run from source). */
function program(input: ProfileInput, relative: string, args: string[]): string[] {
  return releaseProgram(import.meta.url, input.tools.node, relative, args);
}

const envSchema = {
  type: 'object',
  maxProperties: 200,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' },
  additionalProperties: { type: 'string', maxLength: 32768 },
} as const;

const releaseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'artifact'],
  properties: {
    id: {
      type: 'integer',
      minimum: 1,
      description: 'Release number (v1, v2…), new for every deploy, config change or rollback',
    },
    artifact: {
      type: 'string',
      pattern: '^[0-9a-f]{64}$',
      description: 'SHA-256 of the source archive uploaded to the master',
    },
    env: { ...envSchema, description: 'Config vars (hox app config)' },
    description: { type: 'string', maxLength: 500 },
    created_at: { type: 'string', maxLength: 40 },
  },
} as const;

const REPLICA_TITLE = '^replica-[0-9]{1,2}$';

/** `hox app restart`: one replica's restart (the runner applies each id once). */
const restartSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9]{1,32}$' },
    process: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,63}$', description: 'A process type; absent: all' },
  },
} as const;

/** `hox app run`: a one-off command, an argument vector run without a shell. */
const runSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'argv', 'timeout_s'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9]{1,32}$' },
    argv: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 8192 } },
    timeout_s: { type: 'integer', minimum: 1, maximum: 86400 },
  },
} as const;

const appParameters = {
  type: 'object',
  additionalProperties: false,
  properties: {
    release: releaseSchema,
    /** What the root needs from the manifest the CLI read (the runner reads the archive's own). */
    manifest: {
      type: 'object',
      additionalProperties: false,
      properties: {
        web_scale: { type: 'integer', minimum: 1, maximum: 20 },
        secrets: { type: 'array', maxItems: 50, items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' } },
        postgres: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' } },
        },
        cdn: {
          type: 'object',
          additionalProperties: false,
          required: ['domains'],
          properties: {
            domains: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_CDN_DOMAINS,
              items: { type: 'string', maxLength: 253 },
            },
          },
          description: 'The app behind the CDN for these host names ([cdn] in hox.toml): a hyper_cdn site',
        },
      },
    },
    env: {
      ...envSchema,
      description: 'Config vars set before the first release (hox app create, config set): the first deploy takes them',
    },
    scale: { type: 'integer', minimum: 1, maximum: 20, description: 'Replicas (overrides the manifest)' },
    memory_mib: {
      type: 'integer',
      minimum: 64,
      maximum: 65536,
      description:
        "Each replica's memory limit in MiB (its whole partition: web, workers, one-off runs); absent: the node's",
    },
    db_cluster: {
      type: 'object',
      additionalProperties: false,
      required: ['title', 'instance_guid'],
      properties: { title: { type: 'string', maxLength: 200 }, instance_guid: { type: 'string', maxLength: 100 } },
      description: 'The hyper_db cluster hosting the postgres addon (its root instance)',
    },
    history: {
      type: 'array',
      maxItems: 20,
      items: releaseSchema,
      description: 'Previous releases, newest first (rollback)',
    },
    failed_releases: {
      type: 'array',
      maxItems: 20,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'reason'],
        properties: {
          id: { type: 'integer', minimum: 1 },
          description: { type: 'string', maxLength: 500 },
          created_at: { type: 'string', maxLength: 40 },
          failed_at: { type: 'string', maxLength: 40 },
          replica: { type: 'string', maxLength: 200 },
          reason: { type: 'string', maxLength: 4000 },
        },
      },
      description:
        'Releases that failed and were rolled back (or never served), newest first: hox app status lists them',
    },
    last_release_id: {
      type: 'integer',
      minimum: 0,
      description: 'Highest release number ever used, failed ones included (numbers are never reused)',
    },
    restart: {
      type: 'object',
      maxProperties: 20,
      propertyNames: { pattern: REPLICA_TITLE },
      additionalProperties: restartSchema,
      description: 'hox app restart: per replica, the last restart asked (applied once per id)',
    },
    runs: {
      type: 'array',
      maxItems: 10,
      items: {
        ...runSchema,
        required: [...runSchema.required, 'replica'],
        properties: { ...runSchema.properties, replica: { type: 'string', pattern: REPLICA_TITLE } },
      },
      description: 'hox app run: one-off commands running, each on one replica (removed when done)',
    },
  },
} as const;

const replicaParameters = {
  type: 'object',
  additionalProperties: false,
  required: ['app'],
  properties: {
    app: { type: 'string', maxLength: 200 },
    release: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'sha256'],
      properties: { id: { type: 'integer', minimum: 1 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
    },
    env: envSchema,
    app_url: {
      type: 'string',
      maxLength: 300,
      pattern: '^https?://[^\\s]+$',
      description: "The app's public URL (APP_URL in its environment unless [env] or a config var sets it)",
    },
    pg_ca_cert: {
      type: 'string',
      maxLength: 16384,
      description: "The hyper_db cluster's CA (PEM): apps verify the server",
    },
    run_workers: { type: 'boolean' },
    memory_mib: { type: 'integer', minimum: 64, maximum: 65536 },
    restart: restartSchema,
    runs: { type: 'array', maxItems: 10, items: runSchema },
  },
} as const;

const looseObject = { type: 'object' } as const;

interface AppParams {
  release?: { id: number; artifact: string; env?: Record<string, string> };
  env?: Record<string, string>;
  manifest?: { web_scale?: number; secrets?: string[]; postgres?: { name: string }; cdn?: { domains: string[] } };
  scale?: number;
  memory_mib?: number;
  db_cluster?: { title: string; instance_guid: string };
  restart?: Record<string, { id: string; process?: string }>;
  runs?: { id: string; replica: string; argv: string[]; timeout_s: number }[];
}

/** The addon's variables from the database shared instance's connection parameters. */
function postgresEnv(connection: Record<string, unknown>): Record<string, string> | null {
  const str = (k: string) => (typeof connection[k] === 'string' ? connection[k] : null);
  const url = str('rw_url');
  if (url === null) return null;
  const out: Record<string, string> = { DATABASE_URL: url };
  const pairs: [string, unknown][] = [
    ['PGHOST', connection.host],
    ['PGPORT', connection.port],
    ['PGDATABASE', connection.dbname],
    ['PGUSER', connection.user],
    ['PGPASSWORD', connection.password],
  ];
  for (const [k, v] of pairs) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

/** The one-off commands (`hox app run`) of one replica. */
function runsOf(p: AppParams, replica: string): { id: string; argv: string[]; timeout_s: number }[] {
  return (p.runs ?? []).filter((r) => r.replica === replica).map(({ replica: _r, ...run }) => run);
}

/** Caddy's directory (its admin socket, data and autosave live there): created by rendering a file in it. */
const CADDY_DIR_FILE = { path: 'caddy/.keep', content: '', mode: 0o600 };

const PG_CA_FILE = 'postgres-ca.crt';

/** The app's health as the profile last judged it (app-health.ts): `ok`, or the verdict that is not. */
const SERVING_HEALTH_FILE = 'serving-health.txt';
/** The `serving` promise's script: passes on `ok`, else fails with the verdict (its last line is the message). */
const SERVING_CHECK_FILE = {
  path: 'serving-check.sh',
  content: `IFS= read -r line < ${SERVING_HEALTH_FILE}\n[ "$line" = ok ] && exit 0\nprintf '%s\\n' "$line" >&2\nexit 1\n`,
  mode: 0o600,
};

/**
 * With the cluster's CA at hand, the app verifies the server it talks to (`verify-full`: the
 * certificate and its address), through the URL (node-postgres, libpq) and the PG* variables.
 */
function verifiedPostgresEnv(env: Record<string, string>, caPath: string): Record<string, string> {
  const out: Record<string, string> = { ...env, PGSSLMODE: 'verify-full', PGSSLROOTCERT: caPath };
  if (env.DATABASE_URL !== undefined) {
    const url = new URL(env.DATABASE_URL);
    url.searchParams.set('sslmode', 'verify-full');
    url.searchParams.set('sslrootcert', caPath);
    out.DATABASE_URL = url.toString();
  }
  return out;
}

function caddyService(input: ProfileInput, config: string) {
  const path = input.partition.path;
  return {
    name: 'caddy',
    command: ['caddy', 'run', '--config', config],
    env: { XDG_DATA_HOME: join(path, 'caddy', 'data'), XDG_CONFIG_HOME: join(path, 'caddy', 'config') },
  };
}

function appProfile(input: ProfileInput): PartitionPlan {
  const p = input.parameters as AppParams;
  const name = input.instance_title;
  const replicas = p.scale ?? p.manifest?.web_scale ?? 1;
  const problems: string[] = [];
  const requests: InstanceRequestSpec[] = [];

  // The postgres addon: a database on the chosen hyper_db cluster.
  let addonEnv: Record<string, string> = {};
  let pgCaCert: string | undefined;
  let addonReady = true;
  let addonProblem: string | null = null;
  const pg = p.manifest?.postgres;
  if (pg !== undefined) {
    if (p.db_cluster === undefined) {
      addonProblem = `the postgres addon '${pg.name}' needs a hyper_db cluster (deploy with --db-cluster)`;
      problems.push(addonProblem);
      addonReady = false;
    } else {
      const title = `addon-${pg.name}`;
      requests.push({
        title,
        softwareReleaseUrl: HYPER_DB_RELEASE,
        softwareType: 'cluster',
        shared: true,
        sla: { instance_guid: p.db_cluster.instance_guid },
        parameters: { database: pg.name },
        state: 'started',
      });
      const answer = input.requested[title];
      const env = answer?.ready ? postgresEnv(answer.connectionParameters) : null;
      if (env === null) {
        addonReady = false;
        // The cluster refusing the database (a name taken…) or the master refusing the request.
        addonProblem =
          typeof answer?.connectionParameters.error === 'string'
            ? answer.connectionParameters.error
            : (answer?.error ?? null);
        problems.push(
          `postgres addon '${pg.name}' on cluster '${p.db_cluster.title}': ${addonProblem ?? 'not ready yet'}`,
        );
      } else {
        addonEnv = env;
        const ca = answer?.connectionParameters.ca_cert;
        if (typeof ca === 'string') pgCaCert = ca;
      }
    }
  }

  const secrets: Record<string, string> = {};
  for (const s of p.manifest?.secrets ?? []) secrets[s] = input.secret(`env:${s}`);
  // Lowest first: generated secrets, config vars, the addon's variables (the manifest's [env] and APP_URL go
  // under all of these, in the runner: it reads [env] from the release's own archive).
  const env = { ...secrets, ...p.release?.env, ...addonEnv };
  const release = p.release !== undefined && addonReady ? { id: p.release.id, sha256: p.release.artifact } : undefined;

  const ip = input.partition.ip;
  const port = input.partition.portBase;
  const url = `http://${ip}:${port}/`;

  // `[cdn]`: the app's public endpoint as the origin of a site on the platform's CDN (a shared instance of
  // hyper_cdn, hosted by the owner's CDN or the admin's), as the postgres addon is one of a hyper_db cluster.
  let cdn: Record<string, unknown> | undefined;
  const cdnDomains = p.manifest?.cdn?.domains;
  const cdnTitle = `cdn-${name}`;
  // Requested while `[cdn]` is in the manifest; once it left, requested destroyed (a request merely dropped from
  // the plan would leave the site).
  if (cdnDomains !== undefined || input.requested[cdnTitle] !== undefined)
    requests.push({
      title: cdnTitle,
      softwareReleaseUrl: HYPER_CDN_RELEASE,
      softwareType: 'cdn',
      shared: true,
      parameters: cdnDomains === undefined ? {} : { domains: cdnDomains, origin: url.slice(0, -1) },
      state: cdnDomains === undefined ? 'destroyed' : 'started',
    });
  if (cdnDomains !== undefined) {
    const answer = input.requested[cdnTitle];
    const site = answer?.connectionParameters ?? {};
    cdn = {
      domains: cdnDomains,
      state: typeof site.state === 'string' ? site.state : answer?.error === undefined ? 'pending' : 'error',
      live_edges: typeof site.live_edges === 'number' ? site.live_edges : 0,
      edge_count: typeof site.edge_count === 'number' ? site.edge_count : 0,
      edges: Array.isArray(site.edges) ? site.edges : [],
      error: typeof site.error === 'string' ? site.error : (answer?.error ?? null),
    };
  }

  const upstreams: string[] = [];
  const statuses: (ReplicaHealthInput & Record<string, unknown>)[] = [];
  for (let i = 1; i <= replicas; i++) {
    const title = `replica-${i}`;
    const previous = input.requested[title];
    const noRoom = previous?.error !== undefined && /no free partition/i.test(previous.error);
    requests.push({
      title,
      softwareReleaseUrl: input.slap_software_release_url,
      softwareType: REPLICA_TYPE,
      // Spread over nodes when there is room; otherwise share a node rather than not run.
      sla: noRoom ? {} : { anti_affinity: `hyper_edge:${name}` },
      state: input.state,
      parameters: {
        app: name,
        ...(release === undefined ? {} : { release }),
        env,
        app_url: url.slice(0, -1),
        ...(pgCaCert === undefined ? {} : { pg_ca_cert: pgCaCert }),
        run_workers: i === 1,
        ...(p.memory_mib === undefined ? {} : { memory_mib: p.memory_mib }),
        ...(p.restart?.[title] === undefined ? {} : { restart: p.restart[title] }),
        ...(runsOf(p, title).length === 0 ? {} : { runs: runsOf(p, title) }),
      },
    });
    const status = previous?.ready === true ? (previous.connectionParameters as Partial<ReplicaStatus>) : undefined;
    if (status?.serving !== null && status?.serving !== undefined && typeof status.upstream === 'string')
      upstreams.push(status.upstream);
    statuses.push({
      name: title,
      upstream: status?.upstream ?? null,
      state: status?.state ?? (previous?.error === undefined ? 'pending' : 'error'),
      serving: status?.serving ?? null,
      deploying: status?.deploying ?? null,
      failed: status?.failed ?? null,
      web_down: status?.web_down ?? null,
      error: previous?.error ?? null,
    });
  }
  // Scale-down: the replicas past the scale that the previous plan requested are destroyed (their partitions
  // freed once their nodes have stopped them). One that is gone is no longer among the answers.
  for (const title of Object.keys(input.requested)) {
    const match = /^replica-(\d+)$/.exec(title);
    if (match === null || Number(match[1]) <= replicas) continue;
    requests.push({
      title,
      softwareReleaseUrl: input.slap_software_release_url,
      softwareType: REPLICA_TYPE,
      state: 'destroyed',
      parameters: { app: name },
    });
  }
  const verdict = appHealth({
    release: p.release?.id ?? null,
    expected: replicas,
    replicas: statuses,
    addon: pg === undefined ? null : { name: pg.name, ready: addonReady, problem: addonProblem },
    routed: null,
  });
  // The `serving` promise fails while the app is degraded or down: the tree's health (hox list) says so.
  const healthLine =
    verdict.health === 'degraded' || verdict.health === 'down' ? describeAppHealth(verdict).replace(/\s+/g, ' ') : 'ok';

  const running = input.state === 'started';
  const common = {
    storageDir: join(input.partition.path, 'caddy', 'data'),
    adminSocket: join(input.partition.path, 'caddy', 'admin.sock'),
    listen: `${ip}:${port}`,
  };
  const endpoint: EndpointConfig = { app: name, ...common, upstreams };
  return {
    requests,
    files: [
      CADDY_DIR_FILE,
      // Caddy starts with no upstream; the endpoint program loads the real configuration through Caddy's
      // admin socket, then publishes what is routed (so `hox app deploy` returns once traffic can flow).
      {
        path: 'caddy-initial.json',
        content: `${JSON.stringify(publicEndpointConfig(common, [], name), null, 2)}\n`,
        mode: 0o600,
      },
      { path: 'endpoint.json', content: `${JSON.stringify(endpoint, null, 2)}\n`, mode: 0o600, reload: true },
      { path: SERVING_HEALTH_FILE, content: `${healthLine}\n`, mode: 0o600, reload: true },
      SERVING_CHECK_FILE,
    ],
    services: running
      ? [
          caddyService(input, 'caddy-initial.json'),
          { name: 'endpoint', command: program(input, 'endpoint/main', ['endpoint.json', input.partition.path]) },
        ]
      : [],
    promises: running
      ? [
          { name: 'public-endpoint', kind: 'tcp', host: ip, port, periodMs: 10_000 },
          { name: 'serving', kind: 'command', command: ['/bin/sh', SERVING_CHECK_FILE.path], periodMs: 5000 },
        ]
      : [],
    publish: {
      url,
      release: p.release?.id ?? null,
      replicas: statuses,
      serving_replicas: upstreams.length,
      ...(pg === undefined
        ? {}
        : { addon: { kind: 'postgres', name: pg.name, ready: addonReady, problem: addonProblem } }),
      health: verdict.health,
      health_message: verdict.message,
      ...(cdn === undefined ? {} : { cdn }),
      // For `hox app config list --reveal` (the tree's owner only; `hox show` masks it without --reveal).
      ...(Object.keys(secrets).length === 0 ? {} : { secrets }),
      problems,
    },
  };
}

function replicaProfile(input: ProfileInput): PartitionPlan {
  const p = input.parameters as {
    app: string;
    release?: { id: number; sha256: string };
    env?: Record<string, string>;
    app_url?: string;
    pg_ca_cert?: string;
    run_workers?: boolean;
    memory_mib?: number;
    restart?: { id: string; process?: string };
    runs?: { id: string; argv: string[]; timeout_s: number }[];
  };
  const path = input.partition.path;
  const ip = input.partition.ip;
  const base = input.partition.portBase;
  const adminSocket = join(path, 'caddy', 'admin.sock');
  // Named by the release number, not the artifact's hash: a path can end up on a command line. Numbers are
  // never reused by an app, so one path is always the same content.
  const archive = p.release === undefined ? null : `sources/release-${p.release.id}.tar.gz`;
  const config: RunnerConfig = {
    app: p.app,
    replica: input.instance_title,
    host: ip,
    proxyPort: base,
    slotPorts: [base + 1, base + 2],
    adminSocket,
    release: p.release === undefined || archive === null ? null : { ...p.release, archive: join(path, archive) },
    env: p.pg_ca_cert === undefined ? (p.env ?? {}) : verifiedPostgresEnv(p.env ?? {}, join(path, PG_CA_FILE)),
    appUrl: p.app_url ?? null,
    runWorkers: p.run_workers ?? false,
    stopTimeoutS: STOP_TIMEOUT_S,
    restart: p.restart === undefined ? null : { id: p.restart.id, process: p.restart.process ?? null },
    runs: p.runs ?? [],
  };
  const initial = replicaProxyConfig(
    { storageDir: join(path, 'caddy', 'data'), adminSocket, listen: `${ip}:${base}` },
    { kind: 'none', message: `${p.app}: starting` },
  );
  const running = input.state === 'started';
  return {
    ...(p.memory_mib === undefined ? {} : { limits: { memoryBytes: p.memory_mib * 1024 * 1024 } }),
    artifacts: p.release === undefined || archive === null ? [] : [{ sha256: p.release.sha256, path: archive }],
    files: [
      CADDY_DIR_FILE,
      ...(p.pg_ca_cert === undefined ? [] : [{ path: PG_CA_FILE, content: p.pg_ca_cert, mode: 0o644 }]),
      { path: 'runner.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o600, reload: true },
      { path: 'caddy-initial.json', content: `${JSON.stringify(initial, null, 2)}\n`, mode: 0o600 },
    ],
    services: running
      ? [
          caddyService(input, 'caddy-initial.json'),
          {
            name: 'runner',
            command: program(input, 'runner/main', ['runner.json', path]),
            stopTimeoutMs: (STOP_TIMEOUT_S + 5) * 1000,
          },
        ]
      : [],
    promises: running ? [{ name: 'replica-proxy', kind: 'tcp', host: ip, port: base, periodMs: 10_000 }] : [],
    publish: { upstream: `${ip}:${base}` },
  };
}

export default defineRelease({
  softwareTypes: {
    [APP_TYPE]: { parameters: appParameters, connection: looseObject, profile: appProfile },
    [REPLICA_TYPE]: { parameters: replicaParameters, connection: looseObject, profile: replicaProfile },
  },
});
