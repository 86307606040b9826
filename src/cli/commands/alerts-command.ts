/**
 * `hox alerts`: what the platform's monitor forecasts or detects (src/master/alerts.ts): open alerts, most severe
 * first; with `--all` also those resolved in the last 7 days. The admin sees every alert; a user those on its own
 * instance trees.
 */
import { Command } from 'commander';
import type { ResponseOf } from '../../client/master-client.js';
import { durationText } from '../../shared/duration-text.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { localTime, table } from '../output.js';

type AlertItem = ResponseOf<'listAlerts'>['result_list'][number];

/** `in 3.2 h`, `in 12 min`, `now`, or `-` when no date was forecast. */
export function etaText(iso: string | null, nowMs = Date.now()): string {
  if (iso === null) return '-';
  const s = (Date.parse(iso) - nowMs) / 1000;
  return s <= 0 ? 'now' : `in ${durationText(s)}`;
}

function resource(a: AlertItem): string {
  if (a.tree !== null) return `${a.tree}/${a.instance ?? '?'} (${a.node} ${a.partition ?? ''})`.replace(' )', ')');
  return `${a.node} ${a.partition ?? a.path ?? ''}`.trim();
}

const SEVERITY_ORDER = { critical: 0, warning: 1 } as const;

export function alertsCommand(env: CommandEnv): Command {
  return new Command('alerts')
    .description("Show the monitor's alerts: resources forecast to run out, with when (admin: all; a user: its trees')")
    .option('--all', 'also the alerts resolved in the last 7 days')
    .addHelpText(
      'after',
      "\nEach line: severity, the rule, what it is about (tree/instance and where it runs, or a node's filesystem),\n" +
        'when the limit is forecast to be reached (the 95 % band in --json), since when, and the summary.\n' +
        'The monitor is the hyper_monitor instance hox up requests (tree `monitor`): see docs/maintenance.md.\n' +
        '\nExamples:\n  hox alerts\n  hox alerts --all --json',
    )
    .action(async (opts: { all?: boolean }, command: Command) => {
      const alerts = (await connect(env, command).call('listAlerts', opts.all === true ? { all: true } : {}))
        .result_list;
      if (globals(command).json === true) return env.print(JSON.stringify(alerts));
      if (alerts.length === 0) return env.print(opts.all === true ? 'no alert in the last 7 days' : 'no open alert');
      const sorted = [...alerts].sort(
        (a, b) =>
          Number(a.state === 'resolved') - Number(b.state === 'resolved') ||
          SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
          (a.eta ?? '9').localeCompare(b.eta ?? '9'),
      );
      for (const line of table(
        ['severity', 'rule', 'resource', 'limit reached', 'since', 'summary'],
        sorted.map((a) => [
          a.state === 'resolved' ? `resolved (${a.severity})` : a.severity,
          a.rule,
          resource(a),
          a.state === 'resolved' ? '-' : etaText(a.eta),
          localTime(a.opened_at),
          a.summary,
        ]),
      ))
        env.print(line);
    });
}
