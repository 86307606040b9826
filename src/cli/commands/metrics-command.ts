/**
 * `hox metrics NODE|TREE`: the key series of a compute node (CPU, load, memory available, each filesystem's free
 * space) or of an instance tree (each instance's disk, memory working set and processes) over the last minutes,
 * as sparklines, read from the platform's monitor (its Prometheus: the `monitor` tree `hox up` requests). The
 * monitor is the admin's: its published URL, password and CA are what this reads, so it is the admin's command.
 */
import { Command } from 'commander';
import type { MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import { queryRange, type PrometheusAccess, type RangeSeries } from '../../shared/prometheus-api.js';
import { positiveInteger } from '../action-context.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { table } from '../output.js';
import { bytesText, sparkline } from '../sparkline.js';

const POINTS = 60;

interface Panel {
  title: string;
  query: string;
  /** Labels telling the series of one panel apart (e.g. `instance`, `path`). */
  by: string[];
  unit: 'bytes' | 'ratio' | 'count';
}

/** A PromQL string literal. */
function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function nodePanels(node: string): Panel[] {
  const n = `node=${quoted(node)}`;
  return [
    {
      title: 'cpu busy',
      query: `1 - sum(rate(hox_node_cpu_seconds_total{${n},mode="idle"}[2m])) / sum(rate(hox_node_cpu_seconds_total{${n}}[2m]))`,
      by: [],
      unit: 'ratio',
    },
    { title: 'load (1 min)', query: `hox_node_load{${n},minutes="1"}`, by: [], unit: 'count' },
    { title: 'memory available', query: `hox_node_memory_available_bytes{${n}}`, by: [], unit: 'bytes' },
    { title: 'disk free', query: `hox_node_filesystem_available_bytes{${n}}`, by: ['path'], unit: 'bytes' },
  ];
}

export function treePanels(tree: string): Panel[] {
  const t = `tree=${quoted(tree)}`;
  return [
    { title: 'disk', query: `hox_partition_disk_bytes{${t}}`, by: ['instance'], unit: 'bytes' },
    { title: 'memory', query: `hox_partition_memory_working_set_bytes{${t}}`, by: ['instance'], unit: 'bytes' },
    { title: 'processes', query: `hox_partition_pids{${t}}`, by: ['instance'], unit: 'count' },
  ];
}

function valueText(v: number, unit: Panel['unit']): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'bytes') return bytesText(v);
  if (unit === 'ratio') return `${(v * 100).toFixed(0)} %`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** The monitor's Prometheus, as its tree publishes it (the admin's only). */
async function monitorAccess(client: MasterClient, tree: string): Promise<PrometheusAccess> {
  const answer = await client.call('getInstanceTree', { title: tree });
  const c = ('connection_parameters' in answer ? answer.connection_parameters : {}) as Record<string, unknown>;
  const { url, user, password, ca_cert: ca } = c;
  if (typeof url !== 'string' || typeof user !== 'string' || typeof password !== 'string' || typeof ca !== 'string')
    throw new HoxError(
      'HOX_CONFLICT',
      `the monitor '${tree}' has not published its URL, password and CA yet (hox show ${tree})`,
    );
  return { url, user, password, ca };
}

export function metricsCommand(env: CommandEnv): Command {
  return new Command('metrics')
    .description("Key series of a compute node or an instance tree as sparklines, from the platform's monitor (admin)")
    .argument('<node-or-tree>', 'a compute node id, or an instance tree title')
    .option('--minutes <n>', 'how far back', positiveInteger, 60)
    .option('--monitor <tree>', "the monitor's tree (hyper_monitor)", 'monitor')
    .addHelpText(
      'after',
      "\nA node: CPU busy, load, memory available, each filesystem's free space. A tree: each instance's disk,\n" +
        'memory (its working set: what it cannot give back) and processes. Each line: the sparkline of the\n' +
        'period (60 points, lowest to highest of its own range), then the last value, the lowest and the highest.\n' +
        '\nExamples:\n  hox metrics local\n  hox metrics pilot-db --minutes 180\n  hox metrics crm --json',
    )
    .action(async (target: string, opts: { minutes: number; monitor: string }, command: Command) => {
      const client = connect(env, command);
      const nodes = (await client.call('listNodes', {})).result_list.map((n) => n.computer_guid);
      const isNode = nodes.includes(target);
      const panels = isNode ? nodePanels(target) : treePanels(target);
      const access = await monitorAccess(client, opts.monitor);
      const endS = Math.floor(Date.now() / 1000);
      const stepS = Math.max(1, Math.round((opts.minutes * 60) / POINTS));
      const range = { startS: endS - opts.minutes * 60, endS, stepS };
      const results: { panel: Panel; series: RangeSeries[] }[] = [];
      for (const panel of panels) results.push({ panel, series: await queryRange(access, panel.query, range) });
      if (results.every((r) => r.series.length === 0))
        throw new HoxError(
          'HOX_NOT_FOUND',
          `the monitor has no series for ${isNode ? `compute node '${target}'` : `instance tree '${target}'`} in the last ${opts.minutes} min`,
        );
      const rows = results.flatMap(({ panel, series }) =>
        series.map((s) => {
          // One value per step of the range, NaN where Prometheus had none.
          const byTime = new Map(s.values.map(([t, v]) => [Math.round(t), Number(v)]));
          const values = Array.from({ length: POINTS + 1 }, (_, i) => byTime.get(range.startS + i * stepS) ?? NaN);
          const finite = values.filter((v) => Number.isFinite(v));
          return {
            name: [panel.title, ...panel.by.map((l) => s.metric[l] ?? '')].join(' '),
            panel,
            labels: s.metric,
            values,
            last: finite.at(-1) ?? NaN,
            min: finite.length === 0 ? NaN : Math.min(...finite),
            max: finite.length === 0 ? NaN : Math.max(...finite),
          };
        }),
      );
      if (globals(command).json === true)
        return env.print(
          JSON.stringify({
            target,
            kind: isNode ? 'node' : 'tree',
            start: new Date(range.startS * 1000).toISOString(),
            step_s: stepS,
            series: rows.map((r) => ({
              name: r.name,
              query: r.panel.query,
              unit: r.panel.unit,
              labels: r.labels,
              values: r.values.map((v) => (Number.isFinite(v) ? v : null)),
            })),
          }),
        );
      env.print(`${isNode ? 'compute node' : 'instance tree'} ${target}, last ${opts.minutes} min:`);
      for (const line of table(
        ['series', `${opts.minutes} min`, 'now', 'low', 'high'],
        rows.map((r) => [
          r.name,
          sparkline(r.values),
          valueText(r.last, r.panel.unit),
          valueText(r.min, r.panel.unit),
          valueText(r.max, r.panel.unit),
        ]),
      ))
        env.print(line);
    });
}
