/**
 * Each partition's limits and usage reach `hox show` (issue 11, finding 9:
 * "reported in `hox show`"). The master side on both stores: a node reports
 * for its own instances only, the master keeps the report with its age in its
 * own clock and wakes no watcher. End to end against a real master and a real
 * agent: as root, the limits a plan sets and what its partition uses, read
 * from the cgroups and the disk, through the real CLI; without partition
 * users, what is not enforced and why.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResponseOf } from '../src/client/master-client.js';
import { isNotReady } from '../src/client/master-client.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';
import { expectError, instanceClient, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';
import { SCRIPT_RELEASE } from './support/script-release.js';
import { runHox, type HoxRun } from './support/hox-cli.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const isRoot = process.getuid?.() === 0;

type TreeInstance = ResponseOf<'listTreeStatus'>['result_list'][number]['instance_list'][number];

function reportOf(instanceGuid: string, patch: Partial<Record<string, unknown>> = {}) {
  return {
    compute_partition_id: 'p0',
    instance_guid: instanceGuid,
    limits: { memory_bytes: 64 * MiB, cpus: 0.5, pids: 40, disk_bytes: GiB, log_bytes: MiB },
    not_enforced: [] as ('memory_bytes' | 'cpus' | 'pids' | 'disk_bytes' | 'log_bytes')[],
    not_enforced_reason: null as string | null,
    usage: { memory_bytes: 12 * MiB, pids: 3, oom_kills: 0, disk_bytes: 80 * 1024 },
    age_ms: 5_000,
    disk_age_ms: 20_000 as number | null,
    ...patch,
  };
}

async function instanceStatus(client: TestMaster['admin'], title: string): Promise<TreeInstance> {
  const [tree] = (await client.call('listTreeStatus', { title })).result_list;
  const instance = tree?.instance_list.find((i) => i.title === title);
  if (instance === undefined) throw new Error(`no instance '${title}'`);
  return instance;
}

describeEachStore('partition usage reports', (env) => {
  it("keeps a node's report, answers it with its age in the master's clock, and wakes no watcher", async () => {
    let nowMs = Date.parse('2025-03-01T12:00:00.000Z');
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const doc = await request(alice, 'app', { sla_parameters: { computer_guid: 'n1' } });
    expect((await instanceStatus(alice, 'app')).partition_usage).toBeNull();

    const nodeCursor = (await n1.client.call('waitForChange', {})).cursor;
    const aliceCursor = (await alice.call('waitForChange', {})).cursor;
    const report = reportOf(doc.instance_guid, { compute_partition_id: doc.compute_partition_id });
    await n1.client.call('reportPartitionUsage', { computer_guid: 'n1', partition_usage_list: [report] });

    // Nobody is woken for it: a report every 30 s from every node must not make every watcher read again.
    expect((await n1.client.call('waitForChange', { since: nodeCursor, timeout_ms: 0 })).changed).toBe(false);
    expect((await alice.call('waitForChange', { since: aliceCursor, timeout_ms: 0 })).changed).toBe(false);

    nowMs += 7_000;
    // The owner sees it, its times in the master's clock and its age as of this answer.
    expect((await instanceStatus(alice, 'app')).partition_usage).toEqual({
      limits: report.limits,
      not_enforced: [],
      not_enforced_reason: null,
      usage: report.usage,
      measured_at: '2025-03-01T11:59:55.000Z',
      age_ms: 12_000,
      disk_measured_at: '2025-03-01T11:59:40.000Z',
      disk_age_ms: 27_000,
    });

    // The next report replaces it.
    const next = reportOf(doc.instance_guid, {
      compute_partition_id: doc.compute_partition_id,
      not_enforced: ['memory_bytes', 'cpus', 'pids'],
      not_enforced_reason: 'node agent not root',
      usage: { memory_bytes: null, pids: null, oom_kills: null, disk_bytes: null },
      age_ms: 0,
      disk_age_ms: null,
    });
    await n1.client.call('reportPartitionUsage', { computer_guid: 'n1', partition_usage_list: [next] });
    expect((await instanceStatus(alice, 'app')).partition_usage).toMatchObject({
      not_enforced: ['memory_bytes', 'cpus', 'pids'],
      not_enforced_reason: 'node agent not root',
      usage: { memory_bytes: null, pids: null, oom_kills: null, disk_bytes: null },
      measured_at: '2025-03-01T12:00:07.000Z',
      age_ms: 0,
      disk_measured_at: null,
      disk_age_ms: null,
    });
  });

  it("refuses a report about another node's instance or partition, whole, and from anyone but a node", async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 2, releases: [RELEASE] });
    const victim = await request(m.admin, 'victim', { sla_parameters: { computer_guid: 'n1' } });
    const own = await request(m.admin, 'own', { sla_parameters: { computer_guid: 'n2' } });
    const forged = reportOf(victim.instance_guid, {
      compute_partition_id: victim.compute_partition_id,
      limits: { memory_bytes: 1, cpus: 1, pids: 1, disk_bytes: 1, log_bytes: 1 },
    });
    const honest = reportOf(own.instance_guid, { compute_partition_id: own.compute_partition_id });

    // n2 writing what n1's tenant is shown, alone or behind an honest entry of its own.
    await expectError(
      n2.client.call('reportPartitionUsage', { computer_guid: 'n2', partition_usage_list: [honest, forged] }),
      'HOX_INSTANCE_NOT_FOUND',
      `instance '${victim.instance_guid}' not found on compute node 'n2'`,
    );
    await expectError(
      n2.client.call('reportPartitionUsage', { computer_guid: 'n1', partition_usage_list: [forged] }),
      'HOX_FORBIDDEN',
    );
    // Its own instance on a partition it does not have.
    const wrong = { ...honest, compute_partition_id: own.compute_partition_id === 'p0' ? 'p1' : 'p0' };
    await expectError(
      n2.client.call('reportPartitionUsage', { computer_guid: 'n2', partition_usage_list: [wrong] }),
      'HOX_BAD_REQUEST',
    );
    await expectError(
      n2.client.call('reportPartitionUsage', { computer_guid: 'n2', partition_usage_list: [honest, honest] }),
      'HOX_BAD_REQUEST',
      /reported twice/,
    );
    // Users and instances do not report usage.
    const { token: userToken } = await m.admin.call('createUser', { name: 'mallory' });
    await expectError(
      m.admin
        .withToken(userToken)
        .call('reportPartitionUsage', { computer_guid: 'n2', partition_usage_list: [honest] }),
      'HOX_FORBIDDEN',
    );
    const asInstance = await instanceClient(n2.client, own.instance_guid);
    await expectError(
      asInstance.call('reportPartitionUsage', { computer_guid: 'n2', partition_usage_list: [honest] }),
      'HOX_FORBIDDEN',
    );
    // Out-of-range values are refused by the schema.
    await expectError(
      n2.client.call('reportPartitionUsage', {
        computer_guid: 'n2',
        partition_usage_list: [{ ...honest, usage: { ...honest.usage, pids: -1 } }],
      }),
      'HOX_BAD_REQUEST',
    );

    // Nothing of the refused reports was kept, not even the honest entry sent with the forged one.
    expect((await instanceStatus(m.admin, 'victim')).partition_usage).toBeNull();
    expect((await instanceStatus(m.admin, 'own')).partition_usage).toBeNull();
    await n1.client.call('reportPartitionUsage', {
      computer_guid: 'n1',
      partition_usage_list: [reportOf(victim.instance_guid, { compute_partition_id: victim.compute_partition_id })],
    });
    expect((await instanceStatus(m.admin, 'victim')).partition_usage?.limits.memory_bytes).toBe(64 * MiB);
  });
});

// ---- through a real agent ------------------------------------------------------------------------------

/** Writes 8 MiB into the partition a little after it starts (after the convergence's own measurement), then idles. */
const SCRIPT = 'sleep 2; head -c 8388608 /dev/zero > big; exec sleep 1000';

