import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startListener } from '../../testing/socket-probe.js';
import { CGROUP2_MOUNT } from './partition-cgroup.js';
import { findSocketHolders, listBoundSockets, parseProcNet } from './squatter-sockets.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (local: string, remote: string, state: string, uid: number, inode: number): string =>
  `   0: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000 ${uid} 0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

describe.runIf(endianness() === 'LE')("the kernel's socket tables (as printed on this little-endian machine)", () => {
  it('reads TCP listeners only, with address, port, uid and inode', () => {
    const text =
      HEADER +
      row('0402017F:4E35', '00000000:0000', '0A', 1003, 5001) + // 127.1.2.4:20021, listening
      row('0100007F:87AD', '0100007F:9E46', '01', 0, 5002) + // established: not a listener
      row('00000000:4E36', '00000000:0000', '0A', 0, 5003); // 0.0.0.0:20022
    expect(parseProcNet(text, 'tcp', 4)).toEqual([
      { protocol: 'tcp', address: '127.1.2.4', wildcard: false, port: 20021, uid: 1003, inode: 5001 },
      { protocol: 'tcp', address: '0.0.0.0', wildcard: true, port: 20022, uid: 0, inode: 5003 },
    ]);
  });

  it('reads IPv6 tables: the wildcard, IPv4-mapped addresses as IPv4, others as IPv6; UDP in any state', () => {
    const any6 = '00000000000000000000000000000000';
    const mapped = '0000000000000000FFFF00000402017F'; // ::ffff:127.1.2.4
    const loop6 = '00000000000000000000000001000000'; // ::1
    const text =
      HEADER +
      row(`${any6}:4E35`, `${any6}:0000`, '07', 1002, 6001) +
      row(`${mapped}:4E36`, `${any6}:0000`, '07', 1002, 6002) +
      row(`${loop6}:4E37`, `${any6}:0000`, '01', 0, 6003);
    expect(parseProcNet(text, 'udp', 6).map((s) => [s.address, s.wildcard, s.port])).toEqual([
      ['::', true, 20021],
      ['127.1.2.4', false, 20022],
      ['0:0:0:0:0:0:0:1', false, 20023],
    ]);
  });

  it('skips malformed lines', () => {
    expect(parseProcNet(`${HEADER}garbage\n   1: nothing\n`, 'tcp', 4)).toEqual([]);
  });
});

describe.skipIf(process.getuid?.() !== 0 && process.env.CI !== 'true')('on this machine (root)', () => {
  it("finds a real listener, its user, the process holding it and that process's cgroup2 group", async () => {
    const group = `hox/${randomBytes(3).toString('hex')}/p9`;
    const dir = join(CGROUP2_MOUNT, group);
    mkdirSync(dir, { recursive: true });
    const port = 30_000 + (randomBytes(2).readUInt16BE(0) % 900);
    const listener = await startListener({
      protocol: 'tcp',
      host: '127.93.250.9',
      port,
      answer: 'x',
      cgroupDir: dir,
      uid: 65534,
      gid: 65534,
    });
    try {
      const sockets = (await listBoundSockets()).filter((s) => s.address === '127.93.250.9' && s.port === port);
      expect(sockets).toEqual([expect.objectContaining({ protocol: 'tcp', uid: 65534, wildcard: false })]);
      const holders = findSocketHolders(new Set([sockets[0]!.inode]));
      expect(holders.get(sockets[0]!.inode)).toEqual({ pid: listener.pid, cgroup: group });
    } finally {
      await listener.stop();
      rmdirSync(dir);
      if (existsSync(join(dir, '..'))) rmdirSync(join(dir, '..'));
    }
  });
});
