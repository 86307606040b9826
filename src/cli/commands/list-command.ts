/** `hox list`: instance trees with state and health. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';

export function listCommand(env: CommandEnv): Command {
  return new Command('list')
    .description('List your instance trees with their state and health')
    .addHelpText('after', '\nExample:\n  hox list --json')
    .action(async (_opts: unknown, command: Command) => {
      const trees = (await connect(env, command).call('listTreeStatus', {})).result_list;
      if (globals(command).json === true)
        return env.print(
          JSON.stringify(
            trees.map((t) => ({
              title: t.title,
              owner: t.owner,
              health: t.health,
              instances: t.instance_list.length,
              root: t.instance_list.find((i) => i.instance_guid === t.root_instance_guid) ?? null,
            })),
          ),
        );
      if (trees.length === 0) return env.print('no instance tree (hox request TITLE --release URL)');
      for (const line of table(
        ['title', 'release', 'state', 'reported', 'health', 'instances', 'where'],
        trees.map((t) => {
          const root = t.instance_list.find((i) => i.instance_guid === t.root_instance_guid);
          return [
            t.title,
            root?.software_release_uri ?? '-',
            root?.state ?? '-',
            root?.reported_state ?? '-',
            t.health,
            String(t.instance_list.length),
            root?.computer_guid ? `${root.computer_guid}/${root.compute_partition_id ?? 'shared'}` : '-',
          ];
        }),
      ))
        env.print(line);
    });
}
