/**
 * Messages that say what went wrong and what to do (issue 13, item 9): why a
 * request got no partition, a schema's refusal in a user's words, and where a
 * refused token or an unreachable master URL came from. Against a real master;
 * the CLI cases run the real `hox` from the sources.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchemaChecker } from '../src/agent/schema-checker.js';
import { isNotReady, type MasterClient, type ResponseOf } from '../src/client/master-client.js';
import { HoxError } from '../src/shared/errors.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { runHox } from './support/hox-cli.js';

/** What a request that got no partition waits for: SlapOS's 102, with our words after its own. */
async function waiting(answer: Promise<ResponseOf<'requestInstance'>>): Promise<string> {
  const a = await answer;
  if (!isNotReady(a)) throw new Error(`expected a not-ready answer, got ${JSON.stringify(a)}`);
  const prefix = 'Software Instance Not Ready: waiting for a partition: ';
  expect(a.message.startsWith(prefix), a.message).toBe(true);
  return a.message.slice(prefix.length);
}

const request = (client: MasterClient, title: string, release: string, sla: Record<string, string> = {}) =>
  client.call('requestInstance', {
    title,
    software_release_uri: release,
    software_type: 'default',
    sla_parameters: sla,
  });

describe('why a request waits for a partition', () => {
  let m: TestMaster;
  beforeAll(async () => {
    m = await startTestMaster();
  });
  afterAll(async () => m?.stop());

  it('before any node: says there is none', async () => {
    const e = await waiting(request(m.admin, 'early', 'demo'));
    expect(e).toBe("no compute node is registered yet, so nothing runs 'demo' (hox node, or hox up)");
  });

  it('an unknown release lists the supplied ones; a full node says to add partitions', async () => {
    await addTestNode(m.admin, 'n1', { partitions: 2, releases: ['demo', 'hyper_db'] });
    const unknown = await waiting(request(m.admin, 'typo', 'dmeo'));
    expect(unknown).toBe("unknown release 'dmeo' (supplied: demo, hyper_db)");

    await request(m.admin, 'a', 'demo');
    await request(m.admin, 'b', 'demo');
    const full = await waiting(request(m.admin, 'c', 'demo'));
    expect(full).toBe(
      "no free partition: all 2 partitions of compute node 'n1' (which supplies 'demo') are used " +
        '(start the node with more --partitions, or destroy an instance)',
    );
  });

  it('pinned to a node, says what that node supplies; across nodes, counts them all', async () => {
    await addTestNode(m.admin, 'n2', { partitions: 1, releases: ['demo'] });
    const pinned = await waiting(request(m.admin, 'p', 'hyper_db', { computer_guid: 'n2' }));
    expect(pinned).toBe("software release 'hyper_db' is not supplied on compute node 'n2' (supplied there: demo)");
    await request(m.admin, 'd', 'demo');
    const full = await waiting(request(m.admin, 'e', 'demo'));
    expect(full).toMatch(/^no free partition: all 3 partitions of the 2 compute nodes supplying 'demo' are used/);
  });
});

