/** `hox list`: instance trees with state and health. */
import { Command } from 'commander';
import type { ResponseOf } from '../../client/route-call.js';
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
            root?.computer_guid
              ? `${root.computer_guid}/${root.compute_partition_id ?? 'shared'}`
              : root?.waiting_for
                ? 'waiting'
                : '-',
          ];
        }),
      ))
        env.print(line);
      // What a waiting tree waits for, in full: the table has no room for it.
      for (const t of trees) {
        if (t.health !== 'pending' || !anyWaiting(t) || t.health_message === null) continue;
        // The message names the instance; a root's name is the tree's already.
        env.print(t.health_message.startsWith(`${t.title}: `) ? t.health_message : `${t.title}: ${t.health_message}`);
      }
    });
}

type Tree = ResponseOf<'listTreeStatus'>['result_list'][number];

/** Whether some instance of the tree is placed nowhere yet (`waiting_for` says why). */
const anyWaiting = (t: Tree): boolean => t.instance_list.some((i) => i.waiting_for !== null);
