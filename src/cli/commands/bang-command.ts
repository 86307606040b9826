/** `hox bang TITLE`: make every instance of a tree reprocess. */
import { Command } from 'commander';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';

export function bangCommand(env: CommandEnv): Command {
  return new Command('bang')
    .description('Make every instance of an instance tree reprocess now')
    .argument('<title>', 'instance tree title')
    .option('--message <text>', 'why', 'bang from hox CLI')
    .addHelpText('after', '\nExample:\n  hox bang hello --message "config changed on disk"')
    .action(async (title: string, opts: { message: string }, command: Command) => {
      const client = connect(env, command);
      const [tree] = (await client.call('listTreeStatus', { title })).result_list;
      if (tree === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`);
      await client.call('bangInstance', { instance_guid: tree.root_instance_guid, message: opts.message });
      if (globals(command).json === true) env.print(JSON.stringify({ title, banged: tree.instance_list.length }));
      else env.print(`${title}: ${tree.instance_list.length} instance(s) will reprocess`);
    });
}
