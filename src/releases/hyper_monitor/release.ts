/**
 * `hyper_monitor`: the platform's own monitoring, as an instance (`hox up` requests one, `monitor`, as the admin).
 *
 * - Prometheus from Debian, in the partition: it scrapes the master's `GET /metrics` (every node's metrics,
 *   every partition's usage and limits, promises, the API) as this instance. The node's agent writes the master's
 *   address (Prometheus file service discovery), its roots and this instance's token into `master/`
 *   (`masterAccess`); the master lets an instance read /metrics only when it is of this release in one of the
 *   admin's trees. Its web API is HTTPS (a sites-CA certificate for the partition's address) with basic auth
 *   (user `monitor`, the published `password`); retention in days and in MiB are parameters.
 * - The watch program (watch/main.ts) reads the history back from Prometheus, forecasts when each resource runs
 *   out (src/maintenance: Holt-Winters with a daily season, with its band) and reports the alerts to the master
 *   (`hox alerts`).
 */
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { defineRelease, type PartitionPlan, type ProfileInput } from '../../release-kit/types.js';
import { releaseProgram } from '../../release-kit/program.js';
import { MASTER_DIR, type WatchConfig } from './protocol.js';

export const MONITOR_TYPE = 'default';
export const WEB_USER = 'monitor';
const WEB_CERTIFICATE = 'web';
const DEFAULTS = {
  retentionDays: 15,
  scrapeIntervalS: 15,
  evaluateIntervalS: 60,
  windowHours: 72,
  warningHours: 24,
  criticalHours: 2,
};

const parameters = {
  type: 'object',
  additionalProperties: false,
  properties: {
    retention_days: { type: 'integer', minimum: 1, maximum: 3650, description: 'How long Prometheus keeps samples' },
    retention_mib: {
      type: 'integer',
      minimum: 64,
      maximum: 16777216,
      description: 'At most this much on disk (MiB): the oldest blocks go first',
    },
    scrape_interval_s: { type: 'integer', minimum: 1, maximum: 300, description: 'Seconds between two scrapes' },
    evaluate_interval_s: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      description: 'Seconds between two evaluations of the forecasts',
    },
    window_hours: {
      type: 'number',
      minimum: 0.01,
      maximum: 720,
      description: 'History each forecast reads (a daily season needs two days of it)',
    },
    warning_hours: {
      type: 'number',
      minimum: 0.001,
      maximum: 8760,
      description: 'A resource forecast to run out within this is a warning',
    },
    critical_hours: {
      type: 'number',
      minimum: 0.001,
      maximum: 8760,
      description: '…and within this, critical',
    },
  },
} as const;

interface MonitorParams {
  retention_days?: number;
  retention_mib?: number;
  scrape_interval_s?: number;
  evaluate_interval_s?: number;
  window_hours?: number;
  warning_hours?: number;
  critical_hours?: number;
}

/** bcrypt of the web password, salted from the partition's secret: the same at every convergence (no restart). */
const hashes = new Map<string, string>();
function webPasswordHash(password: string, saltSecret: string): string {
  const salt = `$2b$10$${bcrypt.encodeBase64(Buffer.from(saltSecret, 'base64url').subarray(0, 16), 16)}`;
  const key = `${password}\n${salt}`;
  let hash = hashes.get(key);
  if (hash === undefined) {
    hash = bcrypt.hashSync(password, salt);
    hashes.set(key, hash);
  }
  return hash;
}

