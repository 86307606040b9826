import { describe, expect, it } from 'vitest';
import {
  findSquatters,
  socketsToExamine,
  squatterProblems,
  victimMessage,
  type GuardedPartition,
} from './squatter-scan.js';
import type { BoundSocket, SocketHolder } from './squatter-sockets.js';

const partitions: GuardedPartition[] = [1, 2, 3].map((i) => ({
  partitionId: `p${i}`,
  ip: `127.1.2.${i + 1}`,
  portBase: 20000 + i * 50,
  portCount: 50,
  uid: 1000 + i,
  cgroup: `hox/a1b2c3/p${i}`,
}));
const names = (uid: number): string | undefined =>
  uid === 0 ? 'root' : uid > 1000 ? `hxa1b2c3-p${uid - 1000}` : undefined;

let inode = 100;
function socket(address: string, port: number, uid: number, protocol: 'tcp' | 'udp' = 'tcp'): BoundSocket {
  inode += 1;
  return { protocol, address, wildcard: address === '0.0.0.0' || address === '::', port, uid, inode };
}
function held(sockets: BoundSocket[], cgroups: (string | undefined)[]): Map<number, SocketHolder> {
  return new Map(sockets.map((s, i) => [s.inode, { pid: 4000 + i, cgroup: cgroups[i] }]));
}

describe('squatter scan', () => {
  it("names another partition's process on a partition's address, to the victim and to the squatter", () => {
    const sockets = [socket('127.1.2.4', 20151, 1002)];
    const squatters = findSquatters(partitions, sockets, held(sockets, ['hox/a1b2c3/p2']));
    expect(squatters).toEqual([
      expect.objectContaining({ victim: 'p3', partition: 'p2', pid: 4000, misplaced: false }),
    ]);
    const problems = squatterProblems(squatters, names);
    expect(problems.get('p3')).toEqual([
      'squatter: pid 4000 (user hxa1b2c3-p2, partition p2) listens on 127.1.2.4:20151',
    ]);
    expect(problems.get('p2')).toEqual([
      'pid 4000 of this partition listens on 127.1.2.4:20151, the address of partition p3: the firewall refuses its traffic',
    ]);
  });

  it("leaves a partition's own sockets alone, on its address (any port) or on its ports on every address", () => {
    const sockets = [
      socket('127.1.2.4', 20151, 1003),
      socket('127.1.2.4', 40000, 1003),
      socket('0.0.0.0', 20160, 1003),
    ];
    expect(findSquatters(partitions, sockets, held(sockets, Array<string>(3).fill('hox/a1b2c3/p3/web')))).toEqual([]);
  });

  it("names root's and unknown users' sockets on a partition's address, but not on its ports elsewhere", () => {
    const sockets = [socket('127.1.2.2', 20050, 0), socket('0.0.0.0', 20055, 0), socket('::', 20056, 999, 'udp')];
    const problems = squatterProblems(findSquatters(partitions, sockets, held(sockets, ['', '', ''])), names);
    expect([...problems.entries()]).toEqual([['p1', ['squatter: pid 4000 (user root) listens on 127.1.2.2:20050']]]);
  });

  it("names another partition holding one of a partition's ports on every address (IPv4 and IPv6, UDP too)", () => {
    const sockets = [socket('0.0.0.0', 20100, 1003), socket('::', 20101, 1003, 'udp')];
    const problems = squatterProblems(findSquatters(partitions, sockets, held(sockets, [undefined, undefined])), names);
    expect(problems.get('p2')).toEqual([
      'squatter: pid 4000 (user hxa1b2c3-p3, partition p3) listens on 0.0.0.0:20100, a port of this partition',
      'squatter: pid 4001 (user hxa1b2c3-p3, partition p3) listens on [::]:20101/udp, a port of this partition',
    ]);
    expect(problems.get('p3')).toEqual([
      'pid 4000 of this partition listens on 0.0.0.0:20100, a port of partition p2',
      'pid 4001 of this partition listens on [::]:20101/udp, a port of partition p2',
    ]);
  });

  it("says when a partition's own user listens from outside its group (its traffic is refused)", () => {
    const sockets = [socket('127.1.2.2', 20050, 1001)];
    const squatters = findSquatters(partitions, sockets, held(sockets, ['']));
    expect(squatters).toEqual([expect.objectContaining({ victim: 'p1', partition: 'p1', misplaced: true })]);
    expect(victimMessage(squatters[0]!, names)).toBe(
      "pid 4000 (user hxa1b2c3-p1, partition p1) listens on 127.1.2.2:20050 outside this partition's cgroup: the firewall refuses its traffic",
    );
    expect(squatterProblems(squatters, names).size).toBe(1);
  });

  it('judges a socket whose holder is gone by its user alone', () => {
    const sockets = [socket('127.1.2.2', 20050, 1001), socket('127.1.2.2', 20051, 1002)];
    const problems = squatterProblems(findSquatters(partitions, sockets, new Map()), names);
    expect(problems.get('p1')).toEqual([
      'squatter: a socket (user hxa1b2c3-p2, partition p2) listens on 127.1.2.2:20051',
    ]);
  });

  it('reports nothing for partitions that have neither a user nor a group (agent not root)', () => {
    const shared = partitions.map((p) => ({ ...p, uid: undefined, cgroup: undefined }));
    const sockets = [socket('127.1.2.2', 20050, 1000)];
    expect(findSquatters(shared, sockets, held(sockets, ['']))).toEqual([]);
  });

  it('examines only sockets on partition addresses or on partition ports on every address', () => {
    const sockets = [
      socket('127.1.2.2', 5432, 0),
      socket('0.0.0.0', 20199, 0),
      socket('0.0.0.0', 20200, 0),
      socket('127.0.0.1', 20060, 0),
    ];
    expect(socketsToExamine(partitions, sockets).map((s) => `${s.address}:${s.port}`)).toEqual([
      '127.1.2.2:5432',
      '0.0.0.0:20199',
    ]);
  });
});