describe('hox request and hox list say what a waiting tree waits for', () => {
  let m: TestMaster;
  let home: string;
  beforeAll(async () => {
    m = await startTestMaster();
    home = mkdtempSync(join(tmpdir(), 'hox-cli-waiting-'));
  });
  afterAll(async () => {
    await m?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it('hox request --wait follows it until the master places it; hox list shows it waiting', async () => {
    const env = { PATH: process.env.PATH, HOME: home, HOX_MASTER_URL: m.url, HOX_TOKEN: m.adminToken };
    const node = await addTestNode(m.admin, 'n1', { partitions: 1, releases: ['demo'] });
    await request(m.admin, 'first', 'demo');
    // Nothing free: accepted, and it says what it waits for until the timeout.
    const timedOut = await runHox(['request', 'second', '--release', 'demo', '--wait', '--timeout', '2'], env);
    expect(timedOut.code, timedOut.stderr).toBe(1);
    expect(timedOut.stdout).toContain(
      'second: accepted; Software Instance Not Ready: waiting for a partition: no free partition',
    );
    expect(timedOut.stdout).toContain(
      "  waiting for a partition: no free partition: all 1 partitions of compute node 'n1'",
    );
    expect(timedOut.stderr).toMatch(/timed out after 2 s \(waiting for a partition: no free partition/);
    const list = await runHox(['list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/second +demo +started +- +pending +1 +waiting/);
    expect(list.stdout).toContain(
      "\nsecond: waiting for a partition: no free partition: all 1 partitions of compute node 'n1'",
    );
    const json = JSON.parse((await runHox(['--json', 'list'], env)).stdout) as {
      title: string;
      root: { waiting_for: string | null };
    }[];
    expect(json.find((t) => t.title === 'second')?.root.waiting_for).toMatch(/^waiting for a partition/);
    // Room appears: the master places it, without another request.
    await node.client.call('formatNode', {
      computer_guid: 'n1',
      compute_partition_list: ['p0', 'p1'].map((partition_id) => ({ partition_id })),
    });
    await expect
      .poll(
        async () =>
          (await m.admin.call('listTreeStatus', { title: 'second' })).result_list[0]!.instance_list[0]!.computer_guid,
        { timeout: 20_000 },
      )
      .toBe('n1');
    const placed = await runHox(['list'], env);
    expect(placed.stdout).toMatch(/second +demo +started +- +pending +1 +n1\/p1/);
  });
});

describe("a schema's refusal", () => {
  const checker = new SchemaChecker();
  const schema = {
    type: 'object',
    additionalProperties: false,
    required: ['mode'],
    properties: {
      mode: { enum: ['fast', 'safe'] },
      nested: { type: 'object', additionalProperties: false, properties: { depth: { type: 'integer' } } },
    },
  };
  const message = (value: unknown): string => {
    try {
      checker.check(schema, value, 'parameters');
    } catch (error) {
      return error instanceof HoxError ? `${error.field ?? ''} | ${error.message}` : String(error);
    }
    return 'accepted';
  };

  it('names the parameter and lists the accepted ones, never in the validator’s words', () => {
    expect(message({ mode: 'fast', port: 1 })).toBe(
      'parameters.port | parameters.port: unknown parameter (accepted: mode, nested)',
    );
    expect(message({ mode: 'fast', nested: { width: 1 } })).toBe(
      'parameters.nested.width | parameters.nested.width: unknown parameter (accepted: depth)',
    );
    expect(message({})).toBe('parameters.mode | parameters.mode: required parameter missing');
    expect(message({ mode: 'slow' })).toBe('parameters.mode | parameters.mode: must be one of "fast", "safe"');
    expect(message({ mode: 'safe' })).toBe('accepted');
  });
});

describe('hox says where a refused token or an unreachable master came from', () => {
  let m: TestMaster;
  let home: string;
  beforeAll(async () => {
    m = await startTestMaster();
    home = mkdtempSync(join(tmpdir(), 'hox-cli-messages-'));
  });
  afterAll(async () => {
    await m?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });
  const base = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: home, HOX_CONFIG: join(home, 'config.json') });

  it('a bad HOX_TOKEN', async () => {
    const run = await runHox(['list'], { ...base(), HOX_MASTER_URL: m.url, HOX_TOKEN: 'hox_user_bad' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the token from the environment variable HOX_TOKEN was refused: run hox login');
    expect(run.stderr).not.toContain('hox_user_bad');
  });

  it('a bad token in the config file', async () => {
    const configPath = join(home, 'config.json');
    writeFileSync(configPath, JSON.stringify({ masterUrl: m.url, token: 'hox_user_stale' }), { mode: 0o600 });
    try {
      const run = await runHox(['list'], base());
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the token from the config file ${configPath} was refused: run hox login`);
    } finally {
      rmSync(configPath, { force: true });
    }
  });

  it('an unreachable master', async () => {
    const run = await runHox(['list'], { ...base(), HOX_MASTER_URL: 'http://127.0.0.1:9', HOX_TOKEN: 'hox_user_x' });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('master at http://127.0.0.1:9 is unreachable');
    expect(run.stderr).toContain('Start one with hox up, or check the URL from HOX_MASTER_URL');
  });
});
