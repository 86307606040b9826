/**
 * The firewall against the real kernel: real nftables tables, real cgroup2
 * groups, real listener processes placed in them. Each attack is what a
 * tenant's process can do on a shared loopback, and each would succeed
 * without the table.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startListener, tcpAnswer, tcpAnswerFromGroup, udpAnswer, type Listener } from '../../testing/socket-probe.js';
import { CGROUP2_MOUNT, partitionCgroup2Path } from './partition-cgroup.js';
import { firewallUnavailableReason, PartitionFirewall, runNft } from './partition-firewall.js';
import { firewallRuleset, firewallTableName, type FirewalledPartition } from './partition-firewall-rules.js';

const unavailable = await firewallUnavailableReason(CGROUP2_MOUNT);
const mustRun = process.env.CI === 'true';

const tag = randomBytes(3).toString('hex');
const prefix = `127.93.${randomBytes(1)[0]! % 250}`;
const table = firewallTableName(prefix);
const partitions: FirewalledPartition[] = ['p0', 'p1'].map((id, i) => ({
  partitionId: id,
  ip: `${prefix}.${i + 1}`,
  cgroup: partitionCgroup2Path(tag, id),
}));
const [P0, P1] = partitions as [FirewalledPartition, FirewalledPartition];
const group = (p: FirewalledPartition): string => join(CGROUP2_MOUNT, p.cgroup);
const PORT = 29_000 + (randomBytes(2).readUInt16BE(0) % 900);

describe('the rules (pure)', () => {
  it('guards each address with its own group, three levels down, and replaces the table in one transaction', () => {
    const script = firewallRuleset({ table, owner: `hox node ${tag}`, cgroupMount: 'unified', partitions });
    expect(script.split('\n').slice(0, 3)).toEqual([
      `table inet ${table}`,
      `delete table inet ${table}`,
      `table inet ${table} {`,
    ]);
    expect(script).toContain(`ip daddr vmap { ${P0.ip} : goto p0, ${P1.ip} : goto p1 }`);
    expect(script).toContain(`socket cgroupv2 level 3 "unified/hox/${tag}/p1" accept`);
    expect(script).toContain('socket cgroupv2 level 0 "unified" reject with tcp reset');
  });

  it('refuses what cannot be written into a script', () => {
    const bad =
      (patch: Partial<FirewalledPartition>): (() => string) =>
      () =>
        firewallRuleset({ table, owner: 'x', cgroupMount: 'unified', partitions: [{ ...P0, ...patch }] });
    expect(bad({ ip: '127.0.0.1; flush ruleset' })).toThrow(/not an IPv4 address/);
    expect(bad({ cgroup: 'hox/../../x' })).toThrow(/cgroup/);
    expect(bad({ cgroup: 'hox/a" accept' })).toThrow(/cgroup/);
    expect(bad({ partitionId: 'input' })).toThrow(/partition id/);
  });
});

describe.skipIf(unavailable !== undefined && !mustRun)('the firewall on this machine (root, nftables, cgroup2)', () => {
  const firewall = new PartitionFirewall({ table, owner: `hox node ${tag}` });
  const listeners: Listener[] = [];

  async function listen(options: Parameters<typeof startListener>[0]): Promise<Listener> {
    const l = await startListener(options);
    listeners.push(l);
    return l;
  }

  beforeAll(async () => {
    expect(unavailable).toBeUndefined();
    expect(await firewall.apply(partitions)).toEqual({ enforcing: true, table, partitions: 2 });
  });
  afterEach(async () => {
    while (listeners.length > 0) await listeners.pop()!.stop();
  });
  afterAll(async () => {
    await firewall.remove();
    for (const p of partitions) if (existsSync(group(p))) rmdirSync(group(p));
    if (existsSync(join(CGROUP2_MOUNT, 'hox', tag))) rmdirSync(join(CGROUP2_MOUNT, 'hox', tag));
  });

  it("delivers a partition's traffic to its own listener, accepted connections and all", async () => {
    await listen({ protocol: 'tcp', host: P1.ip, port: PORT, answer: 'p1 itself', cgroupDir: group(P1) });
    // Connected from the agent's own group (the root), as promises are.
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ answer: 'p1 itself' });
  });

  it("refuses a connection to another partition's listener on the address (the squatter never sees it)", async () => {
    await listen({ protocol: 'tcp', host: P1.ip, port: PORT, answer: 'squatter', cgroupDir: group(P0) });
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
  });

  it('refuses it to a listener on every address (0.0.0.0 and dual-stack ::), which still answers elsewhere', async () => {
    await listen({ protocol: 'tcp', host: '0.0.0.0', port: PORT, answer: 'squatter', cgroupDir: group(P0) });
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
    expect(await tcpAnswer('127.0.0.1', PORT)).toEqual({ answer: 'squatter' });
    await listeners.pop()!.stop();
    await listen({ protocol: 'tcp', host: '::', port: PORT, answer: 'squatter', cgroupDir: group(P0) });
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
    expect(await tcpAnswer('127.0.0.1', PORT)).toEqual({ answer: 'squatter' });
  });

  it("refuses it to a listener outside every partition's group (root's)", async () => {
    await listen({ protocol: 'tcp', host: P1.ip, port: PORT, answer: 'root', cgroupDir: CGROUP2_MOUNT });
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
  });

  it("delivers datagrams only to the partition's own UDP socket", async () => {
    await listen({ protocol: 'udp', host: '0.0.0.0', port: PORT, answer: 'squatter', cgroupDir: group(P0) });
    expect(await udpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
    await listeners.pop()!.stop();
    await listen({ protocol: 'udp', host: P1.ip, port: PORT, answer: 'p1 itself', cgroupDir: group(P1) });
    expect(await udpAnswer(P1.ip, PORT)).toEqual({ answer: 'p1 itself' });
  });

  it("lets partitions reach each other's services from their own address, but no one else use that address", async () => {
    await listen({ protocol: 'tcp', host: P1.ip, port: PORT, answer: 'p1 itself', cgroupDir: group(P1) });
    expect(await tcpAnswerFromGroup(group(P0), P1.ip, PORT, P0.ip)).toEqual({ answer: 'p1 itself' });
    // The answer comes back to P0's address, to a socket outside P0's group: posing as P0 gets nowhere.
    expect(await tcpAnswerFromGroup(group(P1), P1.ip, PORT, P0.ip, 1500)).toEqual({ error: 'timeout' });
    expect(await tcpAnswer(P1.ip, PORT, { localAddress: P0.ip, timeoutMs: 1500 })).toEqual({ error: 'timeout' });
  });

  it('needs the rules reloaded when a group was replaced (rules name a group by id), and refresh() does it', async () => {
    rmdirSync(group(P1));
    mkdirSync(group(P1));
    await listen({ protocol: 'tcp', host: P1.ip, port: PORT, answer: 'p1 again', cgroupDir: group(P1) });
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ error: 'refused' });
    expect(await firewall.refresh()).toBe(true);
    expect(await tcpAnswer(P1.ip, PORT)).toEqual({ answer: 'p1 again' });
    expect(await firewall.refresh()).toBe(false);
  });

  it('applying again replaces the table (one input chain, one chain per partition), other tables untouched', async () => {
    const other = `hox_test_other_${tag}`;
    await runNft(`table inet ${other} {\n  chain c {\n  }\n}\n`);
    try {
      await firewall.apply(partitions);
      await firewall.apply(partitions);
      const listing = await runNft(`list table inet ${table}\n`);
      expect(listing.match(/chain input/g)).toHaveLength(1);
      expect(listing.match(/chain p1 /g)).toHaveLength(1);
      expect(await runNft(`list tables\n`)).toContain(other);
    } finally {
      await runNft(`delete table inet ${other}\n`);
    }
  });

  it('remove() leaves a table that another owner took over', async () => {
    const taken = new PartitionFirewall({ table, owner: 'hox node ffffff' });
    await taken.apply(partitions);
    await firewall.remove();
    expect(await runNft(`list tables\n`)).toContain(table);
    await taken.remove();
    expect(await runNft(`list tables\n`)).not.toContain(table);
  });
});
