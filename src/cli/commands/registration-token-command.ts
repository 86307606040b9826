/** `hox registration-token`: a one-time token for `hox node` on another machine (`HOX_REGISTER_TOKEN`). */
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';

export function registrationTokenCommand(env: CommandEnv): Command {
  return new Command('registration-token')
    .description('Issue a one-time token a new compute node registers with (admin)')
    .option('--ttl <seconds>', 'validity', (v) => Number.parseInt(v, 10), 86400)
    .addHelpText(
      'after',
      "\nThe token alone goes to stdout; how to join, with the master's CA pin, to stderr.\n" +
        '\nExample:\n  hox registration-token > reg.token   # copy it to the new machine (mode 0600), then there:\n' +
        '  hox node --master https://10.0.0.1:8470 --ca-pin sha256:… --register-token-file reg.token --data-dir /srv/hox',
    )
    .action(async (opts: { ttl: number }, command: Command) => {
      const client = connect(env, command);
      const answer = await client.call('createRegistrationToken', { ttl_seconds: opts.ttl });
      env.print(globals(command).json === true ? JSON.stringify(answer) : answer.token);
      // The pin of the roots this CLI trusts the master by: what the new node needs besides the token.
      const pin =
        client.ca === undefined
          ? undefined
          : (await import('../../shared/pki/ca-pin.js')).caPin(client.ca.split(/(?=-----BEGIN)/)[0]!);
      env.printErr(
        `join with: hox node --master ${client.url}${pin === undefined ? '' : ` --ca-pin ${pin}`} --register-token-file FILE --data-dir DIR  (the token in FILE, mode 0600; valid ${opts.ttl} s, once)`,
      );
    });
}
