/**
 * The platform's monitor end to end (issue 16): a TLS master, a real node agent, the admin's `hyper_monitor`
 * instance running Debian's Prometheus and the watch program, and a partition whose disk fills at a steady rate.
 *
 * - Prometheus scrapes the master's /metrics as the monitor instance (its token, the platform roots, the target
 *   from the file service discovery the agent wrote) and answers its API over HTTPS (the sites CA) with basic auth
 *   only;
 * - the watch program forecasts the filling partition's disk, and the master has a `disk-full` alert for it, with a
 *   date still ahead, before the partition reaches its quota; `hox alerts` prints it.
 *
 * Time is compressed: a scrape and a disk measurement every second, an evaluation every 2 s, warnings 30 min ahead.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { havePrometheus } from './support/prometheus.js';
import { isNotReady } from '../src/client/master-client.js';
import { prometheusGet } from '../src/shared/prometheus-api.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';
import { runHox } from './support/hox-cli.js';
import { SCRIPT_RELEASE } from './support/script-release.js';

const MiB = 1024 * 1024;
const QUOTA = 96 * MiB;
/** Half a MiB a second: the 96 MiB quota is reached about 3 minutes after the start. */
const FILLER =
  'i=0; while [ $i -lt 400 ]; do head -c 524288 /dev/zero >> fill; i=$((i+1)); sleep 1; done; exec sleep 1000';

