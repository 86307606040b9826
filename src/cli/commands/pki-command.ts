/**
 * `hox pki status` and `hox pki rotate`: the platform CA the master holds (docs/security/pki.md). Admin only.
 */
import { Command } from 'commander';
import type { ResponseOf } from '../../client/master-client.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';

type PkiStatus = ResponseOf<'pkiStatus'>;

const day = (iso: string): string => iso.slice(0, 10);

/** The status as a person reads it: the pin first, then each CA, then what this master presents. */
export function formatPkiStatus(status: PkiStatus): string[] {
  const lines = [`CA pin: ${status.ca_pin}   (hox login --ca-pin, hox node --ca-pin)`, '', 'roots:'];
  lines.push(
    ...table(
      ['', 'subject', 'until', 'pin'],
      status.roots.map((r) => [r.current ? 'current' : 'previous', r.subject, day(r.not_after), r.pin]),
    ).map((l) => `  ${l}`),
  );
  lines.push('', 'issuing CAs:');
  lines.push(
    ...table(
      ['', 'subject', 'until'],
      status.issuing_cas.map((i) => [i.current ? 'current' : 'previous', i.subject, day(i.not_after)]),
    ).map((l) => `  ${l}`),
  );
  lines.push('', `cross-certificates: ${status.cross_certificates}   revoked, not yet expired: ${status.revoked}`);
  const own = status.master_certificate;
  lines.push(
    own === null
      ? "this master's certificate: none (plain HTTP)"
      : `this master's certificate: ${
          own.source === 'platform' ? 'issued by this CA, renewed by the master' : "the operator's (--tls-cert)"
        }, until ${own.not_after}; names: ${[...own.dns_names, ...own.ip_addresses].join(', ')}`,
  );
  return lines;
}

export function pkiCommand(env: CommandEnv): Command {
  const pki = new Command('pki').description('The platform CA: status and rotation (admin)');
  pki
    .command('status')
    .description("Show the CA pin, the roots and issuing CAs, revocations and this master's certificate")
    .action(async (_opts: unknown, command: Command) => {
      const status = await connect(env, command).call('pkiStatus', {});
      if (globals(command).json === true) return env.print(JSON.stringify(status));
      for (const line of formatPkiStatus(status)) env.print(line);
    });
  pki
    .command('rotate')
    .description(
      'Make a new issuing CA (or, with --root, a new root and issuing CA); what the old ones issued stays valid',
    )
    .option('--root', 'rotate the root too: the CA pin changes (new nodes and logins use the new one)')
    .addHelpText(
      'after',
      '\nCertificates issued from now on come from the new issuing CA; the master presents one at once. The old\n' +
        'CAs stay in the trust bundle until what they issued has expired. After --root, clients that pinned the\n' +
        'old root still verify the master (the new root is cross-signed by the old one); new ones use the new pin.\n' +
        '\nExamples:\n  hox pki rotate\n  hox pki rotate --root --json',
    )
    .action(async (opts: { root?: boolean }, command: Command) => {
      const status = await connect(env, command).call('rotatePki', {
        what: opts.root === true ? 'root' : 'issuing-ca',
      });
      if (globals(command).json === true) return env.print(JSON.stringify(status));
      env.print(opts.root === true ? `rotated the root: the CA pin is now ${status.ca_pin}` : 'rotated the issuing CA');
      env.print('');
      for (const line of formatPkiStatus(status)) env.print(line);
    });
  return pki;
}
