/**
 * `hox user create|list|token`: the people who use the platform (admin only). A user sees and changes
 * only its own instance trees; its token is printed once, on stdout, for the admin to hand over.
 * `hox user certificate`: a user's own client certificate, for SlapOS's clients (docs/slapos.md).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';

/** How a new token reaches its user, printed after it (on stderr: stdout holds the token alone). */
function handOver(env: CommandEnv, command: Command, name: string): void {
  const master = globals(command).master ?? env.masterUrl ?? '<master URL>';
  env.printErr(
    `Give this token to ${name}, who signs in with:\n  hox login --url ${master} --ca-pin <CA pin> --with-token -   (the token on stdin; hox pki status shows the pin)\nIt is shown only now: the master keeps a hash of it.`,
  );
}

export function userCommand(env: CommandEnv): Command {
  const user = new Command('user').description(
    'Manage users (admin): create, list, issue tokens; get your own certificate (a user)',
  );
  user
    .command('create')
    .description('Create a user and print its first token (stdout, once)')
    .argument('<name>', "user name: lowercase letters, digits, '.', '-' or '_', starting with a letter (at most 63)")
    .addHelpText('after', '\nExample:\n  hox user create alice > alice.token')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const answer = await connect(env, command).call('createUser', { name });
      if (globals(command).json === true) return env.print(JSON.stringify(answer));
      env.print(answer.token);
      handOver(env, command, answer.name);
    });
  user
    .command('token')
    .description('Issue another token for a user (earlier ones keep working); print it once')
    .argument('<name>', 'user name')
    .addHelpText('after', '\nExample:\n  hox user token alice > alice-laptop.token')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const answer = await connect(env, command).call('createUserToken', { name });
      if (globals(command).json === true) return env.print(JSON.stringify(answer));
      env.print(answer.token);
      handOver(env, command, answer.name);
    });
  user
    .command('certificate')
    .description("Get your own client certificate (a user's): what SlapOS's clients such as slapos request present")
    .requiredOption('--out <dir>', 'directory to write key.pem (mode 0600) and certificate.pem into')
    .addHelpText(
      'after',
      '\nExample:\n  hox user certificate --out ~/.slapos   # then slapos request, against this master',
    )
    .action(async (opts: { out: string }, command: Command) => {
      const answer = await connect(env, command).call('issueUserCertificate', {});
      const dir = resolve(opts.out);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'certificate.pem');
      // Written private from the start (a file already there keeps its mode on write): then renamed in place.
      const fresh = `${keyFile}.${process.pid}.tmp`;
      writeFileSync(fresh, answer.key, { mode: 0o600, flag: 'wx' });
      renameSync(fresh, keyFile);
      writeFileSync(certFile, answer.certificate, { mode: 0o644 });
      if (globals(command).json === true) return env.print(JSON.stringify({ key_file: keyFile, cert_file: certFile }));
      const master = globals(command).master ?? env.masterUrl ?? '<master URL>';
      env.print(`wrote ${keyFile} and ${certFile}; for SlapOS's client (slapos.cfg):`);
      env.print(
        `  [slapos]\n  master_url = ${master}\n  [slapconsole]\n  cert_file = ${certFile}\n  key_file = ${keyFile}`,
      );
    });
  user
    .command('list')
    .description('List users')
    .addHelpText('after', '\nExample:\n  hox user list --json')
    .action(async (_opts: unknown, command: Command) => {
      const users = (await connect(env, command).call('listUsers', {})).result_list;
      if (globals(command).json === true) return env.print(JSON.stringify(users));
      if (users.length === 0) return env.print('no user yet (hox user create NAME)');
      for (const line of table(
        ['name', 'id', 'created'],
        users.map((u) => [u.name, u.user_id, u.created_at]),
      ))
        env.print(line);
    });
  return user;
}
