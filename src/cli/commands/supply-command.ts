/** `hox supply URL`: install (or remove) a software release on compute nodes. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';

export function supplyCommand(env: CommandEnv): Command {
  return new Command('supply')
    .description('Ask compute nodes to install a software release (or remove it with --destroy)')
    .argument('<url>', 'software release URL: a built-in name (demo), an absolute path, file:// or https:// tarball')
    .option('--node <id>', 'only this compute node (default: every node)')
    .option('--destroy', 'remove the release instead')
    .addHelpText(
      'after',
      '\nExamples:\n  hox supply demo\n  hox supply /srv/releases/myapp --node node-2\n  hox supply demo --destroy',
    )
    .action(async (url: string, opts: { node?: string; destroy?: boolean }, command: Command) => {
      const client = connect(env, command);
      const nodes =
        opts.node !== undefined
          ? [opts.node]
          : (await client.call('listNodes', {})).result_list.map((n) => n.computer_guid);
      const state = opts.destroy === true ? 'destroyed' : 'available';
      for (const node of nodes) await client.call('supply', { computer_guid: node, software_release_uri: url, state });
      if (globals(command).json === true) env.print(JSON.stringify({ software_release_uri: url, state, nodes }));
      else
        env.print(
          `${url}: ${state === 'available' ? 'supplied to' : 'to be removed from'} ${nodes.join(', ') || 'no node'}`,
        );
    });
}