function monitorProfile(input: ProfileInput): PartitionPlan {
  const p = input.parameters as MonitorParams;
  const path = input.partition.path;
  const { ip, portBase: port } = input.partition;
  const at = (...parts: string[]) => join(path, ...parts);
  const password = input.secret('web-password');
  const scrapeS = p.scrape_interval_s ?? DEFAULTS.scrapeIntervalS;
  const url = `https://${ip}:${port}`;

  // JSON is YAML: Prometheus reads these as they are.
  const prometheusConfig = {
    global: {
      scrape_interval: `${scrapeS}s`,
      scrape_timeout: `${Math.min(10, scrapeS)}s`,
      external_labels: { monitor: input.instance_title },
    },
    scrape_configs: [
      {
        job_name: 'hox',
        // The master's labels are the platform's own (`instance` is an instance's title): kept as they are.
        honor_labels: true,
        scheme: 'https',
        metrics_path: '/metrics',
        authorization: { type: 'Bearer', credentials_file: at(MASTER_DIR, 'token') },
        tls_config: { ca_file: at(MASTER_DIR, 'ca.pem') },
        file_sd_configs: [{ files: [at(MASTER_DIR, 'targets.json')], refresh_interval: '1m' }],
      },
    ],
  };
  const webConfig = {
    tls_server_config: {
      cert_file: at('certificates', `${WEB_CERTIFICATE}.crt`),
      key_file: at('certificates', `${WEB_CERTIFICATE}.key`),
    },
    basic_auth_users: { [WEB_USER]: webPasswordHash(password, input.secret('web-password-salt')) },
  };
  const watch: WatchConfig = {
    prometheus: {
      url,
      user: WEB_USER,
      passwordFile: at('web-password'),
      caFile: at('certificates', 'ca.crt'),
    },
    master: {
      urlFile: at(MASTER_DIR, 'url'),
      tokenFile: at(MASTER_DIR, 'token'),
      caFile: at(MASTER_DIR, 'ca.pem'),
      instanceFile: at(MASTER_DIR, 'instance'),
    },
    intervalS: p.evaluate_interval_s ?? DEFAULTS.evaluateIntervalS,
    windowS: Math.round((p.window_hours ?? DEFAULTS.windowHours) * 3600),
    stepS: Math.max(scrapeS, 1),
    warningS: Math.round((p.warning_hours ?? DEFAULTS.warningHours) * 3600),
    criticalS: Math.round((p.critical_hours ?? DEFAULTS.criticalHours) * 3600),
  };
  const running = input.state === 'started';
  return {
    masterAccess: true,
    certificates: [{ name: WEB_CERTIFICATE, ipAddresses: [ip] }],
    files: [
      { path: 'prometheus.yml', content: `${JSON.stringify(prometheusConfig, null, 2)}\n` },
      // Re-read by Prometheus at each request: a renewed certificate needs no restart.
      { path: 'web.yml', content: `${JSON.stringify(webConfig, null, 2)}\n`, reload: true },
      { path: 'web-password', content: password, mode: 0o600, reload: true },
      { path: 'watch.json', content: `${JSON.stringify(watch, null, 2)}\n` },
    ],
    services: running
      ? [
          {
            name: 'prometheus',
            command: [
              'prometheus',
              `--config.file=${at('prometheus.yml')}`,
              `--web.config.file=${at('web.yml')}`,
              `--web.listen-address=${ip}:${port}`,
              `--storage.tsdb.path=${at('data')}`,
              `--storage.tsdb.retention.time=${p.retention_days ?? DEFAULTS.retentionDays}d`,
              ...(p.retention_mib === undefined ? [] : [`--storage.tsdb.retention.size=${p.retention_mib}MB`]),
              '--log.level=warn',
            ],
            stopTimeoutMs: 30_000,
          },
          {
            name: 'watch',
            command: releaseProgram(import.meta.url, input.tools.node, 'watch/main', [at('watch.json'), path]),
          },
        ]
      : [],
    promises: running ? [{ name: 'prometheus', kind: 'tcp', host: ip, port, periodMs: 10_000 }] : [],
    publish: {
      url,
      user: WEB_USER,
      password,
      retention_days: p.retention_days ?? DEFAULTS.retentionDays,
      retention_mib: p.retention_mib ?? null,
    },
  };
}

export default defineRelease({
  softwareTypes: {
    [MONITOR_TYPE]: { parameters, connection: { type: 'object' }, profile: monitorProfile },
  },
});
