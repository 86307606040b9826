/**
 * `hox metrics NODE|TREE`: the key series of a compute node (CPU, load, memory available, each filesystem's free
 * space) or of an instance tree (each instance's disk, memory working set and processes, and for a hyper_db cluster
 * each member's role, lag, commits, connections, WAL written and archive failures, for a hyper_edge app each
 * replica's requests, 5xx, latency and web restarts) over the last minutes,
 * as sparklines. The master reads them from the platform's monitor (its Prometheus: the `monitor` tree `hox up`
 * requests) and answers only for what the caller may see: a node for the admin, a tree for its owner
 * (`hox.get.v1.metrics`, src/master/metrics-query.ts; the panels are src/shared/metric-panels.ts).
 */
import { Command } from 'commander';
import type { Panel } from '../../shared/metric-panels.js';
import { positiveInteger } from '../action-context.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';
import { bytesText, sparkline } from '../sparkline.js';

function valueText(v: number, unit: Panel['unit']): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'bytes') return bytesText(v);
  if (unit === 'bytes/s') return `${bytesText(v)}/s`;
  if (unit === 'rate') return v.toFixed(v < 10 ? 2 : 0);
  if (unit === 'seconds') return v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(2)} s`;
  if (unit === 'ratio') return `${(v * 100).toFixed(0)} %`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

export function metricsCommand(env: CommandEnv): Command {
  return new Command('metrics')
    .description(
      "Key series of a compute node (admin) or of one of your instance trees as sparklines, from the platform's monitor",
    )
    .argument('<node-or-tree>', 'a compute node id, or an instance tree title')
    .option('--minutes <n>', 'how far back', positiveInteger, 60)
    .addHelpText(
      'after',
      "\nA node: CPU busy, load, memory available, each filesystem's free space. A tree: each instance's disk,\n" +
        'memory (its working set: what it cannot give back) and processes, and for a hyper_db cluster each\n' +
        "member's role (1: primary), lag, commits/s, connections, WAL written/s and archive failures (5 min),\n" +
        "and for a hyper_edge app each replica's requests/s, 5xx/s, 95th percentile latency and web restarts.\n" +
        'Each line: the sparkline of the period (60 points, lowest to highest of its own range), then the last\n' +
        'value, the lowest and the highest.\n' +
        '\nExamples:\n  hox metrics local\n  hox metrics pilot-db --minutes 180\n  hox metrics crm --json',
    )
    .action(async (target: string, opts: { minutes: number }, command: Command) => {
      const client = connect(env, command);
      const answer = await client.call('queryMetrics', { target, minutes: opts.minutes });
      const rows = answer.series.map((s) => {
        const values = s.values.map((v) => v ?? NaN);
        const finite = values.filter((v) => Number.isFinite(v));
        return {
          ...s,
          values,
          last: finite.at(-1) ?? NaN,
          min: finite.length === 0 ? NaN : Math.min(...finite),
          max: finite.length === 0 ? NaN : Math.max(...finite),
        };
      });
      if (globals(command).json === true) return env.print(JSON.stringify(answer));
      env.print(`${answer.kind === 'node' ? 'compute node' : 'instance tree'} ${target}, last ${opts.minutes} min:`);
      for (const line of table(
        ['series', `${opts.minutes} min`, 'now', 'low', 'high'],
        rows.map((r) => [
          r.name,
          sparkline(r.values),
          valueText(r.last, r.unit),
          valueText(r.min, r.unit),
          valueText(r.max, r.unit),
        ]),
      ))
        env.print(line);
    });
}
