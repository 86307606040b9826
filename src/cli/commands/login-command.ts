/** `hox login`: remember a master URL and token in the config file. */
import { Command } from 'commander';
import { MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import { readConfigFile, writeConfigFile } from '../cli-config.js';
import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';
import { secretInArgv } from '../secret-input.js';

export function loginCommand(env: CommandEnv): Command {
  return new Command('login')
    .description('Check a master URL and token, and save them for later commands')
    .requiredOption('--url <url>', 'master URL')
    .requiredOption('--with-token <->', "'-': read the bearer token (admin or user) from stdin")
    .addHelpText(
      'after',
      '\nExamples:\n  hox login --url http://10.0.0.1:8470 --with-token - < /var/lib/hox/admin-token\n' +
        '  echo "$HOX_USER_TOKEN" | hox login --url http://10.0.0.1:8470 --with-token -',
    )
    .action(async (opts: { url: string; withToken: string }, command: Command) => {
      if (opts.withToken !== '-')
        throw secretInArgv('--with-token TOKEN', '--with-token - and the token on stdin (--with-token - < token-file)');
      if (env.readStdin === undefined) throw new HoxError('HOX_INTERNAL', 'hox login: this CLI cannot read stdin');
      const token = (await env.readStdin()).trim().split('\n')[0]?.trim() ?? '';
      if (token === '') throw new HoxError('HOX_BAD_REQUEST', 'no token on stdin', { field: '--with-token' });
      const who = await new MasterClient({ url: opts.url, token }).call('whoami', {});
      writeConfigFile(env.configPath, {
        ...readConfigFile(env.configPath),
        masterUrl: opts.url,
        token,
      });
      if (globals(command).json === true)
        env.print(JSON.stringify({ master_url: opts.url, ...who, config: env.configPath }));
      else
        env.print(
          `logged in to ${opts.url} as ${who.kind}${who.subject ? ` ${who.subject}` : ''} (saved in ${env.configPath})`,
        );
    });
}
