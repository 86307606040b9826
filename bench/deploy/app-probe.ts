/**
 * What the deploy benchmark reads from a replica's partition on disk (the
 * benchmark runs as root beside the nodes): where the app's web process and
 * the replica's local proxy listen (`runner.json` + the runner's own record
 * `app/state.json`), and when the runner reached each step of a deploy (its
 * log lines are `<ISO time> v<release>: <step>`, see
 * src/releases/hyper_edge/runner/runner.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunnerConfig } from '../../src/releases/hyper_edge/protocol.js';
import type { HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';

/** The steps the runner logs, in order; `serving` is its `serving on host:port` line. */
export const RUNNER_STEPS = [
  'unpack',
  'build',
  'release',
  'start',
  'health check',
  'switch',
  'drain',
  'serving',
] as const;
export type RunnerStep = (typeof RUNNER_STEPS)[number];

interface Located {
  node: string;
  nodeDataDir: string;
  partitionId: string;
  path: string;
}

async function locate(p: HyperDbPlatform, app: string, instance: string): Promise<Located> {
  const [tree] = (await p.admin.call('listTreeStatus', { title: app })).result_list;
  const found = tree?.instance_list.find((i) => i.title === instance);
  const node = p.nodes.find((n) => n.id === found?.computer_guid);
  if (found === undefined || node === undefined || found.compute_partition_id === null)
    throw new Error(`${app}: ${instance} is not allocated`);
  const partitionId = found.compute_partition_id;
  return {
    node: node.id,
    nodeDataDir: node.dataDir,
    partitionId,
    path: join(node.dataDir, 'partitions', partitionId),
  };
}

export interface ReplicaEndpoints {
  /** The serving release's web process, on its slot port. */
  direct: string;
  /** The replica's local Caddy (what the public endpoint dials). */
  replicaProxy: string;
  node: string;
}

/** Base URLs (no trailing slash) of a replica's serving web process and of its local proxy. */
export async function replicaEndpoints(
  p: HyperDbPlatform,
  app: string,
  replica = 'replica-1',
): Promise<ReplicaEndpoints> {
  const at = await locate(p, app, replica);
  const config = JSON.parse(readFileSync(join(at.path, 'runner.json'), 'utf8')) as RunnerConfig;
  const record = JSON.parse(readFileSync(join(at.path, 'app', 'state.json'), 'utf8')) as {
    serving: { slot: 0 | 1 } | null;
  };
  if (record.serving === null) throw new Error(`${app}: ${replica} serves nothing`);
  return {
    direct: `http://${config.host}:${config.slotPorts[record.serving.slot]}`,
    replicaProxy: `http://${config.host}:${config.proxyPort}`,
    node: at.node,
  };
}

/** When (epoch ms) the replica's runner logged each step of release `id`; the last occurrence wins. */
export async function runnerSteps(
  p: HyperDbPlatform,
  app: string,
  id: number,
  replica = 'replica-1',
): Promise<Map<RunnerStep, number>> {
  const at = await locate(p, app, replica);
  const log = join(at.nodeDataDir, 'logs', at.partitionId, 'runner.log');
  const steps = new Map<RunnerStep, number>();
  if (!existsSync(log)) return steps;
  const line =
    /(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) v(\d+): (unpack|build|release|start|health check|switch|drain|serving on)\b/;
  for (const text of readFileSync(log, 'utf8').split('\n')) {
    const m = line.exec(text);
    if (m === null || Number(m[2]) !== id) continue;
    steps.set((m[3] === 'serving on' ? 'serving' : m[3]) as RunnerStep, Date.parse(m[1]!));
  }
  return steps;
}

export { appLogs } from '../../src/testing/app-logs.js';
