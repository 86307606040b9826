/**
 * The node's network rules on the machine: one nftables table per node agent
 * (named after its address range, see `partition-firewall-rules.ts` for what
 * the rules uphold), loaded at start, checked at every pass, removed when the
 * agent is told to stop its services.
 *
 * `socket cgroupv2` rules hold the *id* of each partition's cgroup2 group, read
 * when the rule is added: a group removed and created again would no longer
 * match. The groups are never removed while the node lives
 * (`partition-cgroups.ts`), and {@link PartitionFirewall.refresh} still
 * compares their ids at every pass and reloads the table when one changed.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { firewallRemoval, firewallRuleset, type FirewalledPartition } from './partition-firewall-rules.js';

/** Where `nft` resolves `socket cgroupv2` paths. */
const NFT_CGROUP_BASE = '/sys/fs/cgroup';
const NFT_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const NFT_TIMEOUT_MS = 10_000;

export type FirewallStatus =
  { enforcing: true; table: string; partitions: number } | { enforcing: false; reason: string };

export interface PartitionFirewallOptions {
  /** nftables table name (family `inet`), e.g. from `firewallTableName(ipPrefix)`. */
  table: string;
  /** Says whose table it is (its comment); `remove()` deletes only a table that says so. */
  owner: string;
  /** Where the cgroup2 hierarchy is mounted. @default '/sys/fs/cgroup/unified' */
  cgroup2Mount?: string;
}

/** The `nft` executable, or undefined when it is not installed. */
export function findNft(): string | undefined {
  for (const dir of NFT_DIRS) {
    const file = join(dir, 'nft');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Why partition addresses cannot be guarded on this machine, or undefined when
 * they can: root, `nft`, and a cgroup2 hierarchy mounted from its root under
 * `/sys/fs/cgroup` (nft names groups from there, and `level` counts from the
 * hierarchy's root, which a mount of a sub-group would hide).
 */
export async function firewallUnavailableReason(cgroup2Mount: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network isolation needs root (nftables)';
  if (findNft() === undefined) return "network isolation needs the 'nft' command (Debian package nftables)";
  const mountRelative = relative(NFT_CGROUP_BASE, cgroup2Mount);
  if (mountRelative.startsWith('..'))
    return `network isolation needs the cgroup2 hierarchy under ${NFT_CGROUP_BASE}, not at ${cgroup2Mount}`;
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  const line = mounts.split('\n').find((l) => l.split(' ')[4] === cgroup2Mount && l.includes(' - cgroup2 '));
  if (line === undefined) return `network isolation needs a cgroup2 hierarchy mounted at ${cgroup2Mount}`;
  // The hierarchy's root group has id 1; a mount of a sub-group (a cgroup namespace) would shift every level.
  if (line.split(' ')[3] !== '/' || (await stat(cgroup2Mount)).ino !== 1)
    return `network isolation needs the root of the cgroup2 hierarchy at ${cgroup2Mount}, not one of its groups`;
  return undefined;
}

/**
 * @example
 * const firewall = new PartitionFirewall({ table: firewallTableName(prefix), owner: `hox node ${nodeTag}` });
 * const status = await firewall.apply(partitions.map((p) => ({ partitionId: p.partitionId, ip: p.ip,
 *   cgroup: partitionCgroup2Path(p.nodeTag, p.partitionId) })));
 */
export class PartitionFirewall {
  readonly #options: Required<PartitionFirewallOptions>;
  #partitions: readonly FirewalledPartition[] = [];
  /** The id of each partition's group when the table was loaded. */
  #loadedIds = new Map<string, number>();
  #status: FirewallStatus = { enforcing: false, reason: 'not applied yet' };

  constructor(options: PartitionFirewallOptions) {
    this.#options = { cgroup2Mount: '/sys/fs/cgroup/unified', ...options };
  }

  get status(): FirewallStatus {
    return this.#status;
  }

  /**
   * Replaces the table with the rules for `partitions` (creating their groups
   * if missing). When the machine cannot enforce, changes nothing and says why.
   * Throws when `nft` refuses the rules.
   */
  async apply(partitions: readonly FirewalledPartition[]): Promise<FirewallStatus> {
    const reason = await firewallUnavailableReason(this.#options.cgroup2Mount);
    if (reason !== undefined) {
      this.#status = { enforcing: false, reason };
      return this.#status;
    }
    this.#partitions = [...partitions];
    const ids = new Map<string, number>();
    for (const p of partitions) {
      const dir = join(this.#options.cgroup2Mount, p.cgroup);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      ids.set(p.partitionId, (await stat(dir)).ino);
    }
    await runNft(
      firewallRuleset({
        table: this.#options.table,
        owner: this.#options.owner,
        cgroupMount: relative(NFT_CGROUP_BASE, this.#options.cgroup2Mount),
        partitions,
      }),
    );
    // nft read the ids itself; if a group changed meanwhile, the next refresh() sees it.
    this.#loadedIds = ids;
    this.#status = { enforcing: true, table: this.#options.table, partitions: partitions.length };
    return this.#status;
  }

  /**
   * Reloads the table when a partition's group is not the one the rules name
   * (removed, or removed and created again). Returns whether it reloaded.
   */
  async refresh(): Promise<boolean> {
    if (!this.#status.enforcing) return false;
    for (const p of this.#partitions) {
      const id = await stat(join(this.#options.cgroup2Mount, p.cgroup)).then(
        (s) => s.ino,
        () => undefined,
      );
      if (id !== this.#loadedIds.get(p.partitionId)) {
        await this.apply(this.#partitions);
        return true;
      }
    }
    return false;
  }

  /** Deletes the table if it is still this owner's (another agent may have taken the range since). */
  async remove(): Promise<void> {
    if (findNft() === undefined || process.getuid?.() !== 0) return;
    const listing = await runNft(`list table inet ${this.#options.table}\n`).catch(() => undefined);
    if (listing?.includes(`comment "${this.#options.owner}"`) === true)
      await runNft(firewallRemoval(this.#options.table));
    this.#status = { enforcing: false, reason: 'removed' };
  }
}

/** Runs an nft script through its standard input (`nft -f -`); resolves with what nft printed. */
export function runNft(script: string): Promise<string> {
  const nft = findNft();
  if (nft === undefined) return Promise.reject(new Error("'nft' not found: install the Debian package nftables"));
  return new Promise((resolve, reject) => {
    const child = execFile(
      nft,
      ['-f', '-'],
      { timeout: NFT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout);
        else reject(new Error(`nft refused the rules: ${stderr.trim() || error.message}`, { cause: error }));
      },
    );
    child.stdin?.end(script);
  });
}
