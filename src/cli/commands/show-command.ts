/** `hox show TITLE`: one instance tree in detail; secrets masked unless --reveal. */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { formatValue, maskSecrets } from '../output.js';
import { formatPartitionUsage } from '../partition-usage-view.js';

export function showCommand(env: CommandEnv): Command {
  return new Command('show')
    .description(
      'Show an instance tree: each instance, where it runs, its state, promises, limits and usage, and connection parameters',
    )
    .argument('<title>', 'instance tree title')
    .option('--reveal', 'show secret connection parameters')
    .addHelpText('after', '\nExamples:\n  hox show hello\n  hox show db --reveal --json')
    .action(async (title: string, opts: { reveal?: boolean }, command: Command) => {
      const [tree] = (await connect(env, command).call('listTreeStatus', { title })).result_list;
      if (tree === undefined) return;
      const instances = tree.instance_list.map((i) => ({
        ...i,
        connection_parameters: maskSecrets(i.connection_parameters, opts.reveal === true),
      }));
      if (globals(command).json === true) return env.print(JSON.stringify({ ...tree, instance_list: instances }));
      env.print(`${tree.title}  (owner ${tree.owner}, health ${tree.health}, created ${tree.created_at})`);
      if (tree.health_message !== null) env.print(`  ${tree.health}: ${tree.health_message}`);
      if (tree.reported_age_ms !== null)
        env.print(`  reported: ${Math.round(tree.reported_age_ms / 1000)} s ago (its nodes' last contact)`);
      for (const i of instances) {
        const depth = i.requester_guid === null ? '' : '  ';
        const where = i.shared
          ? `shared on ${i.host_instance_guid ?? 'no host'}`
          : `${i.computer_guid ?? '-'}/${i.compute_partition_id ?? '-'}`;
        env.print(`${depth}- ${i.title} [${i.software_type}] ${i.instance_guid}`);
        env.print(`${depth}    release:  ${i.software_release_uri}`);
        env.print(`${depth}    where:    ${where}`);
        env.print(`${depth}    state:    requested ${i.state}, reported ${i.reported_state ?? '-'}`);
        env.print(`${depth}    status:   ${i.access_status_message}`);
        if (i.partition_usage !== null) env.print(`${depth}    limits:   ${formatPartitionUsage(i.partition_usage)}`);
        else if (i.compute_partition_id !== null) env.print(`${depth}    limits:   not reported by the node yet`);
        for (const [k, v] of Object.entries(i.connection_parameters)) env.print(`${depth}    ${k} = ${formatValue(v)}`);
      }
    });
}