describe('partition usage through a real agent and the CLI', () => {
  let m: TestMaster;
  let releaseDir: string;
  let home: string;
  const agents: AgentFixture[] = [];

  beforeEach(async () => {
    m = await startTestMaster();
    // Outside /tmp: partition users must read the release, and their /tmp is private.
    releaseDir = mkdtempSync(join('/var/tmp', 'hox-usage-release-'));
    for (const [name, content] of Object.entries(SCRIPT_RELEASE))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
    home = mkdtempSync(join('/var/tmp', 'hox-usage-cli-'));
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
    rmSync(releaseDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  async function agent(nodeId: string, options: { partitionUsers?: boolean } = {}): Promise<AgentFixture> {
    // Disk measured every second here (30 s by default), so its report comes within the test.
    const a = await startAgent(m.admin, { nodeId, partitions: 2, diskCheckIntervalMs: 1000, ...options });
    agents.push(a);
    await m.admin.call('supply', { computer_guid: nodeId, software_release_uri: releaseDir });
    return a;
  }

  async function run(title: string, nodeId: string, limits?: Record<string, number>): Promise<string> {
    const answer = await m.admin.call('requestInstance', {
      title,
      software_release_uri: releaseDir,
      software_type: 'run',
      parameters: { script: SCRIPT, ...(limits === undefined ? {} : { limits }) },
      sla_parameters: { computer_guid: nodeId },
    });
    if (isNotReady(answer)) throw new Error(`${title} not ready`);
    return answer.instance_guid;
  }

  const hox = (args: string[]): Promise<HoxRun> =>
    runHox(
      args,
      { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: m.url, HOX_TOKEN: m.adminToken },
      60_000,
    );

  it.skipIf(!isRoot && process.env.CI !== 'true')(
    "as root: the plan's limits and what the partition uses reach the master and `hox show`",
    async () => {
      if (!isRoot) throw new Error('enforced limits need root (CI=true: this must not be skipped)');
      await agent('usage-root');
      await run('limited', 'usage-root', { memoryBytes: 64 * MiB, pids: 40 });

      // Once the service wrote its 8 MiB, the next disk measurement (not a convergence: nothing changed for
      // the master) reports it.
      const reported = await waitFor(
        'the 8 MiB written to be reported',
        async () => {
          const usage = (await instanceStatus(m.admin, 'limited')).partition_usage;
          return usage !== null && (usage.usage.disk_bytes ?? 0) >= 8 * MiB && usage;
        },
        60_000,
      );
      expect(reported.limits).toEqual({
        memory_bytes: 64 * MiB,
        cpus: availableParallelism(),
        pids: 40,
        disk_bytes: 10 * GiB,
        log_bytes: 64 * MiB,
      });
      expect(reported.not_enforced).toEqual([]);
      expect(reported.not_enforced_reason).toBeNull();
      // Plausible: the shell, sleep and the page cache of the file are charged to the partition, under its limits.
      const { memory_bytes: memory, pids, oom_kills: oomKills, disk_bytes: disk } = reported.usage;
      expect(memory).toBeGreaterThan(0);
      expect(memory).toBeLessThanOrEqual(64 * MiB);
      expect(pids).toBeGreaterThanOrEqual(1);
      expect(pids).toBeLessThanOrEqual(40);
      expect(oomKills).toBe(0);
      expect(disk).toBeLessThan(10 * GiB);
      expect(reported.disk_age_ms).not.toBeNull();

      // Nothing moved since (the service sleeps): the disk measurements that follow, one a second, send nothing.
      await sleep(3500);
      expect((await instanceStatus(m.admin, 'limited')).partition_usage?.measured_at).toBe(reported.measured_at);

      // The same through the real CLI, as JSON and as a person reads it.
      const json = await hox(['show', 'limited', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const tree = JSON.parse(json.stdout) as { instance_list: TreeInstance[] };
      const shown = tree.instance_list.find((i) => i.title === 'limited')?.partition_usage;
      expect(shown?.limits).toMatchObject({ memory_bytes: 64 * MiB, pids: 40 });
      expect(shown?.usage.disk_bytes).toBeGreaterThanOrEqual(8 * MiB);
      expect(shown?.usage.memory_bytes).toBeGreaterThan(0);
      expect(shown?.age_ms).toBeGreaterThanOrEqual(0);
      const text = await hox(['show', 'limited']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(
        /limits: +memory [\d.]+ (?:[KM]i)?B of 64 MiB · cpu [\d.]+ cores? · processes \d+ of 40 · disk [\d.]+ MiB of 10 GiB · log 64 MiB per service \(measured \d+ s ago/,
      );
    },
    120_000,
  );

  it('without partition users: says which limits are not enforced, and why; disk is still measured', async () => {
    await agent('usage-plain', { partitionUsers: false });
    await run('plain', 'usage-plain', { memoryBytes: 64 * MiB, pids: 40 });
    const reported = await waitFor(
      'a report',
      async () => {
        const usage = (await instanceStatus(m.admin, 'plain')).partition_usage;
        return usage !== null && usage.usage.disk_bytes !== null && usage;
      },
      60_000,
    );
    expect(reported.not_enforced).toEqual(['memory_bytes', 'cpus', 'pids']);
    expect(reported.not_enforced_reason).toBe(isRoot ? 'partition users turned off' : 'node agent not root');
    expect(reported.limits).toMatchObject({ memory_bytes: 64 * MiB, pids: 40 });
    expect(reported.usage).toMatchObject({ memory_bytes: null, pids: null, oom_kills: null });
    expect(reported.usage.disk_bytes).toBeGreaterThan(0);
    const text = await hox(['show', 'plain']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /limits: +disk [\d.]+ (?:[KM]i)?B of 10 GiB · log 64 MiB per service · not enforced \((node agent not root|partition users turned off)\): memory 64 MiB, cpu [\d.]+ cores?, processes 40 \(measured \d+ s ago/,
    );
  }, 120_000);
});
