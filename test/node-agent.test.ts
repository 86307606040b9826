/**
 * The node agent against a real master: real partitions (directories, and
 * unix users when run as root, as in CI), real processes, real HTTP.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import type { InstanceDocumentBody } from '../src/protocol/schemas.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import {
  disposeAgent,
  isAlive,
  processUid,
  processesIn,
  startAgent,
  waitFor,
  type AgentFixture,
} from './support/agent-harness.js';

const isRoot = process.getuid?.() === 0;

describe('node agent', () => {
  let m: TestMaster;
  const agents: AgentFixture[] = [];

  beforeEach(async () => {
    m = await startTestMaster();
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
  });

  async function agent(
    nodeId: string,
    partitions = 3,
    extra: { ipPrefix?: string; portBase?: number } = {},
  ): Promise<AgentFixture> {
    const a = await startAgent(m.admin, { nodeId, partitions, ...extra });
    agents.push(a);
    return a;
  }

  /** Requests and waits until the named connection parameter is published. */
  async function requestUntilPublished(
    title: string,
    key: string,
    extra: { software_type?: string; parameters?: Record<string, unknown>; shared?: boolean } = {},
  ): Promise<InstanceDocumentBody> {
    return waitFor(`${title} to publish ${key}`, async () => {
      const answer = await m.admin.call('requestInstance', {
        title,
        software_release_uri: 'demo',
        software_type: extra.software_type ?? 'default',
        parameters: extra.parameters ?? {},
        shared: extra.shared ?? false,
      });
      if (isNotReady(answer)) return undefined;
      return typeof answer.connection_parameters[key] === 'string' ? answer : undefined;
    });
  }

  async function treeInstance(title: string) {
    const trees = (await m.admin.call('listTreeStatus', { title })).result_list;
    return trees[0]?.instance_list.find((i) => i.title === title);
  }

  it('registers once, formats its partitions and restarts without registering again', async () => {
    const a = await agent('n1', 3, { ipPrefix: '127.77.1' });
    const nodes = (await m.admin.call('listNodes', {})).result_list;
    expect(nodes.map((n) => n.computer_guid)).toEqual(['n1']);
    expect(nodes[0]?.partition_count).toBe(3);
    const p0 = await m.admin.call('getPartition', { computer_guid: 'n1', compute_partition_id: 'p0' });
    expect(p0.ip_list).toEqual([['lo', '127.77.1.1']]);
    for (const p of a.agent.partitions) {
      const st = statSync(p.path);
      expect(st.mode & 0o777).toBe(0o750);
      if (isRoot) {
        expect(p.uid).toBeGreaterThan(0);
        expect(st.uid).toBe(p.uid);
      }
    }
    if (isRoot) expect(new Set(a.agent.partitions.map((p) => p.uid)).size).toBe(3);
    // It reports the node's own metrics at start: the master's /metrics shows its memory and its data dir's filesystem.
    await expect
      .poll(async () => {
        const answer = await fetch(`${m.url}/metrics`, { headers: { authorization: `Bearer ${m.adminToken}` } });
        return await answer.text();
      })
      .toMatch(new RegExp(`^hox_node_filesystem_size_bytes\\{node="n1",path="${a.dataDir}"\\} [1-9]`, 'm'));
    await a.agent.stop();
    // Same data dir, no registration token: it comes back as the same node.
    const again = await startAgent(m.admin, { nodeId: 'n1', dataDir: a.dataDir, partitions: 3, ipPrefix: '127.77.1' });
    agents.push(again);
    expect(again.agent.nodeId).toBe('n1');
    expect((await m.admin.call('listNodes', {})).result_list.length).toBe(1);
  });

  it('installs a release, converges an instance and publishes its URL, serving as the partition user', async () => {
    const a = await agent('n1', 2);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    const doc = await requestUntilPublished('hello', 'url', { parameters: { greeting: 'bonjour ☀' } });
    const url = doc.connection_parameters.url as string;
    await waitFor('greeting served', async () => (await (await fetch(url)).text()) === 'bonjour ☀\n');
    const software = (await m.admin.call('listSoftwareStatus', { computer_guid: 'n1' })).result_list;
    expect(software).toEqual([expect.objectContaining({ software_release_uri: 'demo', reported_state: 'available' })]);
    await waitFor('reported started', async () => (await treeInstance('hello'))?.reported_state === 'started');
    const partition = a.agent.partitions.find((p) => p.partitionId === doc.compute_partition_id)!;
    const pids = processesIn(partition.path);
    expect(pids.length).toBe(1);
    if (isRoot) expect(processUid(pids[0]!)).toBe(partition.uid);
    // A parameter change is applied in place.
    await m.admin.call('requestInstance', {
      title: 'hello',
      software_release_uri: 'demo',
      software_type: 'default',
      parameters: { greeting: 'hallo' },
    });
    await waitFor('new greeting served', async () => (await (await fetch(url)).text()) === 'hallo\n');
  });

  it('rejects parameters that fail the release schema, naming the field', async () => {
    await agent('n1', 1);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    await m.admin.call('requestInstance', {
      title: 'bad',
      software_release_uri: 'demo',
      software_type: 'default',
      parameters: { greeting: 42 },
    });
    const status = await waitFor('error reported', async () => {
      const i = await treeInstance('bad');
      return i?.access_status_message.startsWith('#error while') === true ? i : undefined;
    });
    expect(status.access_status_message).toMatch(/parameters\.greeting: must be string/);
  });

  it('requests children as the instance and converges again when the child publishes', async () => {
    await agent('n1', 3);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    const parent = await requestUntilPublished('family', 'child_url', { software_type: 'parent' });
    const childUrl = parent.connection_parameters.child_url as string;
    await waitFor('child served', async () => (await (await fetch(childUrl)).text()) === 'child of family\n');
    const tree = (await m.admin.call('listTreeStatus', { title: 'family' })).result_list[0]!;
    expect(tree.instance_list.map((i) => i.title).sort()).toEqual(['child', 'family']);
  });

  it('serves shared instances on their host and publishes their own connection parameters', async () => {
    await agent('n1', 2);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    await requestUntilPublished('front', 'url', { software_type: 'frontend' });
    const site = await requestUntilPublished('site-a', 'url', {
      software_type: 'frontend',
      shared: true,
      parameters: { greeting: 'site A here' },
    });
    const siteUrl = site.connection_parameters.url as string;
    expect(siteUrl).toContain(site.instance_guid);
    await waitFor('site served', async () => (await (await fetch(siteUrl)).text()) === 'site A here\n');
  });

  it('restarts a crashing service with backoff and reports the failing promise', async () => {
    const a = await agent('n1', 1);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    await m.admin.call('requestInstance', {
      title: 'crashy',
      software_release_uri: 'demo',
      software_type: 'crashloop',
    });
    const status = await waitFor(
      'promise failure reported',
      async () => {
        const i = await treeInstance('crashy');
        return i?.access_status_message.includes('promise http-health') === true ? i : undefined;
      },
      30_000,
    );
    expect(status.access_status_message).toMatch(/#error .*promise http-health/);
    expect(a.logs.some((l) => /service p0\/http: (restarting|exited)/.test(l))).toBe(true);
  });

  it('reports a slow-starting service started only once its promise passes', async () => {
    await agent('n1', 1);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    await m.admin.call('requestInstance', {
      title: 'slow',
      software_release_uri: 'demo',
      software_type: 'slow-start',
      parameters: { delay_ms: 1500 },
    });
    const started = await waitFor('slow reported started', async () => {
      const i = await treeInstance('slow');
      return i?.reported_state === 'started' ? i : undefined;
    });
    // When "started" is reported, the service already answers.
    const url = started.connection_parameters.url as string;
    expect((await fetch(`${url}health`)).status).toBe(200);
    expect(started.access_status_message).toBe('#access Instance correctly started');
  });

  it('destroys: stops services, wipes the partition, and the master frees it', async () => {
    const a = await agent('n1', 1);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
    const doc = await requestUntilPublished('doomed', 'url');
    const partition = a.agent.partitions[0]!;
    // Published from the plan, so possibly before the launcher (root steps, then the user's) has become the service.
    const [pid] = await waitFor('the service running', () => {
      const pids = processesIn(partition.path);
      return pids.length > 0 ? pids : undefined;
    });
    expect(pid).toBeDefined();
    // A daemon that escaped its service's process group, as the partition user, must not outlive the instance.
    let escaped: number | undefined;
    if (isRoot) {
      const daemon = spawn('sleep', ['600'], {
        uid: partition.uid!,
        gid: partition.gid!,
        detached: true,
        stdio: 'ignore',
      });
      daemon.unref();
      escaped = daemon.pid;
      expect(escaped !== undefined && isAlive(escaped)).toBe(true);
    }
    await m.admin.call('requestInstance', {
      title: 'doomed',
      software_release_uri: 'demo',
      software_type: 'default',
      state: 'destroyed',
    });
    await waitFor(
      'partition freed',
      async () => (await m.admin.call('nodeStatus', { computer_guid: 'n1' })).free_partition_count === 1,
    );
    expect(isAlive(pid!)).toBe(false);
    if (escaped !== undefined) expect(isAlive(escaped)).toBe(false);
    expect(readdirSync(partition.path)).toEqual([]);
    expect(existsSync(join(a.dataDir, 'logs', partition.partitionId))).toBe(false);
    expect((await m.admin.call('listTreeStatus', {})).result_list).toEqual([]);
    void doc;
  });

  it('runs several nodes on one machine against one master', async () => {
    await agent('n1', 1, { portBase: 21000 });
    await agent('n2', 1, { portBase: 22000 });
    for (const n of ['n1', 'n2']) await m.admin.call('supply', { computer_guid: n, software_release_uri: 'demo' });
    const one = await requestUntilPublished('one', 'url');
    const two = await requestUntilPublished('two', 'url');
    expect(new Set([one.computer_guid, two.computer_guid])).toEqual(new Set(['n1', 'n2']));
    for (const d of [one, two])
      await waitFor(
        `${d.title} served`,
        async () => (await fetch(d.connection_parameters.url as string)).status === 200,
      );
  });
});
