/**
 * A node's network isolation, as the agent drives it: the firewall
 * (`partition-firewall.ts`) where the machine can enforce it, and the
 * squatter watch (`squatter-watch.ts`) wherever partitions can be told apart.
 *
 * The firewall is loaded only when every partition's processes are placed in
 * its cgroup2 group: rules that judge sockets by group would otherwise refuse
 * the partitions' own services. Without it (not root, no `nft`, no cgroup2)
 * the agent runs unguarded and says so once in its log; squatters are still
 * named when partitions have their own users.
 */
import { firewallTableName, type FirewalledPartition } from './partition-firewall-rules.js';
import { PartitionFirewall, type FirewallStatus } from './partition-firewall.js';
import type { GuardedPartition } from './squatter-scan.js';
import { SquatterWatch } from './squatter-watch.js';

export interface NetworkIsolationOptions {
  /** 6 hex digits naming this node's users and groups (`PartitionLayout.nodeTag`). */
  nodeTag: string;
  /** Every partition; `cgroup` set only where its processes are placed in that group. */
  partitions: readonly GuardedPartition[];
  /** Whether to load the firewall at all. @default true */
  enforce?: boolean;
  /** Called when a partition's squatter problems change (`[]`: none left). */
  onProblemsChange: (partitionId: string, problems: readonly string[]) => void;
  log: (message: string) => void;
  /** @default DEFAULT_SQUATTER_PERIOD_MS */
  scanPeriodMs?: number;
}

export class NetworkIsolation {
  readonly #options: NetworkIsolationOptions;
  readonly #firewall: PartitionFirewall | undefined;
  readonly #watch: SquatterWatch | undefined;

  constructor(options: NetworkIsolationOptions) {
    this.#options = options;
    const [first] = options.partitions;
    this.#firewall =
      first === undefined
        ? undefined
        : new PartitionFirewall({
            table: firewallTableName(first.ip.split('.').slice(0, 3).join('.')),
            owner: `hox node ${options.nodeTag}`,
          });
    const distinguishable = options.partitions.some((p) => p.uid !== undefined || p.cgroup !== undefined);
    this.#watch = distinguishable
      ? new SquatterWatch({
          partitions: () => options.partitions,
          onChange: options.onProblemsChange,
          onError: (error) => options.log(`squatter scan failed: ${String(error)}`),
          ...(options.scanPeriodMs === undefined ? {} : { periodMs: options.scanPeriodMs }),
        })
      : undefined;
  }

  get firewall(): FirewallStatus {
    return this.#firewall?.status ?? { enforcing: false, reason: 'no partitions' };
  }

  /** Loads the firewall (throws when nft refuses the rules), then starts watching for squatters. */
  async start(): Promise<FirewallStatus> {
    const status = await this.#applyFirewall();
    if (status.enforcing)
      this.#options.log(
        `network isolation: nftables table inet ${status.table} guards the addresses of ${status.partitions} partitions`,
      );
    else this.#options.log(`network isolation off, partitions can receive each other's traffic: ${status.reason}`);
    if (this.#watch === undefined)
      this.#options.log('squatter detection off: partitions share one user and no cgroup tells them apart');
    this.#watch?.start();
    return status;
  }

  async #applyFirewall(): Promise<FirewallStatus> {
    if (this.#firewall === undefined) return this.firewall;
    if (this.#options.enforce === false) return { enforcing: false, reason: 'turned off in the configuration' };
    const placed: FirewalledPartition[] = [];
    for (const p of this.#options.partitions) {
      if (p.cgroup === undefined)
        return { enforcing: false, reason: `partition ${p.partitionId}'s processes are not placed in a cgroup2 group` };
      placed.push({ partitionId: p.partitionId, ip: p.ip, cgroup: p.cgroup });
    }
    return this.#firewall.apply(placed);
  }

  /** At every pass: reloads the rules if a group was replaced, then looks for squatters. */
  async pass(): Promise<void> {
    if (await this.#firewall?.refresh())
      this.#options.log('network isolation: a partition group changed, rules reloaded');
    await this.#watch?.scanNow();
  }

  /** A partition's squatter problems from the latest scan. */
  problems(partitionId: string): readonly string[] {
    return this.#watch?.problems(partitionId) ?? [];
  }

  /** Stops watching; with `removeRules` (the services are stopped too), deletes the table. */
  async stop(options: { removeRules: boolean }): Promise<void> {
    this.#watch?.stop();
    if (options.removeRules) await this.#firewall?.remove();
  }
}
