/** `hox login`: remember a master URL and token in the config file. */
import { Command } from 'commander';
import { MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import { readCaFile, readConfigFile, writeConfigFile } from '../cli-config.js';
import type { CommandEnv } from '../command-env.js';
import { globals } from '../connect.js';
import { secretInArgv } from '../secret-input.js';

export function loginCommand(env: CommandEnv): Command {
  return new Command('login')
    .description('Check a master URL and token, and save them for later commands')
    .requiredOption('--url <url>', 'master URL')
    .requiredOption('--with-token <->', "'-': read the bearer token (admin or user) from stdin")
    .option('--ca-pin <sha256:hex>', "the master's CA pin (printed by hox master and hox up): trust the master by it")
    .option('--ca-file <file>', "PEM file of the master's CA roots (on the master's machine: <data-dir>/ca.pem)")
    .addHelpText(
      'after',
      '\nExamples:\n  hox login --url https://10.0.0.1:8470 --ca-pin sha256:4f0c… --with-token - < admin-token\n' +
        '  hox login --url https://127.0.0.1:8470 --ca-file /var/lib/hox/ca.pem --with-token - < /var/lib/hox/admin-token\n' +
        '  echo "$HOX_USER_TOKEN" | hox login --url https://cloud.example.org --with-token -   # a certificate the system trusts',
    )
    .action(async (opts: { url: string; withToken: string; caPin?: string; caFile?: string }, command: Command) => {
      if (opts.withToken !== '-')
        throw secretInArgv('--with-token TOKEN', '--with-token - and the token on stdin (--with-token - < token-file)');
      if (env.readStdin === undefined) throw new HoxError('HOX_INTERNAL', 'hox login: this CLI cannot read stdin');
      const token = (await env.readStdin()).trim().split('\n')[0]?.trim() ?? '';
      if (token === '') throw new HoxError('HOX_BAD_REQUEST', 'no token on stdin', { field: '--with-token' });
      if (opts.caPin !== undefined && opts.caFile !== undefined)
        throw new HoxError('HOX_BAD_REQUEST', 'give --ca-pin or --ca-file, not both', { field: '--ca-pin' });
      const ca =
        opts.caFile !== undefined
          ? readCaFile(opts.caFile, '--ca-file')
          : opts.caPin !== undefined
            ? await (await import('../../client/pinned-ca.js')).trustMasterByPin(opts.url, opts.caPin)
            : undefined;
      const who = await new MasterClient({ url: opts.url, token, ...(ca === undefined ? {} : { ca }) }).call(
        'whoami',
        {},
      );
      // Another master's CA would not verify this one: the one learnt now, or none (the system's CAs).
      const kept = readConfigFile(env.configPath);
      delete kept.masterCa;
      writeConfigFile(env.configPath, {
        ...kept,
        masterUrl: opts.url,
        token,
        ...(ca === undefined ? {} : { masterCa: ca }),
      });
      if (globals(command).json === true)
        env.print(JSON.stringify({ master_url: opts.url, ...who, config: env.configPath }));
      else
        env.print(
          `logged in to ${opts.url} as ${who.kind}${who.subject ? ` ${who.subject}` : ''} (saved in ${env.configPath})`,
        );
    });
}
