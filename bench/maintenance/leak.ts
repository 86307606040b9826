/**
 * bench/maintenance (online): an app leaking memory, on a real platform, the platform's monitor watching. Needs
 * root and Debian's prometheus (sh scripts/install-system-deps.sh).
 *
 *   sudo npx tsx bench/maintenance/leak.ts [--runs 2] [--memory-mib 256] [--leak-mib-per-s 1.5] [--quiet-s 60] [--json]
 *
 * Two `hox node` processes, a TLS master, the admin's monitor (src/testing/maintenance-scenarios.ts:
 * MONITOR_PARAMETERS), a user; per run, a new hyper_edge app of 2 replicas limited to `--memory-mib` each, whose
 * replica-1 leaks `--leak-mib-per-s` from `--quiet-s` after its web starts (`leakRun`), requests through the app's
 * URL every 50 ms all along. Measured: the warning's lead time before the leak would have reached the limit,
 * whether the master's restart (`restart-replica`) was applied before it, the memory after, processes killed for
 * memory, failed requests, and false alarms (any alert on the app while nothing leaked, or on replica-2).
 *
 * The peer, on the same data in the same run: Prometheus's own `predict_linear` as the usual rule writes it
 * (`predict_linear(hox_partition_memory_working_set_bytes[window], warning) > hox_partition_memory_limit_bytes`,
 * the monitor's window and warning horizon), evaluated each second by the same Prometheus.
 *
 * Time is compressed as in online.ts: memory measured and scraped every second, an evaluation every 2 s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startHyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import { leakRun, MONITOR_PARAMETERS, requestMonitor } from '../../src/testing/maintenance-scenarios.js';
import { runHox } from '../../test/support/hox-cli.js';
import { log, markdownTable } from '../support/report.js';
import { firingStarts } from './prometheus-peer.js';

const MiB = 1024 * 1024;

interface RunFigures {
  run: number;
  lead_s: number | null;
  lead_s_predict_linear: number | null;
  restarted_before_limit: boolean;
  mib_at_alert: number | null;
  mib_after_restart: number | null;
  oom_kills: number;
  false_alarms_quiet: number;
  false_alarms_quiet_predict_linear: number;
  other_alerts: number;
  requests: number;
  failed_requests: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '2' },
      'memory-mib': { type: 'string', default: '256' },
      'leak-mib-per-s': { type: 'string', default: '1.5' },
      'quiet-s': { type: 'string', default: '60' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const memoryMib = Number(values['memory-mib']);
  const leakMibPerS = Number(values['leak-mib-per-s']);
  const quietS = Number(values['quiet-s']);
  if (!(Number.isInteger(runs) && runs >= 1 && runs <= 10)) throw new Error('--runs: 1 to 10');
  if (!(Number.isInteger(memoryMib) && memoryMib >= 128 && memoryMib <= 4096))
    throw new Error('--memory-mib: 128 to 4096');
  if (!(leakMibPerS > 0 && leakMibPerS <= 64)) throw new Error('--leak-mib-per-s: above 0, at most 64');
  if (!(quietS >= 10 && quietS <= 3600)) throw new Error('--quiet-s: 10 to 3600');
  if (process.getuid?.() !== 0) throw new Error('run as root: replicas run as partition users with memory limits');

  const platform = await startHyperDbPlatform({
    nodes: 2,
    partitions: 1 + 2 * runs,
    nodeIdPrefix: 'lbench-node',
    releases: ['hyper_edge', 'hyper_monitor'],
    tls: true,
    usageIntervalS: 1,
  });
  const home = mkdtempSync(join(tmpdir(), 'hox-leak-bench-'));
  const figures: RunFigures[] = [];
  try {
    writeFileSync(join(home, 'ca.pem'), platform.master.ca!);
    const { token } = await platform.admin.call('createUser', { name: 'bench' });
    const env = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: platform.master.url,
      HOX_TOKEN: token,
      HOX_CA_FILE: join(home, 'ca.pem'),
    };
    await requestMonitor(platform.admin);
    const windowS = Math.round(MONITOR_PARAMETERS.window_hours * 3600);
    const aheadS = Math.round(MONITOR_PARAMETERS.warning_hours * 3600);
    for (let run = 1; run <= runs; run++) {
      const app = `leak-${run}`;
      log(
        `run ${run}: app ${app}, replicas of ${memoryMib} MiB, replica-1 leaking ${leakMibPerS} MiB/s after ${quietS} s`,
      );
      const startedMs = Date.now();
      const r = await leakRun(platform, {
        app,
        userToken: token,
        memoryMib,
        leakMibPerS,
        quietS,
        dir: join(home, app),
        hox: async (args) => {
          const out = await runHox(args, env, 300_000);
          if (out.code !== 0) throw new Error(`hox ${args.join(' ')} exited ${out.code}\n${out.stdout}\n${out.stderr}`);
          return out.stdout;
        },
      });
      const selector = (instance: string) => `tree="${app}",instance="${instance}"`;
      const rule = (instance: string) =>
        `predict_linear(hox_partition_memory_working_set_bytes{${selector(instance)}}[${windowS}s], ${aheadS}) ` +
        `> hox_partition_memory_limit_bytes{${selector(instance)}}`;
      const peer = await firingStarts(platform, rule('replica-1'), r.leakFromMs, r.fullAtMs);
      const peerQuiet = [
        ...(await firingStarts(platform, rule('replica-1'), startedMs, r.leakFromMs)),
        ...(await firingStarts(platform, rule('replica-2'), startedMs, Date.now())),
      ];
      const seconds = (ms: number) => Math.round(ms / 100) / 10;
      figures.push({
        run,
        lead_s: r.alertedMs === null ? null : seconds(r.fullAtMs - r.alertedMs),
        lead_s_predict_linear: peer.length === 0 ? null : seconds(r.fullAtMs - Math.min(...peer)),
        restarted_before_limit: r.restartedMs !== null && r.restartedMs < r.fullAtMs,
        mib_at_alert: r.atAlertBytes === null ? null : Math.round(r.atAlertBytes / MiB),
        mib_after_restart: r.afterRestartBytes === null ? null : Math.round(r.afterRestartBytes / MiB),
        oom_kills: r.oomKills,
        false_alarms_quiet: r.quietAlerts.length,
        false_alarms_quiet_predict_linear: peerQuiet.length,
        other_alerts: r.otherAlerts.length,
        requests: r.requests,
        failed_requests: r.failedRequests.length,
      });
      log(`run ${run}: ${JSON.stringify(figures.at(-1))}`);
      for (const a of [...r.quietAlerts, ...r.otherAlerts])
        log(`  alert ${a.rule} on ${a.instance ?? a.node}: ${a.summary} (opened ${a.opened_at})`);
      for (const f of r.failedRequests.slice(0, 5)) log(`  request failed: ${f}`);
      await platform.admin.withToken(token).call('requestInstance', {
        title: app,
        software_release_uri: 'hyper_edge',
        software_type: 'app',
        state: 'destroyed',
      });
    }
  } finally {
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }

  const alerted = figures.filter((f) => f.lead_s !== null && f.lead_s > 0).length;
  const falseAlarms = figures.reduce((n, f) => n + f.false_alarms_quiet + f.other_alerts, 0);
  const summary = {
    runs,
    memory_mib: memoryMib,
    leak_mib_per_s: leakMibPerS,
    quiet_s: quietS,
    recall: alerted / runs,
    precision: alerted + falseAlarms === 0 ? null : alerted / (alerted + falseAlarms),
    restarted_before_limit: figures.filter((f) => f.restarted_before_limit).length,
    oom_kills: figures.reduce((n, f) => n + f.oom_kills, 0),
    failed_requests: figures.reduce((n, f) => n + f.failed_requests, 0),
    runs_detail: figures,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const cell = (v: number | null | boolean) => (v === null ? '-' : String(v));
  process.stdout.write(
    `${markdownTable(
      [
        'run',
        'warned s before the limit',
        'predict_linear: s before',
        'restarted before the limit',
        'MiB at alert / after restart',
        'killed for memory',
        'false alarms, quiet (ours / predict_linear)',
        'other alerts',
        'requests',
        'failed',
      ],
      figures.map((f) => [
        String(f.run),
        cell(f.lead_s),
        cell(f.lead_s_predict_linear),
        cell(f.restarted_before_limit),
        `${cell(f.mib_at_alert)} / ${cell(f.mib_after_restart)}`,
        cell(f.oom_kills),
        `${f.false_alarms_quiet} / ${f.false_alarms_quiet_predict_linear}`,
        cell(f.other_alerts),
        cell(f.requests),
        cell(f.failed_requests),
      ]),
      1,
    )}\n\nrecall ${summary.recall}, precision ${cell(summary.precision)}, restarted before the limit in ${summary.restarted_before_limit}/${runs} runs, ${summary.oom_kills} processes killed for memory, ${summary.failed_requests} failed requests\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
