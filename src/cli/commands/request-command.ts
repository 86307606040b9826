/** `hox request TITLE`: request (create, update, stop, destroy) an instance tree. */
import { Command, Option } from 'commander';
import { isNotReady } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { formatValue, maskSecrets } from '../output.js';
import { collect, parseAssignments, parseSla, readParamsFile } from '../parse-params.js';
import { waitForTree } from '../wait-for-instance.js';

interface RequestOptions {
  release: string;
  type: string;
  param: string[];
  params?: string;
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
  hox request hello --release demo --state stopped`,
    )
    .action(async (title: string, opts: RequestOptions, command: Command) => {
      const json = globals(command).json === true;
      if (!Number.isInteger(opts.timeout) || opts.timeout <= 0)
        throw new HoxError('HOX_BAD_REQUEST', '--timeout must be a positive number of seconds', { field: '--timeout' });
      const parameters = {
        ...(opts.params === undefined ? {} : readParamsFile(opts.params)),
        ...parseAssignments('--param', opts.param),
      };
      const client = connect(env, command);
      const answer = await client.call('requestInstance', {
        title,
        software_release_uri: opts.release,
        software_type: opts.type,
        parameters,
        sla_parameters: parseSla(opts.sla),
        shared: opts.shared === true,
        state: opts.state,
      });
      if (isNotReady(answer)) {
        if (json) env.print(JSON.stringify(answer));
        else env.print(`${title}: accepted, not ready yet (${answer.message})`);
        return;
      }
      if (opts.wait !== true || opts.state === 'destroyed') {
        if (json) return env.print(JSON.stringify(answer));
        const where = answer.computer_guid ? `${answer.computer_guid}/${answer.compute_partition_id}` : 'not allocated';
        env.print(`${title}: requested ${answer.state} on ${where} (${answer.instance_guid})`);
        if (opts.state === 'destroyed') env.print('the node stops it, wipes the partition, then the master forgets it');
        return;
      }
      const isAdmin = (await client.call('whoami', {})).kind === 'admin';
      const { root } = await waitForTree(client, title, {
        timeoutMs: opts.timeout * 1000,
        notBeforeMs: answer.processing_timestamp / 1000,
        isAdmin,
        progress: (line) => (json ? env.printErr(`${title}: ${line}`) : env.print(`  ${line}`)),
      });
      const params = maskSecrets(root.connection_parameters, opts.reveal === true);
      if (json)
        return env.print(
          JSON.stringify({ ...answer, connection_parameters: params, reported_state: root.reported_state }),
        );
      env.print(`${title}: ${root.reported_state ?? root.state}`);
      for (const [k, v] of Object.entries(params)) env.print(`  ${k} = ${formatValue(v)}`);
    });
}
