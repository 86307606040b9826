/**
 * Issue 11, finding 4: partitions share one network. The attack as it was
 * found, end to end — a real master, a real agent as root (partition users,
 * cgroups, nftables), a real tenant release whose service binds another
 * partition's address while that partition's service is stopped:
 *
 * - a client connecting to the victim's address:port is refused, never
 *   answered by the squatter (TCP and UDP, on the address and on 0.0.0.0);
 * - the victim's status names the squatter (pid, user, partition, where),
 *   and the squatter's own status says what its process does;
 * - once the squatter is gone, the victim's own service binds the same port
 *   and gets its traffic; stopping the agent with its services removes the
 *   node's table.
 *
 * On the code before this change the squatter answered the victim's
 * clients and nothing named it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import { CGROUP2_MOUNT, partitionCgroup2Path } from '../src/agent/isolate/partition-cgroup.js';
import { firewallUnavailableReason, runNft } from '../src/agent/isolate/partition-firewall.js';
import { firewallTableName } from '../src/agent/isolate/partition-firewall-rules.js';
import type { FormattedPartition } from '../src/agent/format/partition-formatter.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { tcpAnswer, udpAnswer } from '../src/testing/socket-probe.js';
import {
  disposeAgent,
  isAlive,
  processUid,
  processesIn,
  startAgent,
  waitFor,
  type AgentFixture,
} from './support/agent-harness.js';

const unavailable = await firewallUnavailableReason(CGROUP2_MOUNT);
const mustRun = process.env.CI === 'true';

/** A tenant's release whose service listens, TCP and UDP, wherever its parameters say, and answers 'squatter'. */
const SQUATTER_RELEASE = {
  'release.json': JSON.stringify({ name: 'squatter', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `
export default {
  softwareTypes: {
    default: {
      parameters: {
        type: 'object',
        required: ['host', 'port'],
        properties: { host: { type: 'string' }, port: { type: 'integer' } },
      },
      connection: { type: 'object' },
      profile(input) {
        return {
          files: [{ path: 'target.json', content: JSON.stringify(input.parameters) }],
          services: [{ name: 'squat', command: [input.tools.node, input.softwarePath + '/squat.mjs'] }],
          publish: {},
        };
      },
    },
  },
};
`,
  'squat.mjs': `
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
const { host, port } = JSON.parse(readFileSync('target.json', 'utf8'));
createServer((c) => { c.on('error', () => {}); c.end('squatter'); }).listen(port, host);
const udp = createSocket('udp4');
udp.on('message', (_m, from) => udp.send('squatter', from.port, from.address));
udp.bind(port, host);
`,
};

describe.skipIf(unavailable !== undefined && !mustRun)('partitions on one network (issue 11, finding 4)', () => {
  let m: TestMaster;
  let a: AgentFixture;
  let releaseDir: string;
  const nodeId = `netiso-${randomBytes(3).toString('hex')}`;
  const ipPrefix = `127.94.${randomBytes(1)[0]! % 250}`;

  beforeAll(async () => {
    expect(unavailable, 'root, nft and a cgroup2 hierarchy are needed (CI=true)').toBeUndefined();
    m = await startTestMaster();
    // A port range of its own: the squatter binds 0.0.0.0, which fails while anything else holds the port.
    const portBase = 24_000 + (randomBytes(2).readUInt16BE() % 40) * 200;
    a = await startAgent(m.admin, { nodeId, partitions: 3, ipPrefix, portBase });
    releaseDir = mkdtempSync(join(tmpdir(), 'hox-squatter-release-'));
    for (const [name, content] of Object.entries(SQUATTER_RELEASE))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
    for (const url of ['demo', releaseDir])
      await m.admin.call('supply', { computer_guid: nodeId, software_release_uri: url });
  });
  afterAll(async () => {
    await disposeAgent(a);
    // Stopped with its services, the agent removed its table.
    expect(await runNft('list tables\n')).not.toContain(firewallTableName(ipPrefix));
    await m?.stop();
    rmSync(releaseDir, { recursive: true, force: true });
  });

  async function request(
    title: string,
    url: string,
    parameters: Record<string, unknown>,
    state?: 'started' | 'stopped' | 'destroyed',
  ) {
    return m.admin.call('requestInstance', {
      title,
      software_release_uri: url,
      software_type: 'default',
      parameters,
      ...(state === undefined ? {} : { state }),
    });
  }

  async function status(title: string): Promise<string> {
    const trees = (await m.admin.call('listTreeStatus', { title })).result_list;
    return trees[0]?.instance_list.find((i) => i.title === title)?.access_status_message ?? '';
  }

  /** Requests the squatter on `host:port` and waits for its service process. */
  async function squat(
    title: string,
    host: string,
    port: number,
  ): Promise<{ partition: FormattedPartition; pid: number }> {
    const doc = await waitFor(`${title} allocated`, async () => {
      const answer = await request(title, releaseDir, { host, port });
      return isNotReady(answer) ? undefined : answer;
    });
    const partition = a.agent.partitions.find((p) => p.partitionId === doc.compute_partition_id)!;
    // Once the launcher (root, then the partition's user) has become the squatter itself.
    const [pid] = await waitFor(`${title}'s process`, () => {
      const pids = processesIn(partition.path);
      return pids.length === 1 &&
        processUid(pids[0]!) === partition.uid &&
        readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').includes('squat.mjs')
        ? pids
        : undefined;
    });
    return { partition, pid: pid! };
  }

  async function unsquat(title: string, pid: number): Promise<void> {
    await request(title, releaseDir, {}, 'destroyed');
    await waitFor(`${title}'s process gone`, () => !isAlive(pid), 30_000);
  }

  it("refuses the victim's traffic to a squatter on its address, names the squatter, and serves the victim again", async () => {
    const victim = await waitFor('victim published', async () => {
      const answer = await request('victim', 'demo', { greeting: 'the real victim' });
      return !isNotReady(answer) && typeof answer.connection_parameters.url === 'string' ? answer : undefined;
    });
    const url = new URL(victim.connection_parameters.url as string);
    const [host, port] = [url.hostname, Number(url.port)];
    const victimPartition = victim.compute_partition_id;
    await waitFor('victim served', async () => (await fetch(url)).ok);
    expect(await (await fetch(url)).text()).toBe('the real victim\n');

    // The victim's service stops (a restart, a crash): its address:port is free.
    await request('victim', 'demo', { greeting: 'the real victim' }, 'stopped');
    await waitFor('victim stopped', async () => 'error' in (await tcpAnswer(host, port)));

    const { partition: attacker, pid } = await squat('attacker', host, port);
    expect(processUid(pid)).toBe(attacker.uid);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(
      `0::/${partitionCgroup2Path(attacker.nodeTag, attacker.partitionId)}\n`,
    );

    // Named in the victim's status: who, which partition, where.
    const named = `squatter: pid ${pid} (user ${attacker.user}, partition ${attacker.partitionId}) listens on ${host}:${port}`;
    await waitFor(
      "the squatter named in the victim's status",
      async () => (await status('victim')).includes(named),
      30_000,
    );
    await waitFor(
      "the squatting named in the attacker's status",
      async () =>
        (await status('attacker')).includes(`listens on ${host}:${port}, the address of partition ${victimPartition}`),
      30_000,
    );
    // It listens (the kernel's table says so, above), yet the victim's clients never reach it.
    expect(await tcpAnswer(host, port)).toEqual({ error: 'refused' });
    expect(await udpAnswer(host, port)).toEqual({ error: 'refused' });
    await expect(fetch(url)).rejects.toThrow();

    // The squatter gone, the victim's own service binds the same port and gets its traffic again.
    await unsquat('attacker', pid);
    await request('victim', 'demo', { greeting: 'the real victim' }, 'started');
    await waitFor('victim served again', async () => (await (await fetch(url)).text()) === 'the real victim\n');
    await waitFor(
      'victim healthy again, squatter no longer named',
      async () => (await status('victim')).startsWith('#access'),
      30_000,
    );
  });

  it("gives a squatter on every address (0.0.0.0, the victim's port) none of the victim's traffic", async () => {
    const victim = await waitFor('victim2 published', async () => {
      const answer = await request('victim2', 'demo', {});
      return !isNotReady(answer) && typeof answer.connection_parameters.url === 'string' ? answer : undefined;
    });
    const url = new URL(victim.connection_parameters.url as string);
    const [host, port] = [url.hostname, Number(url.port)];
    await waitFor('victim2 served', async () => (await fetch(url)).ok);
    await request('victim2', 'demo', {}, 'stopped');
    await waitFor('victim2 stopped', async () => 'error' in (await tcpAnswer(host, port)));

    const { partition: attacker, pid } = await squat('attacker2', '0.0.0.0', port);
    // Alive and answering on other addresses...
    await waitFor('squatter listening', async () => {
      const answer = await tcpAnswer('127.0.0.1', port);
      return 'answer' in answer && answer.answer === 'squatter';
    });
    expect(await udpAnswer('127.0.0.1', port)).toEqual({ answer: 'squatter' });
    // ...but not on the victim's.
    expect(await tcpAnswer(host, port)).toEqual({ error: 'refused' });
    expect(await udpAnswer(host, port)).toEqual({ error: 'refused' });
    await waitFor(
      "the squatter named in victim2's status",
      async () =>
        (await status('victim2')).includes(
          `squatter: pid ${pid} (user ${attacker.user}, partition ${attacker.partitionId}) listens on 0.0.0.0:${port}, a port of this partition`,
        ),
      30_000,
    );
    await unsquat('attacker2', pid);
  });
});
