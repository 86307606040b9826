/** `hox node`: run the node agent in the foreground. */
import { Command, Option } from 'commander';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { readCaFile } from '../cli-config.js';
import { globals } from '../connect.js';
import { loadNodeRuntime } from '../lazy-modules.js';
import { readSecretFile, secretInArgv } from '../secret-input.js';

export function nodeCommand(env: CommandEnv): Command {
  // --register-token is kept only to be refused with the safe forms: a token in argv is readable by every user (ps).
  const refusedInArgv = new Option('--register-token <token>').hideHelp();
  return new Command('node')
    .description('Run a node agent: register, format partitions, install software, converge instances')
    .requiredOption('--data-dir <dir>', 'directory for credentials, software, state and partitions')
    .option('--partitions <n>', 'number of partitions to format', (v) => Number.parseInt(v, 10), 10)
    .option(
      '--register-token-file <file>',
      'file holding the one-time registration token (first start only; default: env HOX_REGISTER_TOKEN)',
    )
    .addOption(refusedInArgv)
    .option('--ca-pin <sha256:hex>', "the master's CA pin (printed by hox master and hox up): trust the master by it")
    .option('--ca-file <file>', "PEM file of the master's CA roots (default: env HOX_CA_FILE)")
    .option('--node-id <id>', 'compute node id to register as (default: host name)')
    .option('--network <guid>', 'network this node belongs to (SLA network_guid)')
    .option('--ip-prefix <a.b.c>', 'partition i gets address a.b.c.(i+1) (default: a 127.x.y range from the node id)')
    .option('--port-base <port>', 'first port of partition 0', (v) => Number.parseInt(v, 10), 20000)
    .option(
      '--retention-days <days>',
      "days a destroyed instance's retained data (a hyper_db cluster's backups) is kept on this node; 0 keeps nothing",
      (v) => Number(v),
      7,
    )
    .option(
      '--usage-interval <seconds>',
      "seconds between two measurements of the partitions' disk usage and of the node's metrics, reported to the master",
      (v) => Number(v),
      30,
    )
    .option('--quiet', 'do not print convergence events')
    .addHelpText(
      'after',
      `
Examples:
  HOX_REGISTER_TOKEN=$(hox registration-token) hox node --master https://127.0.0.1:8470 --ca-file /var/lib/hox/ca.pem --data-dir /var/lib/hox-node
  hox node --master https://10.0.0.1:8470 --ca-pin sha256:… --data-dir /srv/hox --register-token-file reg.token
  hox node --master https://10.0.0.1:8470 --ca-pin sha256:… --data-dir /srv/hox --ip-prefix 10.0.5 --network lan-1

The CA (pin or file) is needed on the first start only: the node keeps it with its credentials.`,
    )
    .action(
      async (
        opts: {
          dataDir: string;
          partitions: number;
          registerToken?: string;
          registerTokenFile?: string;
          caPin?: string;
          caFile?: string;
          nodeId?: string;
          network?: string;
          ipPrefix?: string;
          portBase: number;
          retentionDays: number;
          usageInterval: number;
          quiet?: boolean;
        },
        command: Command,
      ) => {
        // --master is the program-wide option (hox --master URL node … and hox node --master URL … both work).
        const masterUrl = globals(command).master ?? env.masterUrl;
        if (masterUrl === undefined)
          throw new HoxError('HOX_BAD_REQUEST', 'hox node needs --master URL (or HOX_MASTER_URL)', {
            field: '--master',
          });
        if (opts.registerToken !== undefined)
          throw secretInArgv(
            '--register-token',
            '--register-token-file FILE or the environment variable HOX_REGISTER_TOKEN',
          );
        const registerToken =
          opts.registerTokenFile === undefined
            ? env.registerToken?.trim() || undefined
            : readSecretFile(opts.registerTokenFile, '--register-token-file');
        const caFile = opts.caFile ?? (env.caFile || undefined);
        if (!(Number.isFinite(opts.usageInterval) && opts.usageInterval >= 1 && opts.usageInterval <= 3600))
          throw new HoxError('HOX_BAD_REQUEST', `--usage-interval: ${opts.usageInterval} is not 1 to 3600 seconds`, {
            field: '--usage-interval',
          });
        const { createNodeAgent, resolveNodeAgentConfig } = await loadNodeRuntime();
        const config = resolveNodeAgentConfig({
          masterUrl,
          ...(caFile === undefined
            ? {}
            : { masterCa: readCaFile(caFile, opts.caFile === undefined ? 'HOX_CA_FILE' : '--ca-file') }),
          ...(opts.caPin === undefined ? {} : { masterCaPin: opts.caPin }),
          dataDir: opts.dataDir,
          partitions: opts.partitions,
          portBase: opts.portBase,
          retentionDays: opts.retentionDays,
          diskCheckIntervalMs: Math.round(opts.usageInterval * 1000),
          ...(registerToken === undefined ? {} : { registerToken }),
          ...(opts.nodeId === undefined ? {} : { nodeId: opts.nodeId }),
          ...(opts.network === undefined ? {} : { networkGuid: opts.network }),
          ...(opts.ipPrefix === undefined ? {} : { ipPrefix: opts.ipPrefix }),
        });
        const agent = createNodeAgent(config, {
          log: opts.quiet === true ? () => undefined : (message) => env.print(`${new Date().toISOString()} ${message}`),
        });
        const { nodeId } = await agent.start();
        env.onStop(() => agent.stop());
        env.print(
          `hox node '${nodeId}' converging towards ${config.masterUrl} with ${config.partitions} partitions (data: ${config.dataDir})`,
        );
      },
    );
}
