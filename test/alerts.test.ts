/**
 * Alerts (issue 16: from signal to action) on both stores: only the platform's monitor (an hyper_monitor instance
 * of the admin's) reads /metrics and reports alerts, for itself; the master opens, updates and resolves them from
 * each report, resolves their resources to trees, and shows a user only the alerts on its own trees.
 */
import { describe, expect, it } from 'vitest';
import type { RequestOf } from '../src/client/master-client.js';
import { etaText } from '../src/cli/commands/alerts-command.js';
import { addTestNode } from '../src/testing/test-master.js';
import { expectError, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

type Alert = RequestOf<'reportAlerts'>['alerts'][number];

const MONITOR = 'hyper_monitor';
const HOUR = 3_600_000;

function diskAlert(partition: string, etaMs: number): Alert {
  return {
    key: `disk-full:node=n1,partition=${partition}`,
    rule: 'disk-full',
    severity: 'warning',
    resource: { node: 'n1', partition },
    summary: `disk quota of n1 partition ${partition} forecast to run out`,
    eta_ms: etaMs,
    eta_earliest_ms: etaMs - HOUR,
    eta_latest_ms: etaMs + HOUR,
    evidence: { model: 'holt', samples: 120, current: 900, limit: 1000 },
  };
}

const fsAlert: Alert = {
  key: 'filesystem-full:node=n1,path=/srv',
  rule: 'filesystem-full',
  severity: 'critical',
  resource: { node: 'n1', path: '/srv' },
  summary: 'filesystem space of n1 /srv forecast to run out in 40 min',
  eta_ms: null,
  eta_earliest_ms: null,
  eta_latest_ms: null,
  evidence: { model: 'holt-winters' },
};

async function scrapeStatus(url: string, token: string): Promise<number> {
  return (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status;
}

describeEachStore('alerts', (env) => {
  it("come from the admin's monitor only, open, update and resolve, and a user sees its own trees'", async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 4, releases: [RELEASE, MONITOR] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const { token: bobToken } = await m.admin.call('createUser', { name: 'bob' });
    const bob = m.admin.withToken(bobToken);

    const monitor = await request(m.admin, 'monitor', { software_release_uri: MONITOR });
    const shop = await request(alice, 'shop');
    const aliceMonitor = await request(alice, 'my-monitor', { software_release_uri: MONITOR });
    // Each instance's token, as its node's agent holds it (a new one replaces the old).
    const tokenOf = async (guid: string) => (await n1.client.call('issueInstanceToken', { instance_guid: guid })).token;
    const monitorToken = await tokenOf(monitor.instance_guid);
    const aliceMonitorToken = await tokenOf(aliceMonitor.instance_guid);
    const shopToken = await tokenOf(shop.instance_guid);
    const asMonitorNow = m.admin.withToken(monitorToken);
    const asAliceMonitor = m.admin.withToken(aliceMonitorToken);
    const asShop = m.admin.withToken(shopToken);

    // /metrics: the admin's monitor reads it with its instance token; a user's hyper_monitor or another instance not.
    expect(await scrapeStatus(m.url, monitorToken)).toBe(200);
    expect(await scrapeStatus(m.url, aliceMonitorToken)).toBe(403);
    expect(await scrapeStatus(m.url, shopToken)).toBe(403);
    expect(await scrapeStatus(m.url, aliceToken)).toBe(403);

    // Reporting: the admin's monitor, for itself.
    const etaMs = Date.now() + 5 * HOUR;
    const first = await asMonitorNow.call('reportAlerts', {
      instance_guid: monitor.instance_guid,
      alerts: [
        diskAlert(shop.compute_partition_id, etaMs),
        fsAlert,
        { ...fsAlert, key: 'filesystem-full:node=ghost,path=/', resource: { node: 'ghost', path: '/' } },
      ],
    });
    expect(first).toEqual({
      opened: 2,
      updated: 0,
      resolved: 0,
      unknown_resources: ['filesystem-full:node=ghost,path=/'],
    });
    await expectError(
      asAliceMonitor.call('reportAlerts', { instance_guid: aliceMonitor.instance_guid, alerts: [] }),
      'HOX_FORBIDDEN',
      /platform's monitor only/,
    );
    await expectError(
      asShop.call('reportAlerts', { instance_guid: shop.instance_guid, alerts: [] }),
      'HOX_FORBIDDEN',
      /platform's monitor only/,
    );
    await expectError(
      asMonitorNow.call('reportAlerts', { instance_guid: aliceMonitor.instance_guid, alerts: [] }),
      'HOX_FORBIDDEN',
      /its own alerts only/,
    );
    await expectError(
      asMonitorNow.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts: [fsAlert, fsAlert] }),
      'HOX_BAD_REQUEST',
      /reported twice/,
    );
    await expectError(
      alice.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts: [] }),
      'HOX_FORBIDDEN',
    );

    // The admin sees both; the partition's alert names alice's tree; alice sees hers only (not the node's); bob none.
    const all = (await m.admin.call('listAlerts', {})).result_list;
    expect(all.map((a) => a.rule).sort()).toEqual(['disk-full', 'filesystem-full']);
    const disk = all.find((a) => a.rule === 'disk-full')!;
    expect(disk).toMatchObject({
      state: 'open',
      severity: 'warning',
      node: 'n1',
      partition: shop.compute_partition_id,
      tree: 'shop',
      instance: 'shop',
      eta: new Date(etaMs).toISOString(),
      eta_earliest: new Date(etaMs - HOUR).toISOString(),
      evidence: { model: 'holt', samples: 120, current: 900, limit: 1000 },
      resolved_at: null,
    });
    expect((await alice.call('listAlerts', {})).result_list.map((a) => a.id)).toEqual([disk.id]);
    expect((await bob.call('listAlerts', {})).result_list).toEqual([]);

    // The next report: the disk alert updated (same id, now critical), the filesystem's resolved.
    const second = await asMonitorNow.call('reportAlerts', {
      instance_guid: monitor.instance_guid,
      alerts: [{ ...diskAlert(shop.compute_partition_id, etaMs - 4 * HOUR), severity: 'critical' }],
    });
    expect(second).toMatchObject({ opened: 0, updated: 1, resolved: 1 });
    const open = (await m.admin.call('listAlerts', {})).result_list;
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ id: disk.id, severity: 'critical', opened_at: disk.opened_at });
    const withResolved = (await m.admin.call('listAlerts', { all: true })).result_list;
    expect(withResolved.find((a) => a.rule === 'filesystem-full')).toMatchObject({ state: 'resolved' });
    expect(withResolved.find((a) => a.rule === 'filesystem-full')!.resolved_at).not.toBeNull();

    // A partition that changes tenant: the alert about the old one resolves, a new one opens (no action carried).
    const used = new Set([monitor, shop, aliceMonitor].map((d) => d.compute_partition_id));
    const free = ['p0', 'p1', 'p2', 'p3'].find((pid) => !used.has(pid))!;
    const onFree = { ...diskAlert(free, etaMs), key: 'disk-full:free' };
    const report = (alerts: Alert[]) =>
      asMonitorNow.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts });
    const kept = [{ ...diskAlert(shop.compute_partition_id, etaMs - 4 * HOUR), severity: 'critical' as const }];
    expect(await report([...kept, onFree])).toMatchObject({ opened: 1, updated: 1, resolved: 0 });
    const before = (await m.admin.call('listAlerts', {})).result_list.find((a) => a.partition === free)!;
    expect(before).toMatchObject({ tree: null, instance: null });
    const late = await request(alice, 'late');
    expect(late.compute_partition_id).toBe(free);
    expect(await report([...kept, onFree])).toMatchObject({ opened: 1, updated: 1, resolved: 1 });
    const after = (await m.admin.call('listAlerts', {})).result_list.find((a) => a.partition === free)!;
    expect(after).toMatchObject({ tree: 'late', instance: 'late', action: null });
    expect(after.id).not.toBe(before.id);
    expect((await m.admin.call('listAlerts', { all: true })).result_list.find((a) => a.id === before.id)).toMatchObject(
      {
        state: 'resolved',
      },
    );

    // An empty report resolves everything of this monitor's.
    expect(await asMonitorNow.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts: [] })).toMatchObject(
      { resolved: 2 },
    );
    expect((await m.admin.call('listAlerts', {})).result_list).toEqual([]);
  });
});

