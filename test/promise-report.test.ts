/**
 * Each promise's own result reaches `hox show` (issue 13, item 13: "`hox show`
 * with parameters and promises"). The master side on both stores: a node
 * reports for its own instances only, bounded and consistent; the master keeps
 * each result with its age in its own clock and wakes no watcher. End to end
 * with a real master, a real agent and the real CLI: a promise fails, then
 * passes, and `hox show` says so at each step; the parameters the instance was
 * requested with are shown, secrets masked unless --reveal.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResponseOf } from '../src/client/master-client.js';
import { isNotReady } from '../src/client/master-client.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';
import { expectError, instanceClient, RELEASE, request } from './support/helpers.js';
import { runHox, type HoxRun } from './support/hox-cli.js';
import { describeEachStore } from './support/store-matrix.js';

type TreeInstance = ResponseOf<'listTreeStatus'>['result_list'][number]['instance_list'][number];

async function instanceStatus(client: TestMaster['admin'], title: string): Promise<TreeInstance> {
  const [tree] = (await client.call('listTreeStatus', { title })).result_list;
  const instance = tree?.instance_list.find((i) => i.title === title);
  if (instance === undefined) throw new Error(`no instance '${title}'`);
  return instance;
}

const ok = (name: string, ageMs = 2_000) => ({
  name,
  result: 'ok' as const,
  message: `tcp 127.0.1.1:80: connected`,
  age_ms: ageMs,
});

describeEachStore('promise reports', (env) => {
  it("keeps each promise's result with its age in the master's clock, replaces it, and wakes no watcher", async () => {
    let nowMs = Date.parse('2025-03-01T12:00:00.000Z');
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const doc = await request(alice, 'app', {
      parameters: { greeting: 'hi' },
      sla_parameters: { computer_guid: 'n1' },
    });
    const before = await instanceStatus(alice, 'app');
    expect(before.promises).toBeNull();
    // What it was requested with, for its owner.
    expect(before.parameters).toEqual({ greeting: 'hi' });
    expect(before.sla_parameters).toEqual({ computer_guid: 'n1' });

    const nodeCursor = (await n1.client.call('waitForChange', {})).cursor;
    const aliceCursor = (await alice.call('waitForChange', {})).cursor;
    const report = {
      compute_partition_id: doc.compute_partition_id,
      instance_guid: doc.instance_guid,
      promise_list: [
        ok('port'),
        { name: 'http', result: 'failed' as const, message: 'http http://127.0.1.1/: status 500', age_ms: 4_000 },
        { name: 'slow', result: 'never_run' as const, message: null, age_ms: null },
      ],
    };
    await n1.client.call('reportPromiseResults', { computer_guid: 'n1', promise_report_list: [report] });
    // Nobody is woken for it (the state or error report that goes with a verdict's change does that).
    expect((await n1.client.call('waitForChange', { since: nodeCursor, timeout_ms: 0 })).changed).toBe(false);
    expect((await alice.call('waitForChange', { since: aliceCursor, timeout_ms: 0 })).changed).toBe(false);

    nowMs += 5_000;
    expect((await instanceStatus(alice, 'app')).promises).toEqual({
      reported_at: '2025-03-01T12:00:00.000Z',
      reported_age_ms: 5_000,
      promise_list: [
        {
          name: 'port',
          result: 'ok',
          message: 'tcp 127.0.1.1:80: connected',
          checked_at: '2025-03-01T11:59:58.000Z',
          age_ms: 7_000,
        },
        {
          name: 'http',
          result: 'failed',
          message: 'http http://127.0.1.1/: status 500',
          checked_at: '2025-03-01T11:59:56.000Z',
          age_ms: 9_000,
        },
        { name: 'slow', result: 'never_run', message: null, checked_at: null, age_ms: null },
      ],
    });

    // The next report replaces it whole; an emptied set (the instance stopped) is a report too.
    await n1.client.call('reportPromiseResults', {
      computer_guid: 'n1',
      promise_report_list: [{ ...report, promise_list: [ok('port', 0)] }],
    });
    expect((await instanceStatus(alice, 'app')).promises?.promise_list.map((p) => [p.name, p.result])).toEqual([
      ['port', 'ok'],
    ]);
    await n1.client.call('reportPromiseResults', {
      computer_guid: 'n1',
      promise_report_list: [{ ...report, promise_list: [] }],
    });
    expect((await instanceStatus(alice, 'app')).promises?.promise_list).toEqual([]);
  });

  it("refuses a report about another node's instance, an inconsistent or oversized one, whole, and from anyone but a node", async () => {
    const m = await env.startMaster();
    await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 2, releases: [RELEASE] });
    const victim = await request(m.admin, 'victim', { sla_parameters: { computer_guid: 'n1' } });
    const own = await request(m.admin, 'own', { sla_parameters: { computer_guid: 'n2' } });
    const forged = {
      compute_partition_id: victim.compute_partition_id,
      instance_guid: victim.instance_guid,
      promise_list: [ok('all-good')],
    };
    const honest = {
      compute_partition_id: own.compute_partition_id,
      instance_guid: own.instance_guid,
      promise_list: [ok('port')],
    };
    const send = (client: typeof n2.client, list: unknown[], node = 'n2') =>
      client.call('reportPromiseResults', {
        computer_guid: node,
        promise_report_list: list as (typeof honest)[],
      });

    await expectError(
      send(n2.client, [honest, forged]),
      'HOX_INSTANCE_NOT_FOUND',
      `instance '${victim.instance_guid}' not found on compute node 'n2'`,
    );
    await expectError(send(n2.client, [forged], 'n1'), 'HOX_FORBIDDEN');
    await expectError(
      send(n2.client, [{ ...honest, compute_partition_id: own.compute_partition_id === 'p0' ? 'p1' : 'p0' }]),
      'HOX_BAD_REQUEST',
    );
    await expectError(send(n2.client, [honest, honest]), 'HOX_BAD_REQUEST', /reported twice/);
    await expectError(
      send(n2.client, [{ ...honest, promise_list: [ok('port'), ok('port')] }]),
      'HOX_BAD_REQUEST',
      /promise 'port' is reported twice/,
    );
    // A result's fields agree: a promise never run has no age nor message; a checked one has both.
    await expectError(
      send(n2.client, [{ ...honest, promise_list: [{ name: 'x', result: 'never_run', message: null, age_ms: 5 }] }]),
      'HOX_BAD_REQUEST',
    );
    await expectError(
      send(n2.client, [{ ...honest, promise_list: [{ name: 'x', result: 'ok', message: null, age_ms: 5 }] }]),
      'HOX_BAD_REQUEST',
    );
    // Bounded by the schema: message length, count, unknown fields, unknown results.
    await expectError(
      send(n2.client, [{ ...honest, promise_list: [{ ...ok('x'), message: 'm'.repeat(301) }] }]),
      'HOX_BAD_REQUEST',
    );
    await expectError(
      send(n2.client, [{ ...honest, promise_list: Array.from({ length: 65 }, (_, i) => ok(`p${i}`)) }]),
      'HOX_BAD_REQUEST',
    );
    await expectError(send(n2.client, [{ ...honest, promise_list: [{ ...ok('x'), secret: 'y' }] }]), 'HOX_BAD_REQUEST');
    await expectError(
      send(n2.client, [{ ...honest, promise_list: [{ ...ok('x'), result: 'maybe' }] }]),
      'HOX_BAD_REQUEST',
    );
    // Users and instances do not report promises.
    const { token: userToken } = await m.admin.call('createUser', { name: 'mallory' });
    await expectError(send(m.admin.withToken(userToken), [honest]), 'HOX_FORBIDDEN');
    await expectError(send(await instanceClient(n2.client, own.instance_guid), [honest]), 'HOX_FORBIDDEN');

    // Nothing of the refused reports was kept, not even the honest entry sent with the forged one.
    expect((await instanceStatus(m.admin, 'victim')).promises).toBeNull();
    expect((await instanceStatus(m.admin, 'own')).promises).toBeNull();
    await send(n2.client, [honest]);
    expect((await instanceStatus(m.admin, 'own')).promises?.promise_list.map((p) => p.name)).toEqual(['port']);
  });
});

// ---- through a real agent and the CLI ----------------------------------------------------------------

/**
 * One service that idles, and two promises: `always` passes; `healthy` fails (printing a password-like pair,
 * which must not leave the node) until a file named `healthy` exists in the partition.
 */
