/** `hox show TITLE`: one instance tree in detail; secrets masked unless --reveal. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { formatInstance, maskInstance } from '../instance-view.js';

export function showCommand(env: CommandEnv): Command {
  return new Command('show')
    .description(
      'Show an instance tree: each instance, where it runs, its state, each promise, limits and usage, the parameters and SLA it was requested with, and its connection parameters',
    )
    .argument('<title>', 'instance tree title')
    .option('--reveal', 'show secret parameters and connection parameters')
    .addHelpText('after', '\nExamples:\n  hox show hello\n  hox show db --reveal --json')
    .action(async (title: string, opts: { reveal?: boolean }, command: Command) => {
      const [tree] = (await connect(env, command).call('listTreeStatus', { title })).result_list;
      if (tree === undefined) return;
      const instances = tree.instance_list.map((i) => maskInstance(i, opts.reveal === true));
      if (globals(command).json === true) return env.print(JSON.stringify({ ...tree, instance_list: instances }));
      env.print(`${tree.title}  (owner ${tree.owner}, health ${tree.health}, created ${tree.created_at})`);
      if (tree.health_message !== null) env.print(`  ${tree.health}: ${tree.health_message}`);
      if (tree.reported_age_ms !== null)
        env.print(`  reported: ${Math.round(tree.reported_age_ms / 1000)} s ago (its nodes' last contact)`);
      for (const i of instances) for (const line of formatInstance(i)) env.print(line);
    });
}
