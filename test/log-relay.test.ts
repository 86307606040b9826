/**
 * `hox logs` through the master: a node agent running as its own `hox node`
 * process, whose data dir this CLI knows nothing of, serves a demo instance;
 * its logs come back through the master (tail, --json, --follow), only to the
 * tree's owner; a node that never answers is named with its last contact.
 * On PostgreSQL, the request and the node's answer go through two masters.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotReady, MasterClient } from '../src/client/master-client.js';
import { spawnAgentProcess } from '../src/testing/agent-process.js';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import {
  cleanUpNodePartitions,
  disposeAgent,
  startAgent,
  tempDataDir,
  waitFor,
  type AgentFixture,
} from './support/agent-harness.js';
import { HOX_FROM_SOURCES, ROOT, runHox } from './support/hox-cli.js';

const PORT_BASE = 41000 + Math.floor(Math.random() * 150) * 100;
const PARTITIONS = 2;

async function requestDemo(client: MasterClient, title: string, sla: Record<string, string> = {}) {
  return waitFor(
    `${title} published its url`,
    async () => {
      const a = await client.call('requestInstance', {
        title,
        software_release_uri: 'demo',
        software_type: 'default',
        sla_parameters: sla,
      });
      return !isNotReady(a) && typeof a.connection_parameters.url === 'string' ? a : undefined;
    },
    60_000,
  );
}

// Slow under load: each CLI run starts Node with tsx.
describe('hox logs through the master, from a node on "another machine"', { timeout: 180_000 }, () => {
  let m: TestMaster;
  let agent: ReturnType<typeof spawnAgentProcess> | undefined;
  let near: AgentFixture | undefined;
  let nodeDir: string;
  let home: string;
  let alice: MasterClient;
  let aliceToken: string;
  let bobToken: string;
  let cliEnv: (token: string) => NodeJS.ProcessEnv;

  beforeAll(async () => {
    m = await startTestMaster();
    nodeDir = tempDataDir();
    home = mkdtempSync(join(tmpdir(), 'hox-logs-cli-'));
    const { token } = await m.admin.call('createRegistrationToken', {});
    agent = spawnAgentProcess({
      masterUrl: m.url,
      dataDir: nodeDir,
      nodeId: 'far',
      partitions: PARTITIONS,
      registerToken: token,
      portBase: PORT_BASE,
      quiet: true,
    });
    agent.stdout.resume();
    agent.stderr.resume();
    await waitFor(
      'node far formatted',
      async () =>
        (await m.admin.call('listNodes', {})).result_list.some(
          (n) => n.computer_guid === 'far' && n.partition_count > 0,
        ),
      60_000,
    );
    await m.admin.call('supply', { computer_guid: 'far', software_release_uri: 'demo' });
    aliceToken = (await m.admin.call('createUser', { name: 'alice' })).token;
    bobToken = (await m.admin.call('createUser', { name: 'bob' })).token;
    alice = m.admin.withToken(aliceToken);
    await requestDemo(alice, 'web', { computer_guid: 'far' });
    // A config file with no local node: the CLI cannot read any node's files itself.
    cliEnv = (t) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOX_CONFIG: join(home, 'config.json'),
        HOX_MASTER_URL: m.url,
        HOX_TOKEN: t,
      };
      return env;
    };
  });

  afterAll(async () => {
    await disposeAgent(near);
    if (agent !== undefined && agent.exitCode === null) {
      agent.kill('SIGKILL');
      await new Promise((resolve) => agent!.once('exit', resolve));
    }
    // The agent was killed: its services and its firewall table are ours to remove.
    await cleanUpNodePartitions('far', nodeDir, PARTITIONS);
    rmSync(nodeDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
    await m.stop();
  });

  it("prints the owner's logs, prefixed and timed, as text and as JSON", async () => {
    const logs = await waitFor(
      'the demo logged',
      async () => {
        const run = await runHox(['logs', 'web'], cliEnv(aliceToken), 60_000);
        return run.code === 0 && /web\/http \| listening on 127\.\d+\.\d+\.\d+:\d+/.test(run.stdout) ? run : undefined;
      },
      60_000,
    );
    expect(logs.stderr).not.toContain('warning');
    const json = await runHox(['logs', 'web', '--service', 'http', '--json'], cliEnv(aliceToken), 60_000);
    expect(json.code).toBe(0);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row).toMatchObject({ instance: 'web', service: 'http', node: 'far' });
    expect(rows.some((r) => String(r.line).startsWith('listening on'))).toBe(true);
  });

  it('--follow prints lines written after it started', async () => {
    const [tree] = (await alice.call('listTreeStatus', { title: 'web' })).result_list;
    const partition = tree!.instance_list[0]!.compute_partition_id!;
    const follower = spawn(process.execPath, [...HOX_FROM_SOURCES, 'logs', 'web', '--follow', '--lines', '5'], {
      env: cliEnv(aliceToken),
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    follower.stdout.on('data', (c: Buffer) => (out += c.toString()));
    follower.stderr.resume();
    try {
      await waitFor('first lines', () => out.includes('listening on'), 60_000);
      // What the service would print next (the agent reads the file as it reads any service's output).
      appendFileSync(join(nodeDir, 'logs', partition, 'http.log'), '2026-12-02T01:02:03.456Z a line written later\n');
      await waitFor('the new line', () => out.includes('a line written later'), 30_000);
      expect(out).toContain('2026-12-02T01:02:03.456Z web/http | a line written later');
      expect(out.match(/listening on/g)?.length).toBe(1);
    } finally {
      follower.kill('SIGINT');
      await new Promise((resolve) => follower.once('exit', resolve));
    }
  });

  it("merges the logs of a tree's instances on two nodes (as every hyper_db member's keeper)", async () => {
    near = await startAgent(m.admin, { nodeId: 'near', partitions: 1, portBase: PORT_BASE + 3000 });
    await m.admin.call('supply', { computer_guid: 'near', software_release_uri: 'demo' });
    // The parent takes far's last partition: its child can only go to near.
    await waitFor(
      'parent and child on two nodes, serving',
      async () => {
        const a = await alice.call('requestInstance', {
          title: 'family',
          software_release_uri: 'demo',
          software_type: 'parent',
          sla_parameters: { computer_guid: 'far' },
        });
        return !isNotReady(a) && typeof a.connection_parameters.child_url === 'string' ? a : undefined;
      },
      90_000,
    );
    const [tree] = (await alice.call('listTreeStatus', { title: 'family' })).result_list;
    expect(new Set(tree!.instance_list.map((i) => i.computer_guid))).toEqual(new Set(['far', 'near']));
    // A parent runs no service: give its partition on far a log, as a service of its own would write.
    const parent = tree!.instance_list.find((i) => i.title === 'family')!;
    mkdirSync(join(nodeDir, 'logs', parent.compute_partition_id!), { recursive: true });
    appendFileSync(join(nodeDir, 'logs', parent.compute_partition_id!, 'http.log'), 'parent line\n');
    const run = await waitFor(
      'both logs',
      async () => {
        const r = await runHox(['logs', 'family', '--service', 'http', '--json'], cliEnv(aliceToken), 60_000);
        if (r.code === 0 && r.stdout.includes('"instance":"child"') && r.stdout.includes('"instance":"family"'))
          return r;
        throw new Error(`exit ${r.code}: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
      },
      60_000,
    );
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { instance: string; node: string });
    expect(rows.find((r) => r.instance === 'family')?.node).toBe('far');
    expect(rows.find((r) => r.instance === 'child')?.node).toBe('near');
  });

  it("refuses another user, a node's token and answers for other nodes' requests", async () => {
    const bob = await runHox(['logs', 'web'], cliEnv(bobToken), 60_000);
    expect(bob.code).not.toBe(0);
    expect(bob.stderr).toContain("instance tree 'web' not found");
    await expect(m.admin.withToken(bobToken).call('readTreeLogs', { title: 'web' })).rejects.toMatchObject({
      code: 'HOX_INSTANCE_TREE_NOT_FOUND',
    });
    const other = await addTestNode(m.admin, 'other', { partitions: 1 });
    await expect(other.client.call('readTreeLogs', { title: 'web' })).rejects.toMatchObject({ code: 'HOX_FORBIDDEN' });
    await expect(other.client.call('listLogRequests', { computer_guid: 'far', timeout_ms: 0 })).rejects.toMatchObject({
      code: 'HOX_FORBIDDEN',
    });
    await expect(
      other.client.call('answerLogRequest', {
        computer_guid: 'far',
        request_id: 'LOGREQ-x',
        log_list: [],
        error: null,
      }),
    ).rejects.toMatchObject({ code: 'HOX_FORBIDDEN' });
    await expect(
      other.client.call('answerLogRequest', {
        computer_guid: 'other',
        request_id: 'LOGREQ-x',
        log_list: [],
        error: null,
      }),
    ).rejects.toMatchObject({ code: 'HOX_NOT_FOUND' });
  });

  it('names a node that never answers, with its last contact, within the bound', async () => {
    // Registered and formatted, but no agent: it never answers.
    await addTestNode(m.admin, 'mute', { partitions: 1, releases: ['demo'] });
    await alice.call('requestInstance', {
      title: 'silent',
      software_release_uri: 'demo',
      software_type: 'default',
      sla_parameters: { computer_guid: 'mute' },
    });
    const error = await alice.call('readTreeLogs', { title: 'silent', wait_ms: 1500 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HOX_NODE_NOT_ANSWERING', retryable: true });
    expect((error as Error).message).toMatch(
      /compute node 'mute' did not answer within 2 s: its last contact was \S+Z/,
    );
    const cli = await runHox(['logs', 'silent'], cliEnv(aliceToken), 60_000);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("compute node 'mute' did not answer within 10 s");
  });
});

describe('hox logs through two masters on one PostgreSQL store', { timeout: 180_000 }, () => {
  let pg: PostgresServer;
  let a: TestMaster | undefined;
  let b: TestMaster | undefined;
  let fixture: AgentFixture | undefined;

  beforeAll(async () => {
    pg = await startPostgres();
  });

  afterAll(async () => {
    await disposeAgent(fixture);
    await b?.stop();
    await a?.stop();
    await pg.stop();
  });

  it("relays a request taken by one master to a node that polls the other, and the node's answer back", async () => {
    const databaseUrl = await createDatabase(pg, `logs_${process.pid}`);
    a = await startTestMaster({ databaseUrl });
    b = await startTestMaster({ databaseUrl, storeKeyFile: join(a.dataDir, 'store.key') });
    // The agent talks to master b only.
    fixture = await startAgent(b.admin, { nodeId: 'pgnode', partitions: 1, portBase: PORT_BASE + 5000 });
    await a.admin.call('supply', { computer_guid: 'pgnode', software_release_uri: 'demo' });
    await requestDemo(a.admin, 'pgweb', { computer_guid: 'pgnode' });
    const result = await waitFor(
      'logs through master a',
      async () => {
        const r = await a!.admin.call('readTreeLogs', { title: 'pgweb', service: 'http' });
        return r.log_list.some((l) => l.lines.some((line) => line.startsWith('listening on'))) ? r : undefined;
      },
      60_000,
    );
    expect(result.problem_list).toEqual([]);
    expect(result.log_list[0]).toMatchObject({ instance_title: 'pgweb', computer_guid: 'pgnode', service: 'http' });
    // Rows are gone once read: nothing is left pending for the node.
    const node = new MasterClient({ url: b.url, token: b.adminToken });
    expect((await node.call('listLogRequests', { computer_guid: 'pgnode', timeout_ms: 0 })).result_list).toEqual([]);
  });
});
