/**
 * Issue 16's second remediation end to end, on a real platform: two `hox node` processes, a TLS master, the admin's
 * monitor (Prometheus and the watch program), and a user's hyper_edge app of 2 replicas limited to 256 MiB each
 * (`hox app scale --memory-mib`), whose replica-1 leaks memory at a steady rate once it has served for 30 s
 * (as a leak under traffic does): src/testing/maintenance-scenarios.ts, `leakRun`.
 *
 * - the monitor forecasts replica-1's working set reaching its limit and the master opens a `memory-full` alert,
 *   dated ahead;
 * - the master restarts replica-1's processes (`restart-replica`, as `hox app restart --replica 1` does): a new web
 *   takes the traffic, the leaking one is drained and stopped, the partition's memory falls back, and the kernel
 *   killed nothing for memory;
 * - the app's public URL answered every request meanwhile, and nothing was alerted while nothing leaked.
 *
 * Time is compressed: memory measured every second, scraped every second, an evaluation every 2 s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { havePrometheus } from '../test/support/prometheus.js';
import { runHox } from '../test/support/hox-cli.js';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { leakRun, requestMonitor } from '../src/testing/maintenance-scenarios.js';

const MiB = 1024 * 1024;

describe.skipIf(process.getuid?.() !== 0 && process.env.CI !== 'true')('restart-replica on a real app', () => {
  let p: HyperDbPlatform | undefined;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let aliceToken: string;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('replicas run as partition users with memory limits: root is needed');
    if (!havePrometheus()) throw new Error('prometheus is needed (sh scripts/install-system-deps.sh)');
    p = await startHyperDbPlatform({
      nodes: 2,
      partitions: 3,
      nodeIdPrefix: 'leak-node',
      releases: ['hyper_edge', 'hyper_monitor'],
      tls: true,
      usageIntervalS: 1,
    });
    home = mkdtempSync(join(tmpdir(), 'hox-leak-'));
    writeFileSync(join(home, 'ca.pem'), p.master.ca!);
    aliceToken = (await p.admin.call('createUser', { name: 'alice' })).token;
    env = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: p.master.url,
      HOX_TOKEN: aliceToken,
      HOX_CA_FILE: join(home, 'ca.pem'),
    };
  }, 180_000);

  afterAll(async () => {
    await p?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('restarts a replica whose memory will reach its limit before it does, and the URL keeps answering', async () => {
    const platform = p!;
    await requestMonitor(platform.admin);
    const run = await leakRun(platform, {
      app: 'leak',
      userToken: aliceToken,
      memoryMib: 256,
      leakMibPerS: 1.5,
      quietS: 30,
      dir: join(home, 'app'),
      hox: async (args) => {
        const out = await runHox(args, env, 300_000);
        if (out.code !== 0) throw new Error(`hox ${args.join(' ')} exited ${out.code}\n${out.stdout}\n${out.stderr}`);
        return out.stdout;
      },
    });
    const { alert, alertedMs } = run;
    if (alert === null || alertedMs === null)
      throw new Error(`no memory-full alert on replica-1: ${JSON.stringify(run)}`);
    process.stderr.write(
      `restart-replica: alert ${Math.round((alertedMs - run.leakFromMs) / 1000)} s into the leak and ${Math.round((run.fullAtMs - alertedMs) / 1000)} s before the limit (working set ${Math.round((run.atAlertBytes ?? 0) / MiB)} MiB of ${run.limitBytes / MiB}), ${run.afterRestartBytes === null ? 'no fall' : `${Math.round(run.afterRestartBytes / MiB)} MiB`} after the restart; ${run.requests} requests\n`,
    );
    expect(alert.action, JSON.stringify(alert)).toMatchObject({
      policy: 'restart-replica',
      done: true,
      app: 'leak',
      replica: 'replica-1',
    });
    expect(Date.parse(alert.eta!)).toBeGreaterThan(alertedMs);
    // The runner applied the master's restart before the limit, the memory fell back, nothing was killed for it.
    expect(run.restartedMs).not.toBeNull();
    expect(run.restartedMs!).toBeLessThan(run.fullAtMs);
    expect(run.afterRestartBytes).not.toBeNull();
    expect(run.oomKills).toBe(0);
    // No false alarm: none while nothing leaked, none on replica-2.
    expect(run.quietAlerts).toEqual([]);
    expect(run.otherAlerts).toEqual([]);
    expect(run.requests).toBeGreaterThan(100);
    expect(run.failedRequests).toEqual([]);
  }, 600_000);
});
