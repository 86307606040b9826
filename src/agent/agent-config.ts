/** Options in, config out for the node agent (`hox node`). */
import { resolve } from 'node:path';
import type { PartitionLimits } from '../release-kit/types.js';
import { badRequest } from '../shared/errors.js';
import type { ResolvedLimits } from './isolate/partition-cgroups.js';
import { defaultLimits, resolveLimits } from './isolate/partition-limits.js';

export interface NodeAgentOptions {
  /** Master URL, e.g. https://127.0.0.1:8470 */
  masterUrl: string;
  /** The master's CA roots (PEM): `--ca-file`, or what `hox up` holds. Kept with the node's credentials. */
  masterCa?: string;
  /** The master's CA pin (`--ca-pin sha256:…`): the roots are fetched from the master and checked against it. */
  masterCaPin?: string;
  /** Where the agent keeps its credentials, state, software and partitions. */
  dataDir: string;
  /** How many partitions to format. @default 10 */
  partitions?: number;
  /** One-time registration token; needed only on first start. */
  registerToken?: string;
  /** Node id to register as. @default the host name */
  nodeId?: string;
  /** Network the node belongs to (SLA network_guid). */
  networkGuid?: string;
  /**
   * First three octets of partition addresses: partition i gets `<prefix>.<i+1>`.
   * @default a 127.x.y derived from the node id (loopback: one machine)
   */
  ipPrefix?: string;
  /** First port of partition 0; partition i gets `portBase + i * portsPerPartition`. @default 20000 */
  portBase?: number;
  /** @default 50 */
  portsPerPartition?: number;
  /** Full reprocess of every partition at least this often. @default 300000 */
  reprocessIntervalMs?: number;
  /** Run services as per-partition unix users (only possible as root). @default true when root */
  partitionUsers?: boolean;
  /** Where built-in releases are looked up by name. @default the `releases` folder next to the agent's code */
  builtinReleasesDir?: string;
  /**
   * Guard each partition's address with nftables so that only its own processes receive its traffic
   * (as root, with `nft` and cgroup2; see docs/architecture.md, Network isolation). @default true
   */
  networkIsolation?: boolean;
  /**
   * A partition's limits unless its plan says otherwise (enforced as root only).
   * @default 2 GiB of memory, every core, 1024 processes, 10 GiB of disk, 64 MiB of log per service
   */
  limits?: PartitionLimits;
  /** How often the service logs are checked for rotation. @default 1000 */
  logCheckIntervalMs?: number;
  /** How often each partition's disk usage is measured. @default 30000 */
  diskCheckIntervalMs?: number;
  /**
   * How long what a software type retains of a destroyed instance (a cluster's backups) is kept on this node,
   * in days (fractions allowed); 0 keeps nothing. @default 7
   */
  retentionDays?: number;
  /** How often expired retained sets are removed and the rest reported to the master. @default 3600000 */
  retainedSweepIntervalMs?: number;
}

export interface NodeAgentConfig {
  readonly masterUrl: string;
  readonly masterCa: string | undefined;
  readonly masterCaPin: string | undefined;
  readonly dataDir: string;
  readonly partitions: number;
  readonly registerToken: string | undefined;
  readonly nodeId: string | undefined;
  readonly networkGuid: string | undefined;
  readonly ipPrefix: string | undefined;
  readonly portBase: number;
  readonly portsPerPartition: number;
  readonly reprocessIntervalMs: number;
  readonly partitionUsers: boolean;
  readonly builtinReleasesDir: string | undefined;
  readonly networkIsolation: boolean;
  readonly limits: Readonly<ResolvedLimits>;
  readonly logCheckIntervalMs: number;
  readonly diskCheckIntervalMs: number;
  /** 0: nothing is retained. */
  readonly retentionMs: number;
  readonly retainedSweepIntervalMs: number;
}

export function resolveNodeAgentConfig(options: NodeAgentOptions): NodeAgentConfig {
  if (!/^https?:\/\/[^\s]+$/.test(options.masterUrl))
    throw badRequest('--master', `'${options.masterUrl}' is not an http(s) URL`);
  if (options.masterCa !== undefined && options.masterCaPin !== undefined)
    throw badRequest('--ca-pin', 'give --ca-file or --ca-pin, not both');
  const partitions = options.partitions ?? 10;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 250)
    throw badRequest('--partitions', 'must be an integer from 1 to 250');
  if (options.ipPrefix !== undefined && !/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(options.ipPrefix))
    throw badRequest('--ip-prefix', `'${options.ipPrefix}' is not three octets like 127.20.0`);
  const portBase = options.portBase ?? 20000;
  const portsPerPartition = options.portsPerPartition ?? 50;
  if (!Number.isInteger(portBase) || !Number.isInteger(portsPerPartition) || portsPerPartition < 1)
    throw badRequest('--port-base', 'must be an integer port number');
  if (portBase < 1024 || portBase + partitions * portsPerPartition > 65535)
    throw badRequest('--port-base', 'the port ranges of all partitions must fit between 1024 and 65535');
  const isRoot = process.getuid?.() === 0;
  return Object.freeze({
    masterUrl: options.masterUrl.replace(/\/+$/, ''),
    masterCa: options.masterCa,
    masterCaPin: options.masterCaPin,
    dataDir: resolve(options.dataDir),
    partitions,
    registerToken: options.registerToken,
    nodeId: options.nodeId,
    networkGuid: options.networkGuid,
    ipPrefix: options.ipPrefix,
    portBase,
    portsPerPartition,
    reprocessIntervalMs: options.reprocessIntervalMs ?? 300_000,
    partitionUsers: (options.partitionUsers ?? true) && isRoot,
    builtinReleasesDir: options.builtinReleasesDir === undefined ? undefined : resolve(options.builtinReleasesDir),
    networkIsolation: options.networkIsolation ?? true,
    limits: Object.freeze(resolveLimits(defaultLimits(), options.limits, '--limits')),
    logCheckIntervalMs: interval(options.logCheckIntervalMs, 1000, 'logCheckIntervalMs'),
    diskCheckIntervalMs: interval(options.diskCheckIntervalMs, 30_000, 'diskCheckIntervalMs'),
    retentionMs: Math.round(retentionDays(options.retentionDays) * 86_400_000),
    retainedSweepIntervalMs: interval(options.retainedSweepIntervalMs, 3_600_000, 'retainedSweepIntervalMs'),
  });
}

function interval(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 50)
    throw badRequest(field, `${value} must be an integer of at least 50 (ms)`);
  return value;
}

function retentionDays(value: number | undefined): number {
  if (value === undefined) return 7;
  if (!Number.isFinite(value) || value < 0 || value > 365)
    throw badRequest('--retention-days', `${value} must be a number of days from 0 (keep nothing) to 365`);
  return value;
}
