/** `hox master`: run the master service in the foreground. */
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { positiveInteger } from '../action-context.js';
import { HoxError } from '../../shared/errors.js';

import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';
import { loadMasterRuntime } from '../lazy-modules.js';
import { readSecretFile, secretInArgv, urlHasPassword } from '../secret-input.js';

export function masterCommand(env: CommandEnv): Command {
  return new Command('master')
    .description('Run the master: shared state and the API (SQLite in the data dir, or PostgreSQL)')
    .requiredOption('--data-dir <dir>', 'directory for the SQLite store and the admin token')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8470')
    .option('--database <url>', 'postgres://… to use PostgreSQL instead of SQLite (no password: see --database-file)')
    .option(
      '--database-file <file>',
      'file holding the postgres:// URL, password included (default: env HOX_DATABASE_URL)',
    )
    .option(
      '--store-key-file <file>',
      "key sealing the store's secrets; the same on every master of one PostgreSQL store (default: env HOX_STORE_KEY_FILE, else <data-dir>/store.key, generated)",
    )
    .option(
      '--admin-token-file <file>',
      'file holding the admin token (default: env HOX_ADMIN_TOKEN, else <data-dir>/admin-token, generated)',
    )
    .option('--public-url <url>', 'https:// URL clients use to reach this master, if not https://<listen>')
    .option('--tls-cert <file>', 'PEM certificate chain to serve (default: one issued by the platform CA, renewed)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--tls-name <name...>',
      'more DNS names or IP addresses for the certificate the platform CA issues (the listen address, localhost and the public URL are always in)',
    )
    .addOption(
      new Option(
        '--allow-nodes-without-certificates',
        "accept a node's token without that node's certificate (by default a node calls with both: mutual TLS); for nodes of an older version, until they are upgraded",
      ).conflicts('requireNodeCertificates'),
    )
    .option('--require-node-certificates', 'the default; kept for scripts that say it')
    .option('--log-level <level>', 'log level (fatal, error, warn, info, debug)', 'info')
    .option('--console-dir <dir>', 'serve the web console built in this directory (default: the one built with hox)')
    .addOption(
      new Option('--audit-retention-days <n>', 'days the audit trail keeps an entry (default 90)').argParser(
        positiveInteger,
      ),
    )
    .addOption(
      new Option(
        '--audit-max-rows <n>',
        'entries the audit trail keeps at most, newest first (default 1000000)',
      ).argParser(positiveInteger),
    )
    .addHelpText(
      'after',
      `
Examples:
  hox master --data-dir /var/lib/hox
  hox master --data-dir /var/lib/hox --listen 0.0.0.0:8470 --database postgres://hox@db/hox   # password in ~/.pgpass
  hox master --data-dir /var/lib/hox --database-file /etc/hox/database-url --store-key-file /etc/hox/store.key
  hox master --data-dir /var/lib/hox --listen 0.0.0.0:8470 --tls-name master.example.org
  hox master --data-dir /var/lib/hox --tls-cert /etc/hox/master.pem --tls-key /etc/hox/master.key

The master speaks HTTPS only. Clients trust it through its CA pin, printed at start:
  hox login --url https://HOST:8470 --ca-pin sha256:… --with-token - < admin-token
  HOX_ADMIN_TOKEN=$(cat token) hox master --data-dir ./data --json`,
    )
    .action(
      async (
        opts: {
          dataDir: string;
          listen: string;
          database?: string;
          databaseFile?: string;
          storeKeyFile?: string;
          adminTokenFile?: string;
          publicUrl?: string;
          tlsCert?: string;
          tlsKey?: string;
          tlsName?: string[];
          requireNodeCertificates?: boolean;
          allowNodesWithoutCertificates?: boolean;
          logLevel: string;
          auditRetentionDays?: number;
          auditMaxRows?: number;
          consoleDir?: string;
        },
        command: Command,
      ) => {
        const { createMaster, resolveMasterConfig } = await loadMasterRuntime();
        const databaseUrl = resolveDatabaseUrl(opts, env.databaseUrl);
        const storeKeyFile = opts.storeKeyFile ?? (env.storeKeyFile || undefined);
        const config = resolveMasterConfig({
          dataDir: opts.dataDir,
          listen: opts.listen,
          ...(databaseUrl === undefined ? {} : { databaseUrl }),
          ...(storeKeyFile === undefined ? {} : { storeKeyFile }),
          ...(opts.adminTokenFile !== undefined
            ? { adminTokenFile: opts.adminTokenFile }
            : env.adminToken === undefined
              ? {}
              : { adminToken: env.adminToken }),
          ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
          ...(opts.tlsCert === undefined ? {} : { tlsCertFile: opts.tlsCert }),
          ...(opts.tlsKey === undefined ? {} : { tlsKeyFile: opts.tlsKey }),
          ...(opts.tlsName === undefined ? {} : { tlsNames: opts.tlsName }),
          requireNodeCertificates: opts.allowNodesWithoutCertificates !== true,
          logLevel: opts.logLevel,
          ...(opts.consoleDir === undefined ? {} : { consoleDir: opts.consoleDir }),
          audit: {
            ...(opts.auditRetentionDays === undefined ? {} : { maxAgeMs: opts.auditRetentionDays * 86_400_000 }),
            ...(opts.auditMaxRows === undefined ? {} : { maxRows: opts.auditMaxRows }),
          },
        });
        const master = createMaster(config);
        const { url } = await master.start();
        env.onStop(() => master.stop());
        const platformCertificate = config.tls !== false && config.tls.files === undefined;
        const summary = {
          url,
          console_url: `${url}/`,
          store: config.databaseUrl === undefined ? 'sqlite' : 'postgres',
          data_dir: config.dataDir,
          admin_token_file: config.adminTokenFile ?? null,
          // With the operator's certificate, clients trust it as they trust that certificate's CA.
          ca_pin: platformCertificate ? master.pki.pin : null,
          ca_file: platformCertificate ? join(config.dataDir, 'ca.pem') : null,
          certificate_file: config.tls === false ? null : (config.tls.files?.certFile ?? null),
        };
        if (globals(command).json === true) env.print(JSON.stringify(summary));
        else {
          env.print(`hox master listening on ${url} (store: ${summary.store})`);
          env.print(
            summary.admin_token_file ? `admin token: ${summary.admin_token_file}` : 'admin token: from HOX_ADMIN_TOKEN',
          );
          if (summary.ca_pin !== null) env.print(`CA pin: ${summary.ca_pin}   (roots: ${summary.ca_file})`);
          else env.print(`certificate: ${summary.certificate_file ?? 'none'}`);
          env.print(`API: ${url}/openapi.json   health: ${url}/health`);
          env.print(`web console: ${url}/   (sign in with a token: the admin's, or a user's from hox user token NAME)`);
        }
      },
    );
}

/** The PostgreSQL URL from `--database-file`, `--database` (no password allowed there) or HOX_DATABASE_URL. */
function resolveDatabaseUrl(
  opts: { database?: string; databaseFile?: string },
  fromEnv: string | undefined,
): string | undefined {
  if (opts.database !== undefined && urlHasPassword(opts.database))
    throw secretInArgv(
      '--database',
      '--database-file FILE or the environment variable HOX_DATABASE_URL for a URL with its password, or keep the password in PGPASSFILE (~/.pgpass)',
    );
  if (opts.database !== undefined && opts.databaseFile !== undefined)
    throw new HoxError('HOX_BAD_REQUEST', 'give --database or --database-file, not both', { field: '--database' });
  if (opts.databaseFile !== undefined) return readSecretFile(opts.databaseFile, '--database-file');
  return opts.database ?? (fromEnv?.trim() || undefined);
}
