/**
 * Pure: the nftables ruleset that keeps each partition's address to its own
 * processes. What it must uphold:
 *
 * **A packet addressed to a partition's address is delivered only to a socket
 * created by a process of that partition's cgroup2 group** (or below it).
 * Anyone may connect to a partition — the agent's promises, the other
 * partitions, the master — because it is the *receiving* socket that is
 * judged, never the sender.
 *
 * How (`input` hook, where loopback traffic arrives after `output`; the
 * `socket` expression looks up the socket the packet is for):
 *
 * 1. `socket cgroupv2 level L "<partition's group>"` accepts when the
 *    receiving socket is a full socket created in the partition's group: its
 *    listeners, connections they accepted (an accepted socket keeps its
 *    listener's group), its own clients.
 * 2. UDP otherwise: rejected (ICMP port unreachable, what no socket gives).
 * 3. TCP with SYN set otherwise: rejected with a reset. A SYN is looked up to
 *    the listener, a SYN-ACK to the connecting client, both full sockets:
 *    another partition's (or root's) listener on the address never sees a
 *    connection, and a process that binds the address as its *source* never
 *    gets its connection established (no impersonating a partition as a
 *    client either). With no socket at all the reset is what the kernel sends.
 * 4. Other TCP packets to a full socket that rule 1 did not accept: reset
 *    (`level 0` names the root group, the ancestor of every socket).
 *    Packets whose socket is not a full socket — the handshake's last ACK
 *    to a request socket, segments to a TIME-WAIT socket — match nothing
 *    and pass: such sockets only exist for a connection whose SYN rule 3
 *    already judged.
 *
 * Other protocols (ICMP) pass. Only partitions' addresses are guarded, not
 * their port ranges on other addresses: traffic to `127.0.0.1:<port>` is not
 * meant for a partition, other nodes on the machine use the same ranges on
 * their own addresses, and clients' ephemeral ports may fall in a range.
 *
 * The table is replaced in one `nft -f` transaction (add, delete, define):
 * never a moment without rules, and never another table touched.
 */

/** A partition as the firewall sees it. */
export interface FirewalledPartition {
  /** `p<i>`, also the name of its chain. */
  partitionId: string;
  /** Its IPv4 address. */
  ip: string;
  /** Its group, relative to the cgroup2 root: `hox/<node>/<partition>`. */
  cgroup: string;
}

export interface FirewallRulesetInput {
  /** nftables table name (family `inet`). */
  table: string;
  /** Written as the table's comment: whose table it is. */
  owner: string;
  /**
   * The cgroup2 mount relative to `/sys/fs/cgroup`, where `nft` resolves
   * cgroup paths: `unified` for `/sys/fs/cgroup/unified`, `''` for a pure
   * cgroup2 machine.
   */
  cgroupMount: string;
  partitions: readonly FirewalledPartition[];
}

const TABLE = /^[a-z][a-z0-9_]{0,63}$/;
const CHAIN = /^p[0-9]{1,3}$/;
const CGROUP_PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const OWNER = /^[A-Za-z0-9 _.:/@-]{1,120}$/;

/** Throws naming the first field that cannot be written into an nft script as is. */
function validate(input: FirewallRulesetInput): void {
  if (!TABLE.test(input.table)) throw new Error(`table '${input.table}' must match ${TABLE.source}`);
  if (!OWNER.test(input.owner)) throw new Error(`table owner '${input.owner}' must match ${OWNER.source}`);
  if (input.cgroupMount !== '' && !CGROUP_PATH.test(input.cgroupMount))
    throw new Error(`cgroup mount '${input.cgroupMount}' must match ${CGROUP_PATH.source}`);
  const ips = new Set<string>();
  for (const p of input.partitions) {
    if (!CHAIN.test(p.partitionId)) throw new Error(`partition id '${p.partitionId}' must match ${CHAIN.source}`);
    if (!isIpv4(p.ip)) throw new Error(`partition ${p.partitionId}: '${p.ip}' is not an IPv4 address`);
    if (ips.has(p.ip)) throw new Error(`partition ${p.partitionId}: address ${p.ip} is listed twice`);
    ips.add(p.ip);
    if (!CGROUP_PATH.test(p.cgroup) || p.cgroup.split('/').some((part) => part === '.' || part === '..'))
      throw new Error(`partition ${p.partitionId}: cgroup '${p.cgroup}' must match ${CGROUP_PATH.source}`);
  }
}

export function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** How deep a group is below the cgroup2 root, which is what `socket cgroupv2 level` counts. */
export function cgroupLevel(cgroup: string): number {
  return cgroup.split('/').length;
}

/** The path `nft` resolves (under `/sys/fs/cgroup`) for a group. */
function nftCgroupPath(mount: string, cgroup: string): string {
  return mount === '' ? cgroup : `${mount}/${cgroup}`;
}

/**
 * The `nft -f` script that atomically replaces `input.table` with the rules
 * for `input.partitions` (an empty list leaves an empty, harmless table).
 *
 * @example
 * firewallRuleset({ table: 'hox_net_127_30_4', owner: 'hox node n1 a1b2c3', cgroupMount: 'unified',
 *   partitions: [{ partitionId: 'p0', ip: '127.30.4.1', cgroup: 'hox/a1b2c3/p0' }] });
 */
export function firewallRuleset(input: FirewallRulesetInput): string {
  validate(input);
  const root = input.cgroupMount === '' ? '.' : input.cgroupMount;
  const lines = [
    `table inet ${input.table}`,
    `delete table inet ${input.table}`,
    `table inet ${input.table} {`,
    `  comment "${input.owner}"`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
  ];
  if (input.partitions.length > 0) {
    const entries = input.partitions.map((p) => `${p.ip} : goto ${p.partitionId}`).join(', ');
    lines.push(`    ip daddr vmap { ${entries} }`);
  }
  lines.push('  }');
  for (const p of input.partitions) {
    const group = nftCgroupPath(input.cgroupMount, p.cgroup);
    lines.push(
      `  chain ${p.partitionId} {`,
      `    socket cgroupv2 level ${cgroupLevel(p.cgroup)} "${group}" accept`,
      '    meta l4proto udp reject',
      '    tcp flags syn reject with tcp reset',
      `    meta l4proto tcp socket cgroupv2 level 0 "${root}" reject with tcp reset`,
      '  }',
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The script that deletes the table (after creating it, so that a missing table is no error). */
export function firewallRemoval(table: string): string {
  if (!TABLE.test(table)) throw new Error(`table '${table}' must match ${TABLE.source}`);
  return `table inet ${table}\ndelete table inet ${table}\n`;
}

/** The table of a node whose partitions' addresses are `<prefix>.<i+1>`: one table per address range. */
export function firewallTableName(ipPrefix: string): string {
  return `hox_net_${ipPrefix.replaceAll('.', '_')}`;
}
