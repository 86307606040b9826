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
      '\nExample:\n  HOX_REGISTER_TOKEN=$(hox registration-token) hox node --master http://10.0.0.1:8470 --data-dir /srv/hox',
    )
    .action(async (opts: { ttl: number }, command: Command) => {
      const answer = await connect(env, command).call('createRegistrationToken', { ttl_seconds: opts.ttl });
      env.print(globals(command).json === true ? JSON.stringify(answer) : answer.token);
    });
}