describeEachStore('remediation: move-primary', (env) => {
  it('a hyper_db primary whose disk will fill hands over the primary role, once an hour per cluster', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 6, releases: ['hyper_db', MONITOR] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const monitor = await request(m.admin, 'monitor', { software_release_uri: MONITOR });
    // Alice's cluster, its members requested by the root as the release does, member-1 published as primary.
    const cluster = await request(alice, 'shop-db', {
      software_release_uri: 'hyper_db',
      software_type: 'cluster',
      parameters: { members: 2 },
    });
    const tokenOf = async (guid: string) => (await n1.client.call('issueInstanceToken', { instance_guid: guid })).token;
    const asRoot = m.admin.withToken(await tokenOf(cluster.instance_guid));
    const members: Record<string, { guid: string; partition: string }> = {};
    for (const title of ['member-1', 'member-2']) {
      const doc = await request(asRoot, title, { software_release_uri: 'hyper_db', software_type: 'member' });
      members[title] = { guid: doc.instance_guid, partition: doc.compute_partition_id };
    }
    await n1.client.call('publishConnectionParameters', {
      instance_guid: members['member-1']!.guid,
      connection_parameter_dict: { name: 'member-1', role: 'primary' },
    });
    await n1.client.call('publishConnectionParameters', {
      instance_guid: members['member-2']!.guid,
      connection_parameter_dict: { name: 'member-2', role: 'standby' },
    });
    const asMonitor = m.admin.withToken(await tokenOf(monitor.instance_guid));
    const report = (alerts: Alert[]) =>
      asMonitor.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts });
    const rootParameters = async () => {
      const answer = await alice.call('getInstanceTree', { title: 'shop-db' });
      if (!('parameters' in answer)) throw new Error('not ready');
      return answer.parameters;
    };

    // The standby filling: nothing to move.
    await report([diskAlert(members['member-2']!.partition, Date.now() + HOUR)]);
    expect((await m.admin.call('listAlerts', {})).result_list[0]!.action).toBeNull();
    expect(await rootParameters()).toEqual({ members: 2 });

    // The primary filling: a switchover is requested on alice's cluster, and the alert says so.
    await report([
      diskAlert(members['member-2']!.partition, Date.now() + HOUR),
      diskAlert(members['member-1']!.partition, Date.now() + HOUR),
    ]);
    const moved = (await m.admin.call('listAlerts', {})).result_list.find((a) => a.instance === 'member-1')!;
    expect(moved.action).toMatchObject({
      policy: 'move-primary',
      done: true,
      cluster: 'shop-db',
      member: 'member-1',
      switchover: `auto-switchover-${moved.id}`,
    });
    expect(String(moved.action!['note'])).toContain('hox db switchover shop-db --to member-1');
    expect(await rootParameters()).toEqual({ members: 2, switchover: { id: `auto-switchover-${moved.id}`, to: null } });
    // Alice sees it on her tree.
    expect((await alice.call('listAlerts', {})).result_list.map((a) => a.instance).sort()).toEqual([
      'member-1',
      'member-2',
    ]);

    // member-2 became primary and fills too, within the hour: refused, said, and the parameters left alone.
    await n1.client.call('publishConnectionParameters', {
      instance_guid: members['member-2']!.guid,
      connection_parameter_dict: { name: 'member-2', role: 'primary' },
    });
    await report([
      { ...diskAlert(members['member-2']!.partition, Date.now() + HOUR), key: 'disk-full:again' },
      diskAlert(members['member-1']!.partition, Date.now() + HOUR),
    ]);
    const again = (await m.admin.call('listAlerts', {})).result_list.find(
      (a) => a.instance === 'member-2' && a.action !== null,
    );
    expect(again?.action).toMatchObject({ policy: 'move-primary', done: false });
    expect(String(again?.action?.['reason'])).toMatch(/less than an hour ago/);
    expect((await rootParameters())['switchover']).toEqual({ id: `auto-switchover-${moved.id}`, to: null });
  });
});

