/**
 * Partition secrets and runtime publication, against a real master and a
 * real agent running a small third-party release (plain JavaScript written to
 * a temporary directory): its `member` service writes `.hox/publish.json`
 * when it starts, as the partition's user; the test then rewrites that file
 * as a service would, and plants what a hostile tenant would.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FormattedPartition } from '../src/agent/format/partition-formatter.js';
import { isNotReady } from '../src/client/master-client.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';

const isRoot = process.getuid?.() === 0;

const RELEASE = {
  'release.json': JSON.stringify({ name: 'runtime', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `
const member = {
  parameters: { type: 'object' },
  connection: {
    type: 'object',
    required: ['url', 'role'],
    properties: { url: { type: 'string' }, role: { type: 'string' } },
  },
  profile(input) {
    return {
      services: [{ name: 'member', command: [input.tools.node, input.softwarePath + '/member.mjs'], stopTimeoutMs: 2000 }],
      publish: {
        url: 'tcp://' + input.partition.ip + ':' + input.partition.portBase,
        role: 'unknown',
        password: input.secret('password'),
        token: input.secret('replication:token'),
      },
    };
  },
};
export default {
  softwareTypes: {
    member,
    cluster: {
      parameters: { type: 'object' },
      connection: { type: 'object' },
      profile(input) {
        const answer = input.requested.member;
        return {
          requests: [{ title: 'member', softwareReleaseUrl: input.slap_software_release_url, softwareType: 'member' }],
          publish: { member_role: answer && typeof answer.connectionParameters.role === 'string' ? answer.connectionParameters.role : 'none' },
        };
      },
    },
    'bad-secret': {
      parameters: { type: 'object' },
      connection: { type: 'object' },
      profile(input) {
        return { publish: { x: input.secret('not a valid name') } };
      },
    },
  },
};
`,
  // The service learns its role at run time and says so, atomically (temporary file, then rename).
  'member.mjs': `
import { renameSync, writeFileSync } from 'node:fs';
const dir = process.env.HOX_PARTITION_PATH + '/.hox';
writeFileSync(dir + '/publish.json.tmp', JSON.stringify({ role: 'primary' }));
renameSync(dir + '/publish.json.tmp', dir + '/publish.json');
setInterval(() => undefined, 60_000);
process.on('SIGTERM', () => process.exit(0));
`,
};

describe('partition secrets and runtime publication', () => {
  let m: TestMaster;
  const agents: AgentFixture[] = [];
  const dirs: string[] = [];
  let url: string;

  beforeEach(async () => {
    m = await startTestMaster();
    url = mkdtempSync(join(tmpdir(), 'hox-runtime-release-'));
    dirs.push(url);
    for (const [name, content] of Object.entries(RELEASE)) writeFileSync(join(url, name), content, { mode: 0o644 });
    chmodSync(url, 0o755);
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  async function agent(nodeId: string, partitions: number, dataDir?: string): Promise<AgentFixture> {
    const a = await startAgent(m.admin, { nodeId, partitions, ...(dataDir === undefined ? {} : { dataDir }) });
    agents.push(a);
    return a;
  }

  async function supply(nodeId: string): Promise<void> {
    await m.admin.call('supply', { computer_guid: nodeId, software_release_uri: url });
  }

  async function request(title: string, softwareType: string, state?: 'destroyed') {
    const answer = await m.admin.call('requestInstance', {
      title,
      software_release_uri: url,
      software_type: softwareType,
      ...(state === undefined ? {} : { state }),
    });
    if (isNotReady(answer)) throw new Error(`${title} not ready`);
    return answer;
  }

  async function connection(instanceGuid: string): Promise<Record<string, unknown>> {
    const answer = await m.admin.call('getInstance', { instance_guid: instanceGuid });
    return isNotReady(answer) ? {} : answer.connection_parameters;
  }

  async function status(title: string) {
    const trees = (await m.admin.call('listTreeStatus', { title })).result_list;
    return trees[0]?.instance_list.find((i) => i.title === title);
  }

  function partitionOf(a: AgentFixture, partitionId: string | null): FormattedPartition {
    const p = a.agent.partitions.find((x) => x.partitionId === partitionId);
    if (p === undefined) throw new Error(`no partition ${partitionId}`);
    return p;
  }

  function converged(a: AgentFixture, partitionId: string): number {
    return a.logs.filter((l) => l === `partition ${partitionId}: converged`).length;
  }

  /** Writes `.hox/publish.json` as the partition's user would: a temporary file, then a rename. */
  function publishFile(partition: FormattedPartition, content: string): void {
    const file = join(partition.path, '.hox', 'publish.json');
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, content);
    if (partition.uid !== undefined) chownSync(tmp, partition.uid, partition.gid!);
    renameSync(tmp, file);
  }

  it('gives each tenancy stable secrets: across passes and restarts, per name and partition, new after destroy', async () => {
    const first = await agent('s1', 3);
    await supply('s1');
    const a = await request('a', 'member');
    const b = await request('b', 'member');
    const aParams = await waitFor('a published', async () => {
      const c = await connection(a.instance_guid);
      return typeof c.password === 'string' ? c : undefined;
    });
    const bParams = await waitFor('b published', async () => {
      const c = await connection(b.instance_guid);
      return typeof c.password === 'string' ? c : undefined;
    });
    const password = aParams.password as string;
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(aParams.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(aParams.token).not.toBe(password);
    expect(bParams.password).not.toBe(password);

    // Agent-owned, out of the tenant's reach.
    const secretFile = join(first.dataDir, 'state', `${a.compute_partition_id}.secret.json`);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const pa = partitionOf(first, a.compute_partition_id);
    if (isRoot) {
      const attempt = spawnSync('cat', [secretFile], { uid: pa.uid!, gid: pa.gid! });
      expect(attempt.status).not.toBe(0);
      expect(attempt.stdout.length).toBe(0);
    }

    // Another pass: the same secrets.
    const passes = converged(first, pa.partitionId);
    await m.admin.call('bangInstance', { instance_guid: a.instance_guid, message: 'again' });
    await waitFor('a converged again', () => converged(first, pa.partitionId) > passes);
    expect((await connection(a.instance_guid)).password).toBe(password);

    // A restarted agent reads the secret back: it converges every partition once and publishes the same value.
    await first.agent.stop();
    const second = await agent('s1', 3, first.dataDir);
    await waitFor('restarted agent converged a', () => converged(second, pa.partitionId) > 0);
    expect((await connection(a.instance_guid)).password).toBe(password);
    expect((await connection(b.instance_guid)).password).toBe(bParams.password);

    // Destroyed: the secret goes with the tenant; the next instance in that partition gets another.
    await request('a', 'member', 'destroyed');
    await waitFor('partition of a freed', async () => {
      const node = await m.admin.call('nodeStatus', { computer_guid: 's1' });
      return node.free_partition_count === 2;
    });
    expect(existsSync(secretFile)).toBe(false);
    const c = await request('c', 'member');
    expect(c.compute_partition_id).toBe(a.compute_partition_id);
    const cParams = await waitFor('c published', async () => {
      const params = await connection(c.instance_guid);
      return typeof params.password === 'string' ? params : undefined;
    });
    expect(cParams.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cParams.password).not.toBe(password);

    // A name outside the allowed characters is the instance's error.
    await request('bad', 'bad-secret');
    const bad = await waitFor('bad secret name reported', async () => {
      const i = await status('bad');
      return i?.access_status_message.startsWith('#error while') === true ? i : undefined;
    });
    expect(bad.access_status_message).toMatch(/secret name "not a valid name" must match/);
  });

  it('publishes what a service writes to .hox/publish.json, fast, and refuses links, oversized and invalid files', async () => {
    const a = await agent('r1', 1);
    await supply('r1');
    const db = await request('db', 'member');
    const partition = partitionOf(a, db.compute_partition_id);

    // The service wrote its role when it started: merged over the profile's publish, runtime keys winning.
    const merged = await waitFor('the role the service wrote', async () => {
      const c = await connection(db.instance_guid);
      return c.role === 'primary' ? c : undefined;
    });
    expect(merged.url).toBe(`tcp://${partition.ip}:${partition.portBase}`);
    expect(merged.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await waitFor('reported started', async () => (await status('db'))?.access_status_message.startsWith('#access'));

    // Updates reach the master without running the profile again (how fast: the figures printed below).
    const passes = converged(a, partition.partitionId);
    const latenciesMs: number[] = [];
    for (let n = 0; n < 5; n += 1) {
      const role = `replica-${n}`;
      const written = performance.now();
      publishFile(partition, JSON.stringify({ role, lag_bytes: n }));
      for (;;) {
        const c = await connection(db.instance_guid);
        if (c.role === role) {
          expect(c.lag_bytes).toBe(n);
          expect(c.url).toBe(merged.url);
          break;
        }
        // A cap on the wait, not a claim on speed (the watcher's own latency is in publication-watcher.test.ts).
        if (performance.now() - written > 30_000) throw new Error(`role ${role} not published within 30 s`);
        await sleep(5);
      }
      latenciesMs.push(performance.now() - written);
    }
    console.log(`runtime publication reached the master in ${latenciesMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    // Each reached the master; how fast is a figure, printed, not a bound.
    expect(converged(a, partition.partitionId)).toBe(passes);
    expect(a.logs.filter((l) => l.endsWith('published runtime connection parameters')).length).toBeGreaterThanOrEqual(
      5,
    );

    // A link is never followed, even to a valid file only root may read: refused, reported, last values kept.
    const secretDir = mkdtempSync(join(tmpdir(), 'hox-root-only-'));
    dirs.push(secretDir);
    writeFileSync(join(secretDir, 'leak.json'), JSON.stringify({ role: 'leaked', leak: 'root-only' }), {
      mode: 0o600,
    });
    const file = join(partition.path, '.hox', 'publish.json');
    rmSync(file);
    symlinkSync(join(secretDir, 'leak.json'), file);
    await waitForError('db', /\.hox\/publish\.json is a symbolic link: refused/);
    const afterLink = await connection(db.instance_guid);
    expect(afterLink.leak).toBeUndefined();
    expect(afterLink.role).toBe('replica-4');

    // Oversized, not JSON, not an object, failing the connection schema (each renamed over the previous
    // file): each reported, none published.
    const cases: [string, RegExp][] = [
      [JSON.stringify({ role: 'x'.repeat(70 * 1024) }), /publish\.json is \d+ bytes, more than the 65536 allowed/],
      ['{"role": "prim', /publish\.json is not valid JSON/],
      ['["primary"]', /publish\.json must hold a JSON object, not an array/],
      ['{"role": 42}', /runtime publication: connection parameters\.role: must be string/],
    ];
    for (const [content, expected] of cases) {
      publishFile(partition, content);
      await waitForError('db', expected);
      expect((await connection(db.instance_guid)).role).toBe('replica-4');
    }
    // The agent is still there: a good file is published and the instance is healthy again.
    publishFile(partition, JSON.stringify({ role: 'primary' }));
    await waitFor('role published again', async () => (await connection(db.instance_guid)).role === 'primary');
    await waitFor('error cleared', async () => (await status('db'))?.access_status_message.startsWith('#access'));
    expect(a.logs).toContain(`partition ${partition.partitionId}: runtime publication accepted`);

    // Removing the file withdraws the runtime values: the profile's own publish again.
    rmSync(file);
    await waitFor('profile values back', async () => (await connection(db.instance_guid)).role === 'unknown');
    expect(converged(a, partition.partitionId)).toBe(passes);

    // Destroyed: the partition is wiped (.hox with it) and no longer watched.
    await request('db', 'member', 'destroyed');
    await waitFor(
      'partition freed',
      async () => (await m.admin.call('nodeStatus', { computer_guid: 'r1' })).free_partition_count === 1,
    );
    expect(existsSync(join(partition.path, '.hox'))).toBe(false);
    const linesAfterDestroy = a.logs.length;
    await sleep(300);
    expect(a.logs.slice(linesAfterDestroy).filter((l) => l.includes('runtime'))).toEqual([]);
  });

  it("flows up a tree: a child's runtime publication makes its parent converge with it", async () => {
    await agent('t1', 2);
    await supply('t1');
    const cluster = await request('cluster', 'cluster');
    const published = await waitFor('parent sees the member role', async () => {
      const c = await connection(cluster.instance_guid);
      return c.member_role === 'primary' ? c : undefined;
    });
    expect(published).toEqual({ member_role: 'primary' });
  });

  async function waitForError(title: string, expected: RegExp): Promise<void> {
    await waitFor(`${title} error ${String(expected)}`, async () => {
      const i = await status(title);
      return i !== undefined && expected.test(i.access_status_message);
    });
  }
});
