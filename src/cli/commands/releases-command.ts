/** `hox releases`: software installations on every node. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';

export function releasesCommand(env: CommandEnv): Command {
  const releases = new Command('releases');
  releases
    .command('show')
    .description("A built-in release's software types: the parameters each accepts, what each publishes")
    .argument('<name>', 'built-in release (demo, hyper_cdn, hyper_db, hyper_edge)')
    .addHelpText('after', '\nExamples:\n  hox releases show hyper_db\n  hox releases show demo --json')
    .action(async (name: string, _opts: unknown, command: Command) => {
      // Loaded here: describing a release imports its module, which no other command needs.
      const { describeBuiltinRelease, renderRelease } = await import('../release-schema-view.js');
      const view = await describeBuiltinRelease(name);
      if (globals(command).json === true) return env.print(JSON.stringify(view));
      for (const line of renderRelease(view)) env.print(line);
    });
  return releases
    .description('List software releases per compute node: requested and reported state')
    .addHelpText('after', '\nExamples:\n  hox releases --json\n  hox releases show hyper_db')
    .action(async (_opts: unknown, command: Command) => {
      const client = connect(env, command);
      const rows: {
        computer_guid: string;
        software_release_uri: string;
        state: string;
        reported_state: string | null;
        error_message: string | null;
      }[] = [];
      for (const node of (await client.call('listNodes', {})).result_list) {
        for (const s of (await client.call('listSoftwareStatus', { computer_guid: node.computer_guid })).result_list)
          rows.push({ computer_guid: node.computer_guid, ...s });
      }
      if (globals(command).json === true) return env.print(JSON.stringify(rows));
      if (rows.length === 0) return env.print('no software release supplied (hox supply URL)');
      for (const line of table(
        ['node', 'release', 'requested', 'reported'],
        rows.map((r) => [
          r.computer_guid,
          r.software_release_uri,
          r.state,
          r.reported_state === 'error' ? `error: ${(r.error_message ?? '').split('\n')[0]}` : (r.reported_state ?? '-'),
        ]),
      ))
        env.print(line);
    });
}
