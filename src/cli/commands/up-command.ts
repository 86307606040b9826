/**
 * `hox up`: the whole platform on this machine — a master on SQLite and a
 * local node agent, built-in releases supplied. Ctrl-C stops it; running it
 * again with the same data dir brings back everything that was deployed.
 */
import { Command } from 'commander';
import { chmodSync, createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MasterClient, isNotReady } from '../../client/master-client.js';
import { readConfigFile, writeConfigFile } from '../cli-config.js';
import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';
import { waitForTree } from '../wait-for-instance.js';
import { loadMasterRuntime, loadNodeRuntime, loadPilot } from '../lazy-modules.js';

/** Releases shipped with hox, supplied to the local node. */
const BUILTIN_RELEASES = ['demo', 'hyper_db', 'hyper_edge', 'hyper_cdn', 'hyper_monitor'];
/** The platform's monitor (Prometheus and the forecasts behind `hox alerts`), an admin tree `hox up` requests. */
const MONITOR_TREE = 'monitor';
const DEFAULT_NODE_ID = 'local';
/**
 * Room for the README's tour on top of the pilot: the monitor 1, the pilot 6 (pilot-db: root + 3 members; crm: root
 * + a replica), hello 1, `hox db create crm-db` 4, `hox db restore crm-copy` 4, a second app 2, `app scale crm 2` 1.
 */
export const DEFAULT_PARTITIONS = 21;
/** The detail (node and master) of a `hox up` run, under its data dir. */
export const UP_LOG_FILE = 'hox-up.log';

