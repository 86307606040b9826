/** Helpers for node agent tests: wait for a condition, find service processes, start agents. */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveNodeAgentConfig, type NodeAgentOptions } from '../../src/agent/agent-config.js';
import { createNodeAgent, type NodeAgent } from '../../src/agent/node-agent.js';
import { removePartitionUser } from '../../src/agent/format/partition-formatter.js';
import { partitionLayouts } from '../../src/agent/format/partition-layout.js';
import { runNft } from '../../src/agent/isolate/partition-firewall.js';
import { firewallRemoval, firewallTableName } from '../../src/agent/isolate/partition-firewall-rules.js';
import type { MasterClient } from '../../src/client/master-client.js';
import { testIpPrefix } from '../../src/testing/worker-slot.js';

export { waitFor } from '../../src/testing/wait-for.js';

/**
 * Pids of processes whose working directory is `dir` — the services of a
 * partition (the agent's short-lived file writer, `node -e`, is left out).
 */
export function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) !== dir) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[1] !== '-e') pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

export function processUid(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^Uid:\s+(\d+)/m.exec(status);
  if (match === null) throw new Error(`no Uid in /proc/${pid}/status`);
  return Number(match[1]);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface AgentFixture {
  agent: NodeAgent;
  dataDir: string;
  logs: string[];
}

export function tempDataDir(prefix = 'hox-node-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts an in-process agent registered with a fresh registration token; its partition addresses are this
 * vitest worker's range for the node id unless `ipPrefix` is given (see src/testing/worker-slot.ts).
 */
export async function startAgent(
  admin: MasterClient,
  options: Partial<NodeAgentOptions> & { nodeId: string; dataDir?: string },
): Promise<AgentFixture> {
  const dataDir = options.dataDir ?? tempDataDir();
  const { token } = await admin.call('createRegistrationToken', {});
  const logs: string[] = [];
  const agent = createNodeAgent(
    resolveNodeAgentConfig({
      masterUrl: admin.url,
      partitions: 3,
      registerToken: token,
      ...options,
      ipPrefix: options.ipPrefix ?? testIpPrefix(options.nodeId),
      dataDir,
    }),
    { log: (m) => logs.push(m) },
  );
  await agent.start();
  return { agent, dataDir, logs };
}

/** Stops the agent and its services, removes its data dir and the unix users it made. */
export async function disposeAgent(fixture: AgentFixture | undefined): Promise<void> {
  if (fixture === undefined) return;
  await fixture.agent.stop({ stopServices: true });
  for (const p of fixture.agent.partitions) if (p.uid !== undefined) await removePartitionUser(p.user);
  rmSync(fixture.dataDir, { recursive: true, force: true });
}

/**
 * After a `hox up` (default ports): kills every service of its node's partitions and removes their
 * users (when root), so that a test leaves no process or account behind.
 */
export async function cleanUpNodePartitions(nodeId: string, nodeDataDir: string, count: number): Promise<void> {
  const layouts = partitionLayouts({ nodeId, dataDir: nodeDataDir, count, portBase: 20000, portsPerPartition: 50 });
  for (const l of layouts) {
    for (const pid of processesIn(l.path)) process.kill(-pid, 'SIGKILL');
    if (process.getuid?.() === 0) await removePartitionUser(l.user);
  }
  // An agent stopped without stopping its services keeps their firewall table (isolation outlives it by
  // design); with the services gone, so goes the table — else it filters the next user of that range.
  if (process.getuid?.() === 0)
    for (const prefix of new Set(layouts.map((l) => l.ip.split('.').slice(0, 3).join('.'))))
      await runNft(firewallRemoval(firewallTableName(prefix))).catch(() => {});
}
