/**
 * hyper_monitor's watch program: every `intervalS`, reads each rule's history back from the partition's Prometheus,
 * forecasts when each resource runs out, looks for WAL archiving failing now (rules.ts), runs the streaming anomaly
 * detector on the database series (anomalies.ts) and reports the monitor's whole set of open alerts to the master
 * as its instance (`hox.put.v1.alerts`: alerts left out are resolved there). Publishes what the last evaluation
 * found (`.hox/publish.json`) when that changes.
 *
 * `node watch/main.js <watch.json> <partition path>`
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MasterClient } from '../../../client/master-client.js';
import { runProgram } from '../../../release-kit/run-program.js';
import { writeFileDurably } from '../../../shared/durable-file.js';
import type { ReportedAlert, WatchConfig } from '../protocol.js';
import { queryRange, type PrometheusAccess } from '../../../shared/prometheus-api.js';
import { ANOMALY_SERIES, AnomalyWatch } from './anomalies.js';
import {
  ARCHIVING_FOR_STEPS,
  ARCHIVING_QUERIES,
  confirmAlerts,
  FOR_STEPS,
  judgeArchiving,
  judgeRule,
  RULES,
} from './rules.js';

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: watch <watch.json> <partition path>\n');
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
/** Points per series a query asks for at most: the step grows with the window beyond it. */
const MAX_POINTS = 3000;

const text = async (path: string) => (await readFile(path, 'utf8')).trim();

let open = new Set<string>();
/** One streaming detector per series, for the program's lifetime. */
const anomalies = new AnomalyWatch();
/** Rules firing but not reported yet (key → since when): see confirmAlerts. */
const pending = { forecasts: new Map<string, number>(), facts: new Map<string, number>() };
let lastPublished: Record<string, unknown> = {};

async function evaluate(config: WatchConfig): Promise<void> {
  const prometheus: PrometheusAccess = {
    url: config.prometheus.url,
    user: config.prometheus.user,
    password: await text(config.prometheus.passwordFile),
    ca: await readFile(config.prometheus.caFile, 'utf8'),
  };
  const nowMs = Date.now();
  const stepS = Math.max(config.stepS, Math.ceil(config.windowS / MAX_POINTS));
  // On a grid of whole steps since the epoch: every evaluation reads the same instants (Prometheus evaluates at
  // start + k × step), so the anomaly detectors are fed evenly spaced points, each once.
  const endS = Math.floor(nowMs / 1000 / stepS) * stepS;
  const range = { startS: endS - Math.ceil(config.windowS / stepS) * stepS, endS, stepS };
  const firing: ReportedAlert[] = [];
  for (const rule of RULES) {
    const series = await queryRange(prometheus, rule.query, range);
    const limits = rule.limitQuery === undefined ? [] : await queryRange(prometheus, rule.limitQuery, range);
    firing.push(
      ...judgeRule(rule, series, limits, {
        nowMs,
        stepS,
        warningS: config.warningS,
        criticalS: config.criticalS,
        open,
      }),
    );
  }
  // The facts (WAL archiving failing now): the last few minutes are enough, and a shorter hold (see ARCHIVING_FOR_STEPS).
  const recent = { ...range, startS: range.endS - Math.max(300, 10 * stepS) };
  const [failedAt, archivedAt, failures] = await Promise.all(
    [ARCHIVING_QUERIES.failedAt, ARCHIVING_QUERIES.archivedAt, ARCHIVING_QUERIES.failures].map((q) =>
      queryRange(prometheus, q, recent),
    ),
  );
  const facts = judgeArchiving({ failedAt: failedAt!, archivedAt: archivedAt!, failures: failures! }, { nowMs });
  const alerts = [
    ...confirmAlerts(firing, { nowMs, forMs: FOR_STEPS * stepS * 1000, open, pending: pending.forecasts }),
    ...confirmAlerts(facts, { nowMs, forMs: ARCHIVING_FOR_STEPS * stepS * 1000, open, pending: pending.facts }),
  ];
  // Anomalies need no hold: the detector reports once per incident, and learns from every point.
  for (const spec of ANOMALY_SERIES)
    alerts.push(
      ...anomalies.judge(spec, await queryRange(prometheus, spec.query, range), {
        nowMs,
        stepS,
        forgetS: config.windowS,
      }),
    );
  const master = new MasterClient({
    url: await text(config.master.urlFile),
    token: await text(config.master.tokenFile),
    ca: await readFile(config.master.caFile, 'utf8'),
  });
  const answer = await master.call('reportAlerts', { instance_guid: await text(config.master.instanceFile), alerts });
  const opened = alerts.filter((a) => !open.has(a.key));
  for (const a of opened) log(`alert ${a.severity}: ${a.summary}`);
  const now = new Set(alerts.map((a) => a.key));
  for (const key of open) if (!now.has(key)) log(`resolved: ${key}`);
  open = now;
  if (answer.unknown_resources.length > 0) log(`the master knows no node for: ${answer.unknown_resources.join(', ')}`);
  await publish({
    open_alerts: alerts.length,
    critical: alerts.filter((a) => a.severity === 'critical').length,
    // The roots of Prometheus's certificate (the sites CA), for hox metrics and anyone reading its API.
    ca_cert: prometheus.ca,
  });
}

async function publish(doc: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify(doc);
  if (body === JSON.stringify(lastPublished)) return;
  await writeFileDurably(join(partitionPath!, '.hox', 'publish.json'), body, { mode: 0o640 });
  lastPublished = doc;
}

runProgram(async () => {
  const config = JSON.parse(await readFile(configPath, 'utf8')) as WatchConfig;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const cycle = async (): Promise<void> => {
    try {
      await evaluate(config);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`evaluation failed: ${message}`);
      // What the last evaluation published (Prometheus's CA above all: hox metrics needs it) stays, with the error.
      await publish({ ...lastPublished, open_alerts: open.size, error: message.slice(0, 300) }).catch(() => undefined);
    }
    if (!stopped) timer = setTimeout(() => void cycle(), config.intervalS * 1000);
  };
  log(
    `watching every ${config.intervalS} s, ${config.windowS} s of history, ${RULES.length + 1} rules, ${ANOMALY_SERIES.length} series for anomalies`,
  );
  void cycle();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
});