/** `12:04:05Z`: the time of a progress line. */
const clockTime = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)}Z`;

export function upCommand(env: CommandEnv): Command {
  return new Command('up')
    .description('Run the platform on this machine: a master (SQLite) and a local node, built-in releases supplied')
    .option(
      '--data-dir <dir>',
      'where everything is kept (default: /var/lib/hox as root, where partition users can reach it; ./hox-data otherwise)',
    )
    .option('--listen <host:port>', 'master address', '127.0.0.1:8470')
    .option(
      '--partitions <n>',
      "partitions of the local node (the monitor takes 1, the pilot 6; the README's tour needs 21)",
      (v) => Number.parseInt(v, 10),
      DEFAULT_PARTITIONS,
    )
    .option('--node-id <id>', "the local compute node's id (it also picks the partitions' addresses)", DEFAULT_NODE_ID)
    .option('--with-demo', "request the demo release's 'hello' instance and print its URL")
    .option(
      '--with-pilot',
      "the pilot: a hyper_db cluster 'pilot-db' (3 members) and the CRM (examples/crm) deployed on it; prints its URL",
    )
    .option('--no-monitor', "do not request the platform's monitor (Prometheus, forecasts, hox alerts)")
    .option('--console-dir <dir>', 'serve the web console built in this directory (default: the one built with hox)')
    .option('--verbose', `also print the node's detail here (it always goes to <data-dir>/${UP_LOG_FILE})`)
    .addHelpText(
      'after',
      `
Examples:
  hox up                      # then, in another terminal: hox request hello --release demo --wait
  hox up --data-dir /var/lib/hox --partitions 20 --with-demo
  hox up --with-pilot         # PostgreSQL cluster + the CRM, then open the URL it prints`,
    )
    .action(
      async (
        opts: {
          dataDir: string;
          listen: string;
          partitions: number;
          nodeId: string;
          withDemo?: boolean;
          withPilot?: boolean;
          monitor: boolean;
          verbose?: boolean;
          consoleDir?: string;
        },
        command: Command,
      ) => {
        // What was published before this run (by the run Ctrl-C stopped) says nothing about now: every
        // readiness below needs a report made after this instant (the master runs here, on this clock).
        const startedAtMs = Date.now();
        const json = globals(command).json === true;
        const nodeId = opts.nodeId;
        const dataDir = resolve(opts.dataDir ?? (process.getuid?.() === 0 ? '/var/lib/hox' : './hox-data'));
        // The node's partition users traverse it to reach their partitions; nobody lists it.
        mkdirSync(dataDir, { recursive: true });
        chmodSync(dataDir, 0o711);
        const [{ createMaster, resolveMasterConfig }, { createNodeAgent, resolveNodeAgentConfig }, { startPilot }] =
          await Promise.all([loadMasterRuntime(), loadNodeRuntime(), loadPilot()]);
        const logPath = join(dataDir, UP_LOG_FILE);
        const logFile = createWriteStream(logPath, { flags: 'a', mode: 0o600 });
        // A log that cannot be written (disk full, permissions) must not stop the platform: say it once.
        let logBroken = false;
        logFile.on('error', (error) => {
          if (!logBroken) env.printErr(`hox up: cannot write ${logPath}: ${error.message}`);
          logBroken = true;
        });
        env.onStop(() => new Promise<void>((done) => logFile.end(done)));
        const log = (line: string) => {
          if (!logBroken && !logFile.writableEnded) logFile.write(`${new Date().toISOString()} ${line}\n`);
        };
        const detail = (line: string) => {
          log(line);
          if (opts.verbose === true) env.printErr(line);
        };
        /** Progress: one timestamped line per step of a tree or app (also kept in the log file). */
        const say = (line: string) => {
          const stamped = `${clockTime(Date.now())} ${line}`;
          log(line);
          if (json) env.printErr(stamped);
          else env.print(stamped);
        };
        detail(`hox up: data dir ${dataDir}, ${opts.partitions} partitions, node '${nodeId}'`);
        const masterConfig = resolveMasterConfig({
          dataDir: join(dataDir, 'master'),
          listen: opts.listen,
          logLevel: 'warn',
          ...(opts.consoleDir === undefined ? {} : { consoleDir: opts.consoleDir }),
        });
        const master = createMaster(masterConfig);
        const { url } = await master.start();
        env.onStop(() => master.stop());
        const masterCa = await master.caRootsPem();
        const admin = new MasterClient({ url, token: masterConfig.adminToken, ca: masterCa });
        const nodeDataDir = join(dataDir, 'node');
        const nodes = (await admin.call('listNodes', {})).result_list;
        const registerToken = nodes.some((n) => n.computer_guid === nodeId)
          ? undefined
          : (await admin.call('createRegistrationToken', {})).token;
        const agent = createNodeAgent(
          resolveNodeAgentConfig({
            masterUrl: url,
            masterCa,
            dataDir: nodeDataDir,
            partitions: opts.partitions,
            nodeId: nodeId,
            ...(registerToken === undefined ? {} : { registerToken }),
          }),
          { log: (message) => detail(`node: ${message}`) },
        );
        await agent.start();
        env.onStop(() => agent.stop({ stopServices: true }));
        for (const release of BUILTIN_RELEASES)
          await admin.call('supply', { computer_guid: nodeId, software_release_uri: release });
        writeConfigFile(env.configPath, {
          ...readConfigFile(env.configPath),
          masterUrl: url,
          token: masterConfig.adminToken,
          masterCa,
          localNodeId: nodeId,
          localNodeDataDir: nodeDataDir,
        });
        // The monitor first: it starts in a second or two, and watches the rest as it comes up.
        if (opts.monitor)
          await admin.call('requestInstance', {
            title: MONITOR_TREE,
            software_release_uri: 'hyper_monitor',
            software_type: 'default',
          });
        let demoUrl: string | undefined;
        if (opts.withDemo === true) {
          const answer = await admin.call('requestInstance', {
            title: 'hello',
            software_release_uri: 'demo',
            software_type: 'default',
          });
          if (!isNotReady(answer)) {
            const { root } = await waitForTree(admin, 'hello', {
              timeoutMs: 120_000,
              notBeforeMs: Math.max(answer.processing_timestamp / 1000, startedAtMs),
              isAdmin: true,
              progress: (l) => say(`hello: ${l}`),
            });
            demoUrl = typeof root.connection_parameters.url === 'string' ? root.connection_parameters.url : undefined;
          }
        }
        const monitorUrl = opts.monitor
          ? await waitForMonitor(admin, startedAtMs, (l) => say(`${MONITOR_TREE}: ${l}`))
          : undefined;
        const pilot =
          opts.withPilot === true
            ? await startPilot({ client: admin, json: false, print: say, progress: say }, { notBeforeMs: startedAtMs })
            : undefined;
        if (json) {
          env.print(
            JSON.stringify({
              master_url: url,
              console_url: `${url}/`,
              ca_pin: master.pki.pin,
              ca_file: join(masterConfig.dataDir, 'ca.pem'),
              admin_token_file: masterConfig.adminTokenFile,
              config: env.configPath,
              node: nodeId,
              data_dir: dataDir,
              log_file: logPath,
              demo_url: demoUrl ?? null,
              pilot_url: pilot?.url ?? null,
              monitor_url: monitorUrl ?? null,
              pilot_cluster: pilot?.cluster ?? null,
            }),
          );
        } else {
          env.print('');
          env.print(`HyperOpenX is up.`);
          env.print(`  master:       ${url}   (API: ${url}/openapi.json)`);
          env.print(`  console:      ${url}/   (sign in with the admin token below; trust ca.pem in the browser)`);
          env.print(`  CA pin:       ${master.pki.pin}   (roots: ${join(masterConfig.dataDir, 'ca.pem')})`);
          env.print(`  admin token:  ${masterConfig.adminTokenFile ?? 'from HOX_ADMIN_TOKEN'}`);
          env.print(
            `  local node:   '${nodeId}' with ${opts.partitions} partitions, releases: ${BUILTIN_RELEASES.join(', ')}`,
          );
          env.print(`  data:         ${dataDir}`);
          env.print(`  log:          ${logPath} (the node's detail; --verbose prints it here too)`);
          env.print(`  CLI config:   ${env.configPath} (hox commands in other terminals use it)`);
          if (monitorUrl !== undefined)
            env.print(
              `  monitor:      ${monitorUrl}   (Prometheus; hox alerts; password: hox show ${MONITOR_TREE} --reveal)`,
            );
          if (demoUrl !== undefined) env.print(`  demo:         ${demoUrl}   ← open this`);
          if (pilot !== undefined) {
            env.print(`  pilot CRM:    ${pilot.url}   ← open this`);
            env.print(`  sign in:      as admin; password: hox app config list crm --reveal (CRM_ADMIN_PASSWORD)`);
            env.print(`  its database: hyper_db cluster '${pilot.cluster}' (hox db status ${pilot.cluster})`);
          }
          env.print('');
          env.print('Next, in another terminal:');
          if (demoUrl === undefined)
            env.print('  hox request hello --release demo --wait     # deploy the demo release');
          env.print('  hox list · hox show hello · hox logs hello · hox destroy hello');
          if (pilot !== undefined) {
            env.print(`  hox app status crm · hox app deploy crm examples/crm · hox app rollback crm`);
            env.print(`  hox db switchover ${pilot.cluster}     # the CRM keeps its data and keeps working`);
          }
          env.print('Ctrl-C stops everything; hox up again brings it back.');
        }
        await env.stopped;
      },
    );
}

/** The monitor's Prometheus URL once it runs; undefined (said) when it did not come up in time: it is no blocker. */
async function waitForMonitor(
  admin: MasterClient,
  notBeforeMs: number,
  progress: (line: string) => void,
): Promise<string | undefined> {
  try {
    const { root } = await waitForTree(admin, MONITOR_TREE, {
      timeoutMs: 60_000,
      notBeforeMs,
      isAdmin: true,
      progress,
    });
    return typeof root.connection_parameters.url === 'string' ? root.connection_parameters.url : undefined;
  } catch (error) {
    progress(`not ready (${error instanceof Error ? error.message : String(error)}): hox show ${MONITOR_TREE}`);
    return undefined;
  }
}