describe('hyper_monitor on a platform', () => {
  let m: TestMaster;
  let node: AgentFixture | undefined;
  let releaseDir: string;
  let home: string;

  beforeAll(async () => {
    if (!havePrometheus()) {
      if (process.env.CI === 'true') throw new Error('prometheus is needed (sh scripts/install-system-deps.sh)');
      return;
    }
    if (process.getuid?.() !== 0) throw new Error('partition quotas and users need root');
    m = await startTestMaster({ tls: true });
    node = await startAgent(m.admin, {
      nodeId: 'monitor-node',
      partitions: 3,
      masterCa: m.ca!,
      diskCheckIntervalMs: 1000,
    });
    // Outside /tmp: partition users must read the release, and their /tmp is private.
    releaseDir = mkdtempSync(join('/var/tmp', 'hox-monitor-release-'));
    for (const [name, content] of Object.entries(SCRIPT_RELEASE))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
    home = mkdtempSync(join('/var/tmp', 'hox-monitor-cli-'));
    for (const release of ['hyper_monitor', releaseDir])
      await m.admin.call('supply', { computer_guid: 'monitor-node', software_release_uri: release });
  }, 120_000);

  afterAll(async () => {
    await disposeAgent(node);
    await m?.stop();
    if (releaseDir !== undefined) rmSync(releaseDir, { recursive: true, force: true });
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it('scrapes the master as the monitor, and warns of a filling disk before it is full', async () => {
    if (node === undefined) throw new Error('prometheus is missing');
    await m.admin.call('requestInstance', {
      title: 'monitor',
      software_release_uri: 'hyper_monitor',
      software_type: 'default',
      parameters: {
        scrape_interval_s: 1,
        evaluate_interval_s: 2,
        window_hours: 0.1,
        warning_hours: 0.5,
        critical_hours: 0.05,
      },
    });
    const monitor = await waitFor(
      'the monitor to publish its URL',
      async () => {
        const answer = await m.admin.call('getInstanceTree', { title: 'monitor' });
        const c = isNotReady(answer) ? undefined : answer.connection_parameters;
        return typeof c?.['url'] === 'string' && answer;
      },
      120_000,
    );
    if (isNotReady(monitor)) throw new Error('not ready');
    const params = monitor.connection_parameters as { url: string; user: string; password: string };
    const partition = join(node.dataDir, 'partitions', monitor.compute_partition_id);
    const sitesCa = readFileSync(join(partition, 'certificates', 'ca.crt'), 'utf8');
    const auth = { user: params.user, password: params.password };

    // The master's own series reach Prometheus: scraped with the monitor's token, over the platform CA.
    const query = (q: string) =>
      prometheusGet({ url: params.url, ca: sitesCa, ...auth }, `/api/v1/query?query=${encodeURIComponent(q)}`);
    await waitFor(
      'Prometheus to scrape the master',
      async () => {
        const answer = await query('up{job="hox"}').catch(() => undefined);
        return answer?.status === 200 && /"value":\[[\d.]+,"1"\]/.test(answer.body);
      },
      60_000,
    );
    expect(JSON.parse((await query('hox_node_cpus')).body)).toMatchObject({
      data: { result: [{ metric: { node: 'monitor-node' } }] },
    });
    expect((await prometheusGet({ url: params.url, ca: sitesCa }, '/api/v1/query?query=up')).status).toBe(401);
    expect(
      (await prometheusGet({ url: params.url, ca: sitesCa, ...auth, password: 'wrong' }, '/api/v1/query?query=up'))
        .status,
    ).toBe(401);

    // A partition filling its quota at a steady rate.
    const startedMs = Date.now();
    await m.admin.call('requestInstance', {
      title: 'filler',
      software_release_uri: releaseDir,
      software_type: 'run',
      parameters: { script: FILLER, limits: { diskBytes: QUOTA } },
      sla_parameters: { computer_guid: 'monitor-node' },
    });
    const alert = await waitFor(
      'a disk-full alert on the filler',
      async () =>
        (await m.admin.call('listAlerts', {})).result_list.find((a) => a.rule === 'disk-full' && a.tree === 'filler'),
      150_000,
    );
    const seenMs = Date.now();
    // Ahead of the failure: the quota is not reached yet, and the date it will be is still to come.
    const usage = (await m.admin.call('listTreeStatus', { title: 'filler' })).result_list[0]!.instance_list[0]!
      .partition_usage;
    expect(usage?.usage.disk_bytes ?? 0).toBeLessThan(QUOTA);
    expect(Date.parse(alert.eta!)).toBeGreaterThan(seenMs);
    // Near what the steady rate says: the quota at 0.5 MiB/s from the start (the agent's own start delay aside).
    const steadyMs = startedMs + (QUOTA / MiB) * 2000;
    expect(Math.abs(Date.parse(alert.eta!) - steadyMs)).toBeLessThan(90_000);
    expect(alert).toMatchObject({ state: 'open', node: 'monitor-node', instance: 'filler' });
    expect(alert.summary).toMatch(
      /^disk quota of monitor-node partition \S+ \(filler\/filler\) forecast to run out in/,
    );
    expect(alert.evidence).toMatchObject({ limit: QUOTA, query: 'hox_partition_disk_bytes' });
    expect(Number(alert.evidence['per_hour'])).toBeGreaterThan(0);

    // `hox alerts`, as the admin reads it.
    writeFileSync(join(home, 'ca.pem'), m.ca!);
    const shown = await runHox(['alerts'], {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: m.url,
      HOX_TOKEN: m.adminToken,
      HOX_CA_FILE: join(home, 'ca.pem'),
    });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^SEVERITY +RULE +RESOURCE +LIMIT REACHED +SINCE +SUMMARY$/m);
    expect(shown.stdout).toMatch(/(critical|warning) +disk-full +filler\/filler \(monitor-node \S+\) +(in \d+|now)/);

    // `hox metrics`: the tree's and the node's series, from the monitor's Prometheus.
    const cliEnv = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: m.url,
      HOX_TOKEN: m.adminToken,
      HOX_CA_FILE: join(home, 'ca.pem'),
    };
    const tree = await runHox(['metrics', 'filler', '--minutes', '5'], cliEnv);
    expect(tree.code, tree.stderr).toBe(0);
    expect(tree.stdout).toMatch(/^instance tree filler, last 5 min:$/m);
    expect(tree.stdout).toMatch(/^disk filler +[ ▁▂▃▄▅▆▇█]+ +[\d.]+ MiB/m);
    const nodeView = await runHox(['metrics', 'monitor-node', '--minutes', '5', '--json'], cliEnv);
    expect(nodeView.code, nodeView.stderr).toBe(0);
    const parsed = JSON.parse(nodeView.stdout) as {
      kind: string;
      series: { name: string; values: (number | null)[] }[];
    };
    expect(parsed.kind).toBe('node');
    const memory = parsed.series.find((s) => s.name === 'memory available');
    expect(memory?.values.some((v) => v !== null && v > 0)).toBe(true);
    const missing = await runHox(['metrics', 'no-such-tree'], cliEnv);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no instance tree or compute node 'no-such-tree'/);

    // A user reads their own tree's series through the master, never another's of the same title, nor a node's.
    const { token: aliceToken, user_id: aliceId } = await m.admin.call('createUser', { name: 'alice' });
    await m.admin.withToken(aliceToken).call('requestInstance', {
      title: 'filler',
      software_release_uri: releaseDir,
      software_type: 'run',
      parameters: { script: 'exec sleep 1000' },
      sla_parameters: { computer_guid: 'monitor-node' },
    });
    const aliceEnv = { ...cliEnv, HOX_TOKEN: aliceToken };
    const mine = await waitFor(
      "alice's filler in hox metrics",
      async () => {
        const run = await runHox(['metrics', 'filler', '--minutes', '5', '--json'], aliceEnv);
        return run.code === 0 ? run : undefined;
      },
      90_000,
    );
    const aliceView = JSON.parse(mine.stdout) as {
      kind: string;
      series: { name: string; labels: Record<string, string>; values: (number | null)[] }[];
    };
    expect(aliceView.kind).toBe('tree');
    expect(aliceView.series.map((x) => x.name)).toContain('disk filler');
    expect(aliceView.series.every((x) => x.labels['owner'] === aliceId && x.labels['tree'] === 'filler')).toBe(true);
    // Hers writes nothing: not the admin's filler, which is past 10 MiB by now.
    const disk = aliceView.series.find((x) => x.name === 'disk filler')!;
    expect(Math.max(...disk.values.filter((v): v is number => v !== null))).toBeLessThan(10 * MiB);
    const nodeForAlice = await runHox(['metrics', 'monitor-node'], aliceEnv);
    expect(nodeForAlice.code).not.toBe(0);
    expect(nodeForAlice.stderr).toMatch(/instance tree 'monitor-node' not found/);
  }, 300_000);
});