describeEachStore('remediation: restart-replica', (env) => {
  it('a hyper_edge replica whose memory will reach its limit is restarted, one replica at a time, once an hour', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 6, releases: ['hyper_edge', MONITOR] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const monitor = await request(m.admin, 'monitor', { software_release_uri: MONITOR });
    const release = { id: 3, artifact: 'a'.repeat(64) };
    const app = await request(alice, 'shop', {
      software_release_uri: 'hyper_edge',
      software_type: 'app',
      parameters: { release, scale: 2, memory_mib: 256 },
    });
    const tokenOf = async (guid: string) => (await n1.client.call('issueInstanceToken', { instance_guid: guid })).token;
    const asRoot = m.admin.withToken(await tokenOf(app.instance_guid));
    const partitions: Record<string, string> = {};
    for (const title of ['replica-1', 'replica-2']) {
      const doc = await request(asRoot, title, {
        software_release_uri: 'hyper_edge',
        software_type: 'replica',
        parameters: { app: 'shop', memory_mib: 256 },
      });
      partitions[title] = doc.compute_partition_id;
    }
    const asMonitor = m.admin.withToken(await tokenOf(monitor.instance_guid));
    const memoryAlert = (title: string, key = `memory-full:node=n1,partition=${partitions[title]}`): Alert => ({
      ...diskAlert(partitions[title]!, Date.now() + HOUR),
      key,
      rule: 'memory-full',
      summary: `memory limit of n1 partition ${partitions[title]} forecast to run out`,
    });
    const report = (alerts: Alert[]) =>
      asMonitor.call('reportAlerts', { instance_guid: monitor.instance_guid, alerts });
    const restartParameter = async () => {
      const answer = await alice.call('getInstanceTree', { title: 'shop' });
      if (!('parameters' in answer)) throw new Error('not ready');
      return answer.parameters['restart'] as Record<string, { id: string }> | undefined;
    };
    const actionOn = async (replica: string) =>
      [...(await m.admin.call('listAlerts', { all: true })).result_list]
        .reverse()
        .find((a) => a.instance === replica && a.action !== null)?.action;

    // replica-1 leaking: its restart is requested on alice's app, as hox app restart --replica 1 does.
    await report([memoryAlert('replica-1')]);
    const first = await actionOn('replica-1');
    expect(first).toMatchObject({ policy: 'restart-replica', done: true, app: 'shop', replica: 'replica-1' });
    expect(String(first!['restart'])).toMatch(/^auto[0-9a-f]{12}$/);
    expect(await restartParameter()).toEqual({ 'replica-1': { id: first!['restart'] } });
    expect(String(first!['note'])).toMatch(/the memory comes back if the app leaks it/);

    // replica-2 leaking within 10 minutes: not both at once.
    await report([memoryAlert('replica-1'), memoryAlert('replica-2')]);
    const second = await actionOn('replica-2');
    expect(second).toMatchObject({ policy: 'restart-replica', done: false });
    expect(String(second!['reason'])).toMatch(/replica-1 of the app was restarted less than 10 minutes ago/);
    expect(Object.keys((await restartParameter()) ?? {})).toEqual(['replica-1']);

    // replica-1's alert resolved (the restart gave the memory back), then a new one within the hour: refused.
    await report([]);
    await report([memoryAlert('replica-1', 'memory-full:again')]);
    // (Open alerts: the new one on replica-1 only; the view has no key.)
    const third = (await m.admin.call('listAlerts', {})).result_list.find((a) => a.instance === 'replica-1');
    expect(third?.action).toMatchObject({ policy: 'restart-replica', done: false });
    expect(String(third?.action?.['reason'])).toMatch(/replica-1 was restarted for its memory less than an hour ago/);

    // A stopped app: nothing restarted, said.
    await request(alice, 'shop', {
      software_release_uri: 'hyper_edge',
      software_type: 'app',
      parameters: { release, scale: 2, memory_mib: 256 },
      state: 'stopped',
    });
    await report([memoryAlert('replica-2', 'memory-full:stopped')]);
    const stopped = (await m.admin.call('listAlerts', {})).result_list.find((a) => a.instance === 'replica-2');
    expect(stopped?.action).toMatchObject({ policy: 'restart-replica', done: false, reason: 'the app is stopped' });
  });
});

describe('hox alerts', () => {
  it('says when the limit is forecast to be reached, in words', () => {
    const now = Date.parse('2026-12-03T10:00:00Z');
    expect(etaText(null, now)).toBe('-');
    expect(etaText('2026-12-03T09:00:00Z', now)).toBe('now');
    expect(etaText('2026-12-03T10:00:30Z', now)).toBe('in 30 s');
    expect(etaText('2026-12-03T10:40:00Z', now)).toBe('in 40 min');
    expect(etaText('2026-12-03T15:30:00Z', now)).toBe('in 5.5 h');
    expect(etaText('2026-12-08T10:00:00Z', now)).toBe('in 5.0 days');
  });
});
