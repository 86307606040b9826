/** `hox master`: run the master service in the foreground. */
import { Command } from 'commander';
import { createMaster } from '../../master/create-master.js';
import { resolveMasterConfig } from '../../master/master-config.js';

import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';

export function masterCommand(env: CommandEnv): Command {
  return new Command('master')
    .description('Run the master: shared state and the API (SQLite in the data dir, or PostgreSQL)')
    .requiredOption('--data-dir <dir>', 'directory for the SQLite store and the admin token')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8470')
    .option('--database <url>', 'postgres://… to use PostgreSQL instead of SQLite')
    .option(
      '--admin-token-file <file>',
      'file holding the admin token (default: env HOX_ADMIN_TOKEN, else <data-dir>/admin-token, generated)',
    )
    .option('--public-url <url>', 'URL clients use to reach this master, if not http://<listen>')
    .option('--log-level <level>', 'log level (fatal, error, warn, info, debug)', 'info')
    .addHelpText(
      'after',
      `
Examples:
  hox master --data-dir /var/lib/hox
  hox master --data-dir /var/lib/hox --listen 0.0.0.0:8470 --database postgres://hox@db/hox
  HOX_ADMIN_TOKEN=$(cat token) hox master --data-dir ./data --json`,
    )
    .action(
      async (
        opts: {
          dataDir: string;
          listen: string;
          database?: string;
          adminTokenFile?: string;
          publicUrl?: string;
          logLevel: string;
        },
        command: Command,
      ) => {
        const config = resolveMasterConfig({
          dataDir: opts.dataDir,
          listen: opts.listen,
          ...(opts.database === undefined ? {} : { databaseUrl: opts.database }),
          ...(opts.adminTokenFile !== undefined
            ? { adminTokenFile: opts.adminTokenFile }
            : env.adminToken === undefined
              ? {}
              : { adminToken: env.adminToken }),
          ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
          logLevel: opts.logLevel,
        });
        const master = createMaster(config);
        const { url } = await master.start();
        env.onStop(() => master.stop());
        const summary = {
          url,
          store: config.databaseUrl === undefined ? 'sqlite' : 'postgres',
          data_dir: config.dataDir,
          admin_token_file: config.adminTokenFile ?? null,
        };
        if (globals(command).json === true) env.print(JSON.stringify(summary));
        else {
          env.print(`hox master listening on ${url} (store: ${summary.store})`);
          env.print(
            summary.admin_token_file ? `admin token: ${summary.admin_token_file}` : 'admin token: from HOX_ADMIN_TOKEN',
          );
          env.print(`API: ${url}/openapi.json   health: ${url}/health`);
        }
      },
    );
}