const PROMISE_RELEASE: Record<string, string> = {
  'release.json': JSON.stringify({ name: 'promised', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `
export default {
  softwareTypes: {
    run: {
      parameters: { type: 'object' },
      connection: { type: 'object' },
      profile(input) {
        return {
          services: [{ name: 'main', command: ['/bin/sh', '-c', 'exec sleep 1000'], stopTimeoutMs: 1000 }],
          promises: [
            { name: 'always', kind: 'command', command: ['/bin/true'], periodMs: 300 },
            {
              name: 'healthy',
              kind: 'command',
              command: ['/bin/sh', '-c', 'test -f healthy || { echo "not healthy yet, password=hunter2" >&2; exit 3; }'],
              periodMs: 300,
            },
          ],
          publish: { partition: input.partition.path },
        };
      },
    },
  },
};
`,
};

describe("each promise's result through a real agent and `hox show`", () => {
  let m: TestMaster;
  let releaseDir: string;
  let home: string;
  let fixture: AgentFixture | undefined;

  beforeEach(async () => {
    m = await startTestMaster();
    // Outside /tmp: partition users must read the release, and their /tmp is private.
    releaseDir = mkdtempSync(join('/var/tmp', 'hox-promise-release-'));
    for (const [name, content] of Object.entries(PROMISE_RELEASE))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
    home = mkdtempSync(join('/var/tmp', 'hox-promise-cli-'));
  });
  afterEach(async () => {
    await disposeAgent(fixture);
    fixture = undefined;
    await m.stop();
    rmSync(releaseDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  const hox = (args: string[]): Promise<HoxRun> =>
    runHox(
      args,
      { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: m.url, HOX_TOKEN: m.adminToken },
      60_000,
    );

  async function shownPromises(): Promise<{ instance: TreeInstance; text: string }> {
    const json = await hox(['show', 'checked', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const tree = JSON.parse(json.stdout) as { instance_list: TreeInstance[] };
    const instance = tree.instance_list.find((i) => i.title === 'checked');
    if (instance === undefined) throw new Error('no instance in hox show --json');
    const text = await hox(['show', 'checked']);
    expect(text.code, text.stderr).toBe(0);
    return { instance, text: text.stdout };
  }

  it('a failing promise, then passing: the master and `hox show` follow each step; parameters masked without --reveal', async () => {
    fixture = await startAgent(m.admin, { nodeId: 'promise-node', partitions: 2 });
    await m.admin.call('supply', { computer_guid: 'promise-node', software_release_uri: releaseDir });
    const answer = await m.admin.call('requestInstance', {
      title: 'checked',
      software_release_uri: releaseDir,
      software_type: 'run',
      parameters: { greeting: 'hi', db_password: 'param-s3cret', env: { API_TOKEN: 'env-s3cret', MODE: 'demo' } },
      sla_parameters: { computer_guid: 'promise-node' },
    });
    if (isNotReady(answer)) throw new Error('checked not ready');

    // Step 1: `healthy` fails, `always` passes.
    await waitFor(
      'the failing promise to be reported',
      async () => {
        const list = (await instanceStatus(m.admin, 'checked')).promises?.promise_list ?? [];
        return list.some((p) => p.name === 'healthy' && p.result === 'failed') && list.some((p) => p.result === 'ok');
      },
      60_000,
    );
    const failing = await shownPromises();
    expect(failing.instance.promises?.promise_list.map((p) => [p.name, p.result])).toEqual([
      ['always', 'ok'],
      ['healthy', 'failed'],
    ]);
    const healthy = failing.instance.promises?.promise_list.find((p) => p.name === 'healthy');
    expect(healthy?.message).toMatch(/exit 3: not healthy yet, password=••••••$/);
    expect(healthy?.age_ms).toBeGreaterThanOrEqual(0);
    expect(healthy?.checked_at).not.toBeNull();
    expect(failing.text).toMatch(/promises: 1\/2 ok \(reported \d+ s ago\)/);
    expect(failing.text).toMatch(
      /failed healthy: command .*exit 3: not healthy yet, password=•••••• \(checked \d+ s ago\)/,
    );
    // The password a promise printed never reaches the master: neither in the promise report nor in the status.
    expect(JSON.stringify(await m.admin.call('listTreeStatus', { title: 'checked' }))).not.toContain('hunter2');

    // The parameters it was requested with, masked: a secret-looking key, and every environment value.
    expect(failing.instance.parameters).toEqual({
      greeting: 'hi',
      db_password: '••••••',
      env: { API_TOKEN: '••••••', MODE: '••••••' },
    });
    expect(failing.instance.sla_parameters).toEqual({ computer_guid: 'promise-node' });
    expect(failing.text).toContain('sla:      computer_guid=promise-node');
    expect(failing.text).toContain('greeting = hi');
    expect(failing.text).not.toContain('s3cret');
    const revealed = await hox(['show', 'checked', '--json', '--reveal']);
    expect(revealed.code, revealed.stderr).toBe(0);
    expect(revealed.stdout).toContain('param-s3cret');
    expect(revealed.stdout).toContain('env-s3cret');

    // Step 2: the partition gets healthy; the next run passes and is reported.
    const partition = failing.instance.connection_parameters.partition;
    expect(typeof partition).toBe('string');
    writeFileSync(join(partition as string, 'healthy'), 'yes\n', { mode: 0o644 });
    await waitFor(
      'the promise passing to be reported',
      async () => {
        const list = (await instanceStatus(m.admin, 'checked')).promises?.promise_list ?? [];
        return list.length === 2 && list.every((p) => p.result === 'ok');
      },
      60_000,
    );
    const passing = await shownPromises();
    expect(passing.instance.promises?.promise_list.map((p) => [p.name, p.result, p.message])).toEqual([
      ['always', 'ok', "command ['/bin/true']: exit 0"],
      ['healthy', 'ok', expect.stringMatching(/: exit 0$/)],
    ]);
    expect(passing.text).toMatch(/promises: 2\/2 ok \(reported \d+ s ago\)/);
    expect(passing.text).not.toContain('failed healthy');

    // Cheap: the promises keep running (every 300 ms) and pass the same way, so nothing more is sent.
    const reportedAt = (await instanceStatus(m.admin, 'checked')).promises?.reported_at;
    await sleep(2_000);
    expect((await instanceStatus(m.admin, 'checked')).promises?.reported_at).toBe(reportedAt);
  }, 120_000);
});
