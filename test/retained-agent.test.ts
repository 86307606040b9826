/**
 * Retained sets through a real agent and a real master (issue 13, item 6): a software type that declares
 * `retain` has those paths moved out of its partition when its instance is destroyed, before the wipe; the
 * partition ends empty; the owner lists the set after the instance and its tree are gone, others do not; once
 * its time is up the agent's sweep removes it and the master forgets it. The agent's clock is the real one plus
 * an offset the test moves (8 days at once), so no test waits for a retention period.
 */
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import { createNodeAgent, type NodeAgent } from '../src/agent/node-agent.js';
import { resolveNodeAgentConfig } from '../src/agent/agent-config.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { testIpPrefix } from '../src/testing/worker-slot.js';
import { disposeAgent, tempDataDir, waitFor, type AgentFixture } from './support/agent-harness.js';

const RELEASE_FILES: Record<string, string> = {
  'release.json': JSON.stringify({ name: 'keeper-of-things', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `
export default {
  softwareTypes: {
    keep: {
      parameters: { type: 'object' },
      connection: { type: 'object' },
      retain: [{ path: 'keep', kind: 'things', catalog: { dir: 'items', file: 'info.json' } }],
      profile(input) {
        const script = 'mkdir -p keep/items/a && printf %s \\'{"id":"a"}\\' > keep/items/a/info.json && printf data > keep/blob && printf x > other && exec sleep 600';
        return { services: [{ name: 'main', command: ['/bin/sh', '-c', script], stopTimeoutMs: 1000 }] };
      },
    },
  },
};
`,
};

const DAY_MS = 86_400_000;

describe('retained sets through a real agent', () => {
  let m: TestMaster;
  let releaseDir: string;
  let fixture: AgentFixture | undefined;

  beforeEach(async () => {
    m = await startTestMaster();
    // Outside /tmp: partition users must read the release, and their /tmp is private.
    releaseDir = mkdtempSync(join('/var/tmp', 'hox-retain-release-'));
    for (const [name, content] of Object.entries(RELEASE_FILES))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
  });
  afterEach(async () => {
    await disposeAgent(fixture);
    fixture = undefined;
    await m.stop();
    rmSync(releaseDir, { recursive: true, force: true });
  });

  it('moves the declared path out before the wipe, lists it to its owner only, and sweeps it when expired', async () => {
    let offsetMs = 0;
    const dataDir = tempDataDir();
    const { token } = await m.admin.call('createRegistrationToken', {});
    const logs: string[] = [];
    const agent: NodeAgent = createNodeAgent(
      resolveNodeAgentConfig({
        masterUrl: m.admin.url,
        partitions: 1,
        registerToken: token,
        nodeId: 'rn1',
        ipPrefix: testIpPrefix('rn1'),
        dataDir,
      }),
      { log: (l) => logs.push(l), clock: { nowMs: () => Date.now() + offsetMs } },
    );
    await agent.start();
    fixture = { agent, dataDir, logs };
    await m.admin.call('supply', { computer_guid: 'rn1', software_release_uri: releaseDir });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const { token: bobToken } = await m.admin.call('createUser', { name: 'bob' });
    const alice = m.admin.withToken(aliceToken);
    const bob = m.admin.withToken(bobToken);
    const requestThings = (state: 'started' | 'destroyed') =>
      alice.call('requestInstance', {
        title: 'things',
        software_release_uri: releaseDir,
        software_type: 'keep',
        state,
      });
    const partition = agent.partitions[0]!;
    const doc = await waitFor('the service to write its files', async () => {
      const answer = await requestThings('started');
      return !isNotReady(answer) && existsSync(join(partition.path, 'keep', 'blob')) ? answer : undefined;
    });
    if (isNotReady(doc)) throw new Error('not ready');
    const setDir = join(dataDir, 'retained', doc.instance_guid);

    await requestThings('destroyed');
    await waitFor(
      'partition freed',
      async () => (await m.admin.call('nodeStatus', { computer_guid: 'rn1' })).free_partition_count === 1,
    );
    // The partition is empty; what was declared is in the node's root-only store, the rest is gone.
    expect(readdirSync(partition.path)).toEqual([]);
    expect(readFileSync(join(setDir, 'data', 'keep', 'blob'), 'utf8')).toBe('data');
    expect(existsSync(join(setDir, 'data', 'other'))).toBe(false);
    expect(statSync(join(dataDir, 'retained')).mode & 0o777).toBe(0o700);
    expect(statSync(setDir).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(join(setDir, 'meta.json'), 'utf8'))).toMatchObject({
      complete: true,
      instance_title: 'things',
      software_type: 'keep',
    });

    // The tree is gone; its set is listed to alice (and the admin), not to bob.
    expect((await alice.call('listTreeStatus', {})).result_list).toEqual([]);
    const [set] = (await alice.call('listRetainedSets', { title: 'things' })).result_list;
    expect(set).toMatchObject({
      instance_guid: doc.instance_guid,
      title: 'things',
      owner: 'alice',
      computer_guid: 'rn1',
      software_type: 'keep',
      path_list: [{ path: 'keep', kind: 'things', catalog: [{ id: 'a' }] }],
    });
    expect(set?.path_list[0]?.bytes).toBe('data'.length + '{"id":"a"}'.length);
    const days = (Date.parse(set?.expires_at ?? '') - Date.parse(set?.destroyed_at ?? '')) / DAY_MS;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThan(7.01);
    expect((await bob.call('listRetainedSets', {})).result_list).toEqual([]);
    expect((await m.admin.call('listRetainedSets', {})).result_list).toHaveLength(1);

    // 8 days later (the agent's clock): its next pass sweeps the set and the master forgets it.
    offsetMs = 8 * DAY_MS;
    await agent.syncNow();
    expect(existsSync(setDir)).toBe(false);
    expect(logs.join('\n')).toMatch(/retained set of instance 'things' .* expired at .*: removed/);
    expect((await m.admin.call('listRetainedSets', {})).result_list).toEqual([]);
  });
});
