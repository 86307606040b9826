/** `hox request TITLE`: request (create, update, stop, destroy) an instance tree. */
import { Command, Option } from 'commander';
import { isNotReady, type MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { formatValue, maskSecrets } from '../output.js';
import { parameterDiff } from '../parameter-diff.js';
import { collect, parseAssignments, parseSla, readParamsFile } from '../parse-params.js';
import { waitForTree } from '../wait-for-instance.js';

interface RequestOptions {
  release: string;
  type: string;
  param: string[];
  params?: string;
  clearParams?: boolean;
  shared?: boolean;
  sla: string[];
  state: 'started' | 'stopped' | 'destroyed';
  wait?: boolean;
  timeout: number;
  reveal?: boolean;
}

export function requestCommand(env: CommandEnv): Command {
  return new Command('request')
    .description('Request an instance tree (create it, or update it in place)')
    .argument('<title>', 'title of the instance tree')
    .requiredOption('--release <url>', 'software release URL (e.g. demo)')
    .option('--type <type>', 'software type', 'default')
    .option('--param <key=value>', 'a parameter (KEY=VALUE string, KEY:=JSON typed); repeatable', collect, [])
    .option('--params <file.json>', 'parameters from a JSON file (--param entries override)')
    .option('--clear-params', 'request it with no parameters at all (an update in place otherwise keeps them)')
    .option('--shared', 'request a shared instance (hosted by an instance of the same release)')
    .option(
      '--sla <key=value>',
      'placement: computer_guid, network_guid, instance_guid, mode, anti_affinity; repeatable',
      collect,
      [],
    )
    .addOption(
      new Option('--state <state>', 'requested state').choices(['started', 'stopped', 'destroyed']).default('started'),
    )
    .option('--wait', 'follow progress until published (or failed)')
    .option('--timeout <seconds>', 'with --wait: give up after this long', (v) => Number.parseInt(v, 10), 120)
    .option('--reveal', 'show secret connection parameters')
    .addHelpText(
      'after',
      `
Examples:
  hox request hello --release demo --wait
  hox request slow --release demo --type slow-start --param greeting='bonjour' --param delay_ms:=2000
  hox request site --release demo --type frontend --shared --param greeting=hi
  hox request hello --release demo --state stopped

Updating an existing tree in place: --param/--params give its whole new parameter set (keys left out are
removed), and hox prints what changes on stderr before requesting. With neither, its current parameters
are kept (a --type or --state change keeps them); --clear-params requests it with none.`,
    )
    .action(async (title: string, opts: RequestOptions, command: Command) => {
      const json = globals(command).json === true;
      if (!Number.isInteger(opts.timeout) || opts.timeout <= 0)
        throw new HoxError('HOX_BAD_REQUEST', '--timeout must be a positive number of seconds', { field: '--timeout' });
      const given = opts.params !== undefined || opts.param.length > 0;
      if (given && opts.clearParams === true)
        throw new HoxError('HOX_BAD_REQUEST', '--clear-params cannot be used with --param or --params', {
          field: '--clear-params',
        });
      let parameters = {
        ...(opts.params === undefined ? {} : readParamsFile(opts.params)),
        ...parseAssignments('--param', opts.param),
      };
      const client = connect(env, command);
      if (opts.state !== 'destroyed') {
        const current = await currentParameters(client, title);
        if (current === 'unknown')
          env.printErr(`${title}: its current parameters cannot be read yet; requesting with the ones given`);
        else if (current !== undefined) {
          if (!given && opts.clearParams !== true) parameters = current;
          const diff = parameterDiff(current, parameters);
          if (diff.length > 0) {
            env.printErr(`${title}: updating in place; its parameters change:`);
            for (const line of diff) env.printErr(`  ${line}`);
          }
        }
      }
      const answer = await client.call('requestInstance', {
        title,
        software_release_uri: opts.release,
        software_type: opts.type,
        parameters,
        sla_parameters: parseSla(opts.sla),
        shared: opts.shared === true,
        state: opts.state,
      });
      if (isNotReady(answer) && (opts.wait !== true || opts.state === 'destroyed')) {
        if (json) env.print(JSON.stringify(answer));
        else env.print(`${title}: accepted, not ready yet (${answer.message}); the master places it once it can`);
        return;
      }
      if (isNotReady(answer)) {
        // Accepted and waiting: it has never run, so whatever it reports once placed answers this request.
        if (!json) env.print(`${title}: accepted; ${answer.message}`);
        return await waitAndPrint(0);
      }
      if (opts.wait !== true || opts.state === 'destroyed') {
        if (json) return env.print(JSON.stringify(answer));
        const where = answer.computer_guid ? `${answer.computer_guid}/${answer.compute_partition_id}` : 'not allocated';
        env.print(`${title}: requested ${answer.state} on ${where} (${answer.instance_guid})`);
        if (opts.state === 'destroyed') env.print('the node stops it, wipes the partition, then the master forgets it');
        return;
      }
      await waitAndPrint(answer.processing_timestamp / 1000);

      /** Follows the tree until it converges (reports made at or after `notBeforeMs`, master time, count). */
      async function waitAndPrint(notBeforeMs: number): Promise<void> {
        const isAdmin = (await client.call('whoami', {})).kind === 'admin';
        const { root } = await waitForTree(client, title, {
          timeoutMs: opts.timeout * 1000,
          notBeforeMs,
          isAdmin,
          progress: (line) => (json ? env.printErr(`${title}: ${line}`) : env.print(`  ${line}`)),
        });
        const params = maskSecrets(root.connection_parameters, opts.reveal === true);
        if (json) {
          const doc = await client.call('getInstanceTree', { title });
          return env.print(
            JSON.stringify({ ...doc, connection_parameters: params, reported_state: root.reported_state }),
          );
        }
        env.print(`${title}: ${root.reported_state ?? root.state}`);
        for (const [k, v] of Object.entries(params)) env.print(`  ${k} = ${formatValue(v)}`);
      }
    });
}

/** The parameters tree `title` is requested with now: undefined when there is no such tree (or it is going). */
async function currentParameters(
  client: MasterClient,
  title: string,
): Promise<Record<string, unknown> | undefined | 'unknown'> {
  try {
    const root = await client.call('getInstanceTree', { title });
    if (isNotReady(root)) return 'unknown';
    return root.state === 'destroyed' ? undefined : root.parameters;
  } catch (error) {
    const notFound = ['HOX_INSTANCE_TREE_NOT_FOUND', 'HOX_INSTANCE_NOT_FOUND'];
    if (error instanceof HoxError && notFound.includes(error.code)) return undefined;
    throw error;
  }
}
