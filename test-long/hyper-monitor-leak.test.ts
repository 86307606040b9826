/**
 * Issue 16's second remediation end to end, on a real platform: two `hox node` processes, a TLS master, the admin's
 * monitor (Prometheus and the watch program), and a user's hyper_edge app of 2 replicas limited to 256 MiB each
 * (`hox app scale --memory-mib`), whose replica-1 leaks memory at a steady rate once it has served for a while
 * (as a leak under traffic does).
 *
 * - the monitor forecasts replica-1's working set reaching its limit and the master opens a `memory-full` alert,
 *   dated ahead;
 * - the master restarts replica-1's processes (`restart-replica`, as `hox app restart --replica 1` does): a new web
 *   takes the traffic, the leaking one is drained and stopped, the partition's memory falls back, and the kernel
 *   killed nothing for memory;
 * - the app's public URL answered every request meanwhile.
 *
 * Time is compressed: memory measured every second, scraped every second, an evaluation every 2 s.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { havePrometheus } from '../test/support/prometheus.js';
import { runHox, type HoxRun } from '../test/support/hox-cli.js';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { requestMonitor, type AlertView } from '../src/testing/maintenance-scenarios.js';
import { waitFor } from '../src/testing/wait-for.js';

const MiB = 1024 * 1024;
/** Leaks 1.5 MiB a second (zeroed buffers: resident), from 10 s after it listens, on the replica LEAK names. */
const SERVER = `import { createServer } from 'node:http';
const kept = [];
const server = createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\\n');
  res.end(\`leak on \${process.env.HOX_REPLICA} pid \${process.pid}\\n\`);
});
server.keepAliveTimeout = 1000;
server.listen(Number(process.env.PORT), process.env.HOST, () => {
  if (process.env.HOX_REPLICA !== process.env.LEAK) return;
  setTimeout(() => setInterval(() => kept.push(Buffer.alloc(384 * 1024, 1)), 250), 10_000);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

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
    const alice = platform.admin.withToken(aliceToken);
    const hox = async (args: string[]): Promise<HoxRun> => {
      const run = await runHox(args, env, 300_000);
      if (run.code !== 0) throw new Error(`hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}`);
      return run;
    };
    await requestMonitor(platform.admin);
    const dir = join(home, 'app');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'package.json'),
      '{ "name": "leak", "version": "1.0.0", "private": true, "type": "module" }\n',
    );
    writeFileSync(join(dir, 'server.js'), SERVER);
    writeFileSync(join(dir, 'Procfile'), 'web: node server.js\n');
    writeFileSync(join(dir, 'hox.toml'), '[healthcheck]\npath = "/healthz"\ntimeout = 10\n');
    const deployed = await hox(['app', 'deploy', 'leak', dir, '--scale', '2', '--env', 'LEAK=replica-1']);
    const url = /serving at (http:\S+)/.exec(deployed.stdout)![1]!;
    // The memory limit: the replicas' partitions are limited on their next convergence (no restart needed).
    await hox(['app', 'scale', 'leak', '2', '--memory-mib', '256']);
    const replica1 = async () =>
      (await alice.call('listTreeStatus', { title: 'leak' })).result_list[0]!.instance_list.find(
        (i) => i.title === 'replica-1',
      )!;
    await waitFor(
      "replica-1's 256 MiB limit",
      async () => (await replica1()).partition_usage?.limits.memory_bytes === 256 * MiB,
      60_000,
    );
    const webPid = async (): Promise<number | undefined> => {
      const ps = JSON.parse((await hox(['app', 'ps', 'leak', '--json'])).stdout) as {
        processes: { replica: string; type: string | null; pid: number | null }[];
      };
      return ps.processes.find((r) => r.replica === 'replica-1' && r.type === 'web')?.pid ?? undefined;
    };
    const pidBefore = await webPid();
    expect(pidBefore).toBeGreaterThan(0);

    // Requests through the public URL for the whole run: none may fail.
    let stop = false;
    const results: string[] = [];
    const load = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        results.push(
          await fetch(url).then(
            async (r) => `${r.status} ${(await r.text()).trim()}`,
            (error: Error) => `0 ${error.message}`,
          ),
        );
        await sleep(50);
      }
    })();
    const startedMs = Date.now();
    let alert: AlertView | undefined;
    let peakBytes = 0;
    try {
      alert = await waitFor(
        'a memory-full alert on replica-1, acted on',
        async () => {
          const usage = (await replica1()).partition_usage?.usage;
          peakBytes = Math.max(peakBytes, usage?.memory_working_set_bytes ?? 0);
          return (await platform.admin.call('listAlerts', {})).result_list.find(
            (a) => a.rule === 'memory-full' && a.tree === 'leak' && a.instance === 'replica-1' && a.action !== null,
          );
        },
        240_000,
      );
      const alertedMs = Date.now();
      expect(alert.action, JSON.stringify(alert)).toMatchObject({
        policy: 'restart-replica',
        done: true,
        app: 'leak',
        replica: 'replica-1',
      });
      expect(Date.parse(alert.eta!)).toBeGreaterThan(alertedMs);
      // The runner applied that restart: a new web process serves.
      await waitFor(
        "replica-1's restart applied",
        async () =>
          ((await replica1()).connection_parameters['restart'] as { id?: string } | undefined)?.id ===
          alert!.action!['restart'],
        120_000,
      );
      const pidAfter = await webPid();
      expect(pidAfter).toBeGreaterThan(0);
      expect(pidAfter).not.toBe(pidBefore);
      // The memory the leaking process held was given back, and nothing was killed for memory.
      const atAlert = peakBytes;
      const low = await waitFor(
        "replica-1's memory to fall back",
        async () => {
          const usage = (await replica1()).partition_usage?.usage;
          const now = usage?.memory_working_set_bytes ?? Infinity;
          return now < atAlert - 40 * MiB ? usage : undefined;
        },
        60_000,
      );
      expect(low.oom_kills ?? 0).toBe(0);
      process.stderr.write(
        `restart-replica: alert ${Math.round((alertedMs - startedMs) / 1000)} s into the run (working set ${Math.round(atAlert / MiB)} MiB of 256), then ${Math.round((low.memory_working_set_bytes ?? 0) / MiB)} MiB after the restart; ${results.length} requests\n`,
      );
    } finally {
      stop = true;
      await load;
    }
    expect(results.length).toBeGreaterThan(100);
    expect(results.filter((r) => !r.startsWith('200 '))).toEqual([]);
    // Nothing else was alerted on the app: replica-2 does not leak.
    const others = (await platform.admin.call('listAlerts', { all: true })).result_list.filter(
      (a) => a.tree === 'leak' && a.instance !== 'replica-1',
    );
    expect(others).toEqual([]);
  }, 600_000);
});
