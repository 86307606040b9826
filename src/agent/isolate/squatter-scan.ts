/**
 * Pure: which bound sockets squat a partition. The firewall already keeps a
 * partition's traffic from reaching them; this names them, so the tenant
 * whose service cannot bind its port, and the one whose process took it,
 * both learn why.
 *
 * A socket **squats** partition P when it is
 * - bound to P's address (any port) and not P's: created by another user
 *   than P's, or held by a process outside P's cgroup2 group; or
 * - bound to every address (`0.0.0.0`, `::`) on a port of P's range and held
 *   by *another partition of this node* (root's and the machine's own
 *   daemons, and other nodes' partitions, which use the same port numbers on
 *   their own addresses, are not this node's tenants).
 */
import type { BoundSocket, SocketHolder } from './squatter-sockets.js';

/** A partition as the squatter scan sees it. */
export interface GuardedPartition {
  partitionId: string;
  ip: string;
  portBase: number;
  portCount: number;
  /** Its unix user's uid; undefined without partition users (then only its group tells it apart). */
  uid: number | undefined;
  /** Its cgroup2 group relative to the root; undefined where processes are not placed in one. */
  cgroup: string | undefined;
}

export interface Squatter {
  /** The partition squatted. */
  victim: string;
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
  uid: number;
  /** The process holding the socket; undefined when it could not be found (it exited meanwhile, say). */
  pid: number | undefined;
  /** The partition of this node the holder belongs to, if any (the victim itself when misplaced). */
  partition: string | undefined;
  /** The victim's own user, outside the victim's group (the firewall refuses its traffic too). */
  misplaced: boolean;
}

function inGroup(cgroup: string | undefined, group: string): boolean {
  return cgroup !== undefined && (cgroup === group || cgroup.startsWith(`${group}/`));
}

/** The partition of this node a socket's holder belongs to: by group first, by user otherwise. */
function ownerPartition(
  partitions: readonly GuardedPartition[],
  socket: BoundSocket,
  holder: SocketHolder | undefined,
): GuardedPartition | undefined {
  return (
    partitions.find((p) => p.cgroup !== undefined && inGroup(holder?.cgroup, p.cgroup)) ??
    partitions.find((p) => p.uid !== undefined && p.uid === socket.uid)
  );
}

/** Sockets whose holder the scan needs: those on a partition's address or on a port of its range. */
export function socketsToExamine(
  partitions: readonly GuardedPartition[],
  sockets: readonly BoundSocket[],
): BoundSocket[] {
  const ips = new Set(partitions.map((p) => p.ip));
  return sockets.filter(
    (s) =>
      ips.has(s.address) ||
      (s.wildcard && partitions.some((p) => s.port >= p.portBase && s.port < p.portBase + p.portCount)),
  );
}

/**
 * The squatters among `sockets`, given the holders found for them (by inode).
 * A partition with neither a user nor a group cannot be told from the others:
 * nothing is reported for it.
 */
export function findSquatters(
  partitions: readonly GuardedPartition[],
  sockets: readonly BoundSocket[],
  holders: ReadonlyMap<number, SocketHolder>,
): Squatter[] {
  const found: Squatter[] = [];
  for (const socket of sockets) {
    const holder = holders.get(socket.inode);
    const owner = ownerPartition(partitions, socket, holder);
    for (const victim of partitions) {
      if (victim.uid === undefined && victim.cgroup === undefined) continue;
      const onAddress = socket.address === victim.ip;
      const onRange =
        socket.wildcard && socket.port >= victim.portBase && socket.port < victim.portBase + victim.portCount;
      if (!onAddress && !onRange) continue;
      const sameUser = victim.uid === undefined || socket.uid === victim.uid;
      // A holder not found (exited between the two reads) is judged by its user alone.
      const sameGroup = victim.cgroup === undefined || holder === undefined || inGroup(holder.cgroup, victim.cgroup);
      if (sameUser && sameGroup) continue;
      if (!onAddress && (owner === undefined || owner.partitionId === victim.partitionId)) continue;
      found.push({
        victim: victim.partitionId,
        protocol: socket.protocol,
        address: socket.address,
        port: socket.port,
        uid: socket.uid,
        pid: holder?.pid,
        partition: owner?.partitionId,
        misplaced: sameUser && !sameGroup,
      });
    }
  }
  return found;
}

function where(s: Squatter): string {
  const address = s.address.includes(':') ? `[${s.address}]` : s.address;
  return `${address}:${s.port}${s.protocol === 'udp' ? '/udp' : ''}`;
}

/**
 * What the squatted partition is told, e.g.
 * `squatter: pid 1234 (user hxa1b2c3-p3, partition p3) listens on 127.1.2.4:20051`.
 */
export function victimMessage(s: Squatter, userName: (uid: number) => string | undefined): string {
  const who = [
    `user ${userName(s.uid) ?? `uid ${s.uid}`}`,
    ...(s.partition === undefined ? [] : [`partition ${s.partition}`]),
  ];
  const holder = s.pid === undefined ? `a socket (${who.join(', ')})` : `pid ${s.pid} (${who.join(', ')})`;
  if (s.misplaced)
    return `${holder} listens on ${where(s)} outside this partition's cgroup: the firewall refuses its traffic`;
  const port = s.address === '0.0.0.0' || s.address === '::' ? ', a port of this partition' : '';
  return `squatter: ${holder} listens on ${where(s)}${port}`;
}

/** What the squatter's own partition is told (when the holder is one of this node's partitions). */
export function squatterMessage(s: Squatter): string {
  const holder = s.pid === undefined ? 'a socket of this partition' : `pid ${s.pid} of this partition`;
  return s.address === '0.0.0.0' || s.address === '::'
    ? `${holder} listens on ${where(s)}, a port of partition ${s.victim}`
    : `${holder} listens on ${where(s)}, the address of partition ${s.victim}: the firewall refuses its traffic`;
}

/** Problems per partition id: the victims' and the squatters' messages, in a stable order. */
export function squatterProblems(
  squatters: readonly Squatter[],
  userName: (uid: number) => string | undefined,
): Map<string, string[]> {
  const problems = new Map<string, string[]>();
  const add = (partitionId: string, message: string): void => {
    const list = problems.get(partitionId) ?? [];
    if (!list.includes(message)) list.push(message);
    problems.set(partitionId, list);
  };
  for (const s of squatters) {
    add(s.victim, victimMessage(s, userName));
    if (s.partition !== undefined && s.partition !== s.victim) add(s.partition, squatterMessage(s));
  }
  for (const list of problems.values()) list.sort();
  return problems;
}
