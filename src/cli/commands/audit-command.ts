/**
 * `hox audit`: the master's audit trail of mutating calls (docs/security/audit.md). The admin sees every
 * entry; a user only the calls it made itself.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ResponseOf } from '../../client/master-client.js';
import { positiveInteger } from '../action-context.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { localTime, table } from '../output.js';

type AuditItem = ResponseOf<'listAuditLog'>['result_list'][number];

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from now (`90s`, `15m`, `2h`, `7d`) or a time (`2026-12-01`, ISO 8601). */
export function parseSince(value: string, nowMs = Date.now()): string {
  const duration = /^(\d{1,9})([smhd])$/.exec(value.trim());
  if (duration !== null) return new Date(nowMs - Number(duration[1]) * UNIT_MS[duration[2]!]!).toISOString();
  const atMs = /^\d{4}-\d{2}-\d{2}/.test(value.trim()) ? Date.parse(value.trim()) : NaN;
  if (Number.isNaN(atMs))
    throw new InvalidArgumentError(
      `'${value}' is neither a duration (90s, 15m, 2h, 7d) nor a time (2026-12-01T09:00).`,
    );
  return new Date(atMs).toISOString();
}

function who(item: AuditItem): string {
  return item.actor === null ? item.actor_kind : `${item.actor_kind} ${item.actor}`;
}

function what(item: AuditItem): string {
  return Object.entries(item.target)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`)
    .join(' ');
}

export function auditCommand(env: CommandEnv): Command {
  return new Command('audit')
    .description("Show the audit trail of mutating calls (admin: everyone's; a user: its own)")
    .addOption(
      new Option('--since <duration|time>', 'only entries since then: 90s, 15m, 2h, 7d, or a time').argParser((v) =>
        parseSince(v),
      ),
    )
    .addOption(new Option('--user <name>', "only this user's calls ('admin': the admin token's)"))
    .addOption(
      new Option('--limit <n>', 'the newest n entries (at most 10000)').argParser(positiveInteger).default(100),
    )
    .addHelpText(
      'after',
      '\nEach line: local time, who (token kind and name), from which address, the operation, ok or the error\n' +
        'code, and what it acted on. Never a token, a parameter value or a message.\n' +
        '\nExamples:\n  hox audit --since 2h\n  hox audit --user alice --limit 20\n  hox audit --since 2026-12-01 --json',
    )
    .action(async (opts: { since?: string; user?: string; limit: number }, command: Command) => {
      const entries = (
        await connect(env, command).call('listAuditLog', {
          ...(opts.since === undefined ? {} : { since: opts.since }),
          ...(opts.user === undefined ? {} : { user: opts.user }),
          limit: opts.limit,
        })
      ).result_list;
      if (globals(command).json === true) return env.print(JSON.stringify(entries));
      if (entries.length === 0) return env.print('no audit entry matches');
      for (const line of table(
        ['time', 'who', 'from', 'action', 'result', 'target'],
        entries.map((e) => [
          localTime(e.at),
          who(e),
          e.address,
          e.action,
          e.result === 'ok' ? 'ok' : `${e.result} (${e.status})`,
          what(e),
        ]),
      ))
        env.print(line);
    });
}
