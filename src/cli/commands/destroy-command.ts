/** `hox destroy TITLE`: request destruction of an instance tree. */
import { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { confirmDestruction } from '../confirm-destruction.js';
import { connect, globals } from '../connect.js';

export function destroyCommand(env: CommandEnv): Command {
  return new Command('destroy')
    .description('Destroy an instance tree: children first, partitions freed once nodes confirm')
    .argument('<title>', 'instance tree title')
    .option('--wait', 'wait until the master has forgotten it')
    .option('--timeout <seconds>', 'with --wait: give up after this long', (v) => Number.parseInt(v, 10), 120)
    .option('--yes', 'destroy without asking (needed when stdin is not a terminal)')
    .addHelpText(
      'after',
      `
On a terminal, hox asks you to type the title; without one (scripts, CI), --yes is required.
Everything in the tree goes: its instances, their partitions and data (a hyper_db cluster's databases).

Examples:
  hox destroy hello --wait
  hox destroy hello --yes --wait       # from a script`,
    )
    .action(async (title: string, opts: { wait?: boolean; timeout: number; yes?: boolean }, command: Command) => {
      if (!Number.isInteger(opts.timeout) || opts.timeout <= 0)
        throw new HoxError('HOX_BAD_REQUEST', '--timeout must be a positive number of seconds', { field: '--timeout' });
      const client = connect(env, command);
      const [tree] = (await client.call('listTreeStatus', { title })).result_list;
      const root = tree?.instance_list.find((i) => i.instance_guid === tree.root_instance_guid);
      if (tree === undefined || root === undefined)
        throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`);
      await confirmDestruction(env, {
        what: `instance tree '${title}'`,
        name: title,
        consequence: consequenceOf(title, tree.instance_list.length, root),
        yes: opts.yes === true,
        command: `hox destroy ${title}`,
      });
      await client.call('requestInstance', {
        title,
        software_release_uri: root.software_release_uri,
        software_type: root.software_type,
        shared: root.shared,
        state: 'destroyed',
      });
      if (opts.wait === true) {
        const deadline = Date.now() + opts.timeout * 1000;
        let cursor = (await client.call('waitForChange', {})).cursor;
        for (let i = 0; i < 100_000; i += 1) {
          const left = (await client.call('listTreeStatus', {})).result_list.some((t) => t.title === title);
          if (!left) break;
          if (Date.now() > deadline)
            throw new HoxError('HOX_CONFLICT', `'${title}' is still being destroyed after ${opts.timeout} s`);
          cursor = (await client.call('waitForChange', { since: cursor, timeout_ms: 2000 })).cursor;
          await sleep(0);
        }
      }
      if (globals(command).json === true)
        env.print(JSON.stringify({ title, state: 'destroyed', gone: opts.wait === true }));
      else
        env.print(
          opts.wait === true ? `${title}: destroyed` : `${title}: destruction requested (hox list shows progress)`,
        );
    });
}

/**
 * What goes with a tree, for the confirmation. A hyper_db cluster's backups outlive it on its node for the node's
 * retention period (`hox node --retention-days`, 7 by default; 0 keeps nothing): the CLI does not know the
 * node's setting, so it says both.
 */
function consequenceOf(
  title: string,
  instances: number,
  root: { software_release_uri: string; software_type: string },
): string {
  const what = `${instances} instance(s) of release '${root.software_release_uri}' and their data`;
  if (root.software_release_uri === 'hyper_db' && root.software_type === 'cluster')
    return `${what}: its databases; its backups are kept on its node for the node's retention period (7 days unless the node says otherwise; hox db backups ${title} lists them)`;
  return what;
}
