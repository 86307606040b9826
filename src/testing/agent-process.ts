/**
 * Runs a node agent as a real `hox node` process from the TypeScript sources
 * (tests that kill it, benchmarks that measure its CPU and memory).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { testIpPrefix } from './worker-slot.js';

const HOX = fileURLToPath(new URL('../bin/hox.ts', import.meta.url));

export interface AgentProcessOptions {
  masterUrl: string;
  dataDir: string;
  nodeId: string;
  partitions: number;
  /** Needed on the first start only. */
  registerToken?: string;
  portBase?: number;
  /** Partition addresses: by default this vitest worker's range for the node id ({@link testIpPrefix}). */
  ipPrefix?: string;
  quiet?: boolean;
  /** PEM file of the master's roots (a TLS master). */
  caFile?: string;
  /** `--usage-interval`: seconds between disk usage and node metrics measurements. */
  usageIntervalS?: number;
}

/** Starts `hox node …`; its stdout and stderr are pipes the caller reads (or resumes). */
export function spawnAgentProcess(options: AgentProcessOptions): ChildProcessByStdio<null, Readable, Readable> {
  const args = ['--import', 'tsx', HOX, 'node', '--master', options.masterUrl, '--data-dir', options.dataDir];
  args.push('--partitions', String(options.partitions), '--node-id', options.nodeId);
  if (options.portBase !== undefined) args.push('--port-base', String(options.portBase));
  const ipPrefix = options.ipPrefix ?? testIpPrefix(options.nodeId);
  if (ipPrefix !== undefined) args.push('--ip-prefix', ipPrefix);
  if (options.quiet === true) args.push('--quiet');
  if (options.caFile !== undefined) args.push('--ca-file', options.caFile);
  if (options.usageIntervalS !== undefined) args.push('--usage-interval', String(options.usageIntervalS));
  // The token goes through the environment: argv is readable by every user of the machine.
  const env =
    options.registerToken === undefined ? process.env : { ...process.env, HOX_REGISTER_TOKEN: options.registerToken };
  return spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}
