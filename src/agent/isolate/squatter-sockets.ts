/**
 * The sockets that can receive traffic on this machine, read from the
 * kernel's tables (`/proc/net/{tcp,tcp6,udp,udp6}`), and who holds them
 * (`/proc/<pid>/fd` links name the socket's inode; `/proc/<pid>/cgroup`
 * names the holder's cgroup2 group). A snapshot: a socket may close, or its
 * holder exit, between two reads; callers treat a missing holder as unknown.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { isErrno } from '../supervise/pid-record.js';

/** A socket bound to a local address that traffic from elsewhere can reach. */
export interface BoundSocket {
  protocol: 'tcp' | 'udp';
  /** Dotted IPv4 (IPv4-mapped IPv6 addresses too), `0.0.0.0` or `::` for any address, else IPv6 text. */
  address: string;
  /** Bound to every address (`0.0.0.0`, or `::`, which also receives IPv4 unless IPV6_V6ONLY). */
  wildcard: boolean;
  port: number;
  /** The uid the socket was created with (the kernel's table says so, whoever holds it now). */
  uid: number;
  inode: number;
}

/** Who holds a socket: one process holding it (a fork shares it), and that process's cgroup2 group. */
export interface SocketHolder {
  pid: number;
  /** Relative to the cgroup2 root (`hox/a1b2c3/p1`), `''` for the root; undefined when unreadable. */
  cgroup: string | undefined;
}

const TCP_LISTEN = '0A';
const TABLES = [
  ['tcp', 'tcp', 4],
  ['tcp6', 'tcp', 6],
  ['udp', 'udp', 4],
  ['udp6', 'udp', 6],
] as const;

/** The kernel prints each 32-bit word of an address as a host-order integer. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** One printed word → its 4 bytes in network order. */
function wordBytes(hex: string): Buffer {
  const bytes = Buffer.from(hex, 'hex');
  return LITTLE_ENDIAN ? bytes.reverse() : bytes;
}

/** `0100007F` (on a little-endian machine) → `127.0.0.1`. */
function ipv4FromHex(hex: string): string {
  return [...wordBytes(hex)].join('.');
}

/** 32 hex digits, four 32-bit words each in host order → IPv6 text, or dotted IPv4 when IPv4-mapped. */
function ipv6FromHex(hex: string): string {
  const bytes = Buffer.concat([0, 1, 2, 3].map((word) => wordBytes(hex.slice(word * 8, word * 8 + 8))));
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return [bytes[12], bytes[13], bytes[14], bytes[15]].join('.');
  if (bytes.every((b) => b === 0)) return '::';
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * Parses one of `/proc/net/{tcp,tcp6,udp,udp6}`: TCP listeners, and UDP
 * sockets with a local port (a UDP socket receives whatever is sent to it).
 * Pure; malformed lines are skipped.
 */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', family: 4 | 6): BoundSocket[] {
  const out: BoundSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, state, uid, inode] = [fields[1], fields[3], fields[7], fields[9]];
    if (local === undefined || state === undefined || uid === undefined || inode === undefined) continue;
    if (protocol === 'tcp' && state !== TCP_LISTEN) continue;
    const match = (family === 4 ? /^([0-9A-F]{8}):([0-9A-F]{4})$/ : /^([0-9A-F]{32}):([0-9A-F]{4})$/).exec(local);
    if (match === null) continue;
    const address = family === 4 ? ipv4FromHex(match[1]!) : ipv6FromHex(match[1]!);
    const port = parseInt(match[2]!, 16);
    if (port === 0) continue;
    out.push({
      protocol,
      address,
      wildcard: address === '0.0.0.0' || address === '::',
      port,
      uid: Number(uid),
      inode: Number(inode),
    });
  }
  return out;
}

/** Every TCP listener and bound UDP socket of this network namespace. */
export async function listBoundSockets(procDir = '/proc'): Promise<BoundSocket[]> {
  const all: BoundSocket[] = [];
  for (const [file, protocol, family] of TABLES) {
    let text: string;
    try {
      text = await readFile(join(procDir, 'net', file), 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue; // no IPv6 on this machine
      throw error;
    }
    all.push(...parseProcNet(text, protocol, family));
  }
  return all;
}

/**
 * Finds a holder for each of `inodes` by reading every process's descriptors
 * (root reads them all). Synchronous on purpose: thousands of tiny reads that
 * would each cost a round trip through the thread pool; bounded by what
 * /proc lists, and stops early once every inode is found.
 */
export function findSocketHolders(inodes: ReadonlySet<number>, procDir = '/proc'): Map<number, SocketHolder> {
  const found = new Map<number, SocketHolder>();
  if (inodes.size === 0) return found;
  for (const entry of readdirSync(procDir)) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(join(procDir, entry, 'fd'));
    } catch {
      continue; // exited, or not ours to read
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join(procDir, entry, 'fd', fd));
      } catch {
        continue;
      }
      const match = /^socket:\[([0-9]+)\]$/.exec(target);
      if (match === null) continue;
      const inode = Number(match[1]);
      if (!inodes.has(inode) || found.has(inode)) continue;
      found.set(inode, { pid: Number(entry), cgroup: readCgroup2(procDir, entry) });
    }
    if (found.size === inodes.size) break;
  }
  return found;
}

/** The process's cgroup2 group (the `0::` line), relative to the root. */
function readCgroup2(procDir: string, pid: string): string | undefined {
  try {
    const line = readFileSync(join(procDir, pid, 'cgroup'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line === undefined ? undefined : line.slice('0::/'.length);
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return undefined;
    throw error;
  }
}

/** Names of users by uid, from /etc/passwd (read once per call). */
export function userNames(): (uid: number) => string | undefined {
  let names: Map<number, string>;
  try {
    names = new Map(
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .map((line) => line.split(':'))
        .filter((f) => f.length > 2)
        .map((f) => [Number(f[2]), f[0]!]),
    );
  } catch {
    names = new Map();
  }
  return (uid) => names.get(uid);
}
