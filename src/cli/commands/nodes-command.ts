/** `hox nodes`: compute nodes, their partitions and last contact. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';

export function nodesCommand(env: CommandEnv): Command {
  return new Command('nodes')
    .description('List compute nodes')
    .addHelpText('after', '\nExample:\n  hox nodes')
    .action(async (_opts: unknown, command: Command) => {
      const nodes = (await connect(env, command).call('listNodes', {})).result_list;
      if (globals(command).json === true) return env.print(JSON.stringify(nodes));
      if (nodes.length === 0) return env.print('no compute node registered (start one with hox node or hox up)');
      for (const line of table(
        ['node', 'partitions', 'free', 'releases', 'last contact', 'status'],
        nodes.map((n) => [
          n.computer_guid,
          String(n.partition_count),
          String(n.free_partition_count),
          String(n.software_installation_count),
          n.last_contact_at ?? 'never',
          n.status_text,
        ]),
      ))
        env.print(line);
    });
}
