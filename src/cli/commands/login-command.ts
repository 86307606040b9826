/** `hox login`: remember a master URL and token in the config file. */
import { Command } from 'commander';
import { MasterClient } from '../../client/master-client.js';
import { readConfigFile, writeConfigFile } from '../cli-config.js';
import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';

export function loginCommand(env: CommandEnv): Command {
  return new Command('login')
    .description('Check a master URL and token, and save them for later commands')
    .requiredOption('--url <url>', 'master URL')
    .requiredOption('--with-token <token>', 'bearer token (admin or user)')
    .addHelpText('after', '\nExample:\n  hox login --url http://10.0.0.1:8470 --with-token hox_user_…')
    .action(async (opts: { url: string; withToken: string }, command: Command) => {
      const who = await new MasterClient({ url: opts.url, token: opts.withToken }).call('whoami', {});
      writeConfigFile(env.configPath, {
        ...readConfigFile(env.configPath),
        masterUrl: opts.url,
        token: opts.withToken,
      });
      if (globals(command).json === true)
        env.print(JSON.stringify({ master_url: opts.url, ...who, config: env.configPath }));
      else
        env.print(
          `logged in to ${opts.url} as ${who.kind}${who.subject ? ` ${who.subject}` : ''} (saved in ${env.configPath})`,
        );
    });
}
