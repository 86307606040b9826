/**
 * The audit trail (issue 14, "Audit trail"; docs/security/audit.md): every mutating call, answered with success
 * or an error, leaves one entry (who, which token kind, what, when, from where, the result) in the store, on both
 * stores; reads leave none; no secret ever reaches it; a user reads only its own entries; retention prunes by
 * age and count; `hox audit` shows it, aligned or as JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseSince } from '../src/cli/commands/audit-command.js';
import { auditTarget, resolveAuditSettings, safeUrl } from '../src/master/audit-trail.js';
import { AuditRecorder } from '../src/master/http/audit-recorder.js';
import { systemClock } from '../src/shared/clock.js';
import { ROUTES, type RouteName } from '../src/protocol/routes.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import type { AuditRow } from '../src/store/store.js';
import { isNotReady } from '../src/client/master-client.js';
import { expectError, RELEASE, request } from './support/helpers.js';
import { runHox } from './support/hox-cli.js';
import { describeEachStore } from './support/store-matrix.js';

/** Every stored row, straight from the store (not through the API's access rules). */
async function storedRows(m: TestMaster): Promise<AuditRow[]> {
  return m.master.store.transaction((tx) => tx.listAudit({ limit: 10_000 }));
}

/** A raw POST: bodies the typed client would refuse to send. */
async function post(m: TestMaster, path: string, body: string, token: string | undefined): Promise<number> {
  const response = await fetch(`${m.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body,
  });
  await response.arrayBuffer();
  return response.status;
}

/** Reads whose path does not say so, and the reverse: each with its reason. */
const VERB_EXCEPTIONS: Partial<Record<RouteName, string>> = {
  // Issues a credential (once the platform PKI serves it): who obtained one is what an audit is for.
  instanceCertificate: 'get that issues a certificate',
  // Node telemetry: each node replaces its report every ~30 s; audited, it would fill the row cap and push people's
  // actions out of the log (200 nodes: a million rows a day).
  reportPartitionUsage: 'put of telemetry',
  reportPromiseResults: 'put of telemetry',
  reportNodeMetrics: 'put of telemetry',
  reportAlerts: "put of telemetry (a monitor's evaluation every minute; the alert table records openings)",
  reportRetainedSets: 'put of telemetry (each set is audited with its own report at destroy time)',
};

describe('audit declarations', () => {
  it('every route declares audit, and it agrees with the verb of its path but for the listed exceptions', () => {
    for (const [name, route] of Object.entries(ROUTES) as [RouteName, (typeof ROUTES)[RouteName]][]) {
      expect(typeof route.audit, name).toBe('boolean');
      const verb = /^\/(?:slapos|hox)\.(\w+)\./.exec(route.path)?.[1];
      const mutating = verb === 'post' || verb === 'put' || verb === 'remove';
      if (VERB_EXCEPTIONS[name] === undefined) expect(route.audit, `${name} (${route.path})`).toBe(mutating);
      else expect(route.audit, `${name} is listed as an exception`).toBe(!mutating);
    }
  });

  it('keeps ids and names only: no value, message or credential of a body reaches a target', () => {
    const target = auditTarget({
      title: 'db',
      software_release_uri: 'https://bob:s3cr3t@releases.example.org/r.tgz?token=abc#frag',
      parameters: { password: 'hunter2', 'admin-user': 'root' },
      message: 'the password is hunter2',
      token: 'hox_user_x',
      tioxml: '<secret/>',
    });
    expect(target).toEqual({
      title: 'db',
      software_release_uri: 'https://releases.example.org/r.tgz',
      parameter_keys: ['admin-user', 'password'],
    });
    expect(safeUrl('demo?x=1')).toBe('demo');
    expect(auditTarget('not an object')).toEqual({});
  });

  it('retention settings must be positive integers', () => {
    expect(resolveAuditSettings()).toEqual({
      maxAgeMs: 90 * 86_400_000,
      maxRows: 1_000_000,
      pruneIntervalMs: 3_600_000,
    });
    expect(() => resolveAuditSettings({ maxRows: 0 })).toThrow(/audit.maxRows/);
    expect(() => resolveAuditSettings({ maxAgeMs: 1.5 })).toThrow(/audit.maxAgeMs/);
  });

  it('hox audit --since takes a duration or a time', () => {
    const now = Date.parse('2026-12-02T10:00:00.000Z');
    expect(parseSince('2h', now)).toBe('2026-12-02T08:00:00.000Z');
    expect(parseSince('7d', now)).toBe('2026-11-25T10:00:00.000Z');
    expect(parseSince('2026-12-01T09:30:00Z', now)).toBe('2026-12-01T09:30:00.000Z');
    expect(() => parseSince('yesterday', now)).toThrow(/neither a duration/);
  });
});

describeEachStore('audit trail', (env) => {
  it('records who, what, from where and the result of each mutating call, success or failure; reads leave nothing', async () => {
    const m = await env.startMaster();
    await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const { token: bobToken } = await m.admin.call('createUser', { name: 'bob' });
    const alice = m.admin.withToken(aliceToken);
    const bob = m.admin.withToken(bobToken);
    const before = (await storedRows(m)).length;

    const secret = 'pw-7f3a9c1e-never-logged';
    const doc = await request(alice, 'shop', {
      parameters: { db_password: secret, greeting: 'hi' },
      sla_parameters: { computer_guid: 'n1' },
    });
    await expectError(alice.call('createUser', { name: 'mallory' }), 'HOX_FORBIDDEN');
    await expectError(m.admin.call('createUser', { name: 'alice' }), 'HOX_CONFLICT');
    expect(await post(m, ROUTES.requestInstance.path, '{"title": 5}', bobToken)).toBe(400);
    expect(
      await post(
        m,
        ROUTES.supply.path,
        '{"computer_guid": "n1", "software_release_uri": "x"}',
        'hox_admin_not-a-real-token-at-all-000000000000',
      ),
    ).toBe(401);
    // Reads: no entry.
    await alice.call('listTreeStatus', {});
    await alice.call('getInstance', { instance_guid: doc.instance_guid });
    await bob.call('whoami', {});

    const rows = (await storedRows(m)).slice(before);
    const brief = rows.map((r) => [r.actorKind, r.action, r.result, r.status]);
    expect(brief).toEqual([
      ['user', 'requestInstance', 'ok', 200],
      ['user', 'createUser', 'HOX_FORBIDDEN', 403],
      ['admin', 'createUser', 'HOX_CONFLICT', 409],
      ['user', 'requestInstance', 'HOX_BAD_REQUEST', 400],
      ['unauthenticated', 'supply', 'HOX_UNAUTHENTICATED', 401],
    ]);
    const [requested] = rows;
    expect(requested!.address).toBe('127.0.0.1');
    expect(requested!.target).toEqual({
      title: 'shop',
      software_type: 'default',
      shared: false,
      software_release_uri: RELEASE,
      parameter_keys: ['db_password', 'greeting'],
    });
    expect(Math.abs(requested!.atMs - Date.now())).toBeLessThan(3_600_000);

    // Through the API: names for users; the admin reads all, a user its own only.
    const all = (await m.admin.call('listAuditLog', { limit: 10_000 })).result_list;
    const aliceRequest = all.find((e) => e.action === 'requestInstance' && e.result === 'ok');
    expect(aliceRequest).toMatchObject({ actor_kind: 'user', actor: 'alice', status: 200 });
    const own = (await alice.call('listAuditLog', {})).result_list;
    expect(own.map((e) => e.action)).toEqual(['requestInstance', 'createUser']);
    expect(new Set(own.map((e) => e.actor))).toEqual(new Set(['alice']));
    expect((await alice.call('listAuditLog', { user: 'alice' })).result_list).toHaveLength(2);
    await expectError(alice.call('listAuditLog', { user: 'bob' }), 'HOX_FORBIDDEN');
    const bobs = (await m.admin.call('listAuditLog', { user: 'bob' })).result_list;
    expect(bobs.map((e) => [e.actor, e.result])).toEqual([['bob', 'HOX_BAD_REQUEST']]);
    expect((await m.admin.call('listAuditLog', { limit: 2 })).result_list.map((e) => e.action)).toEqual([
      'requestInstance',
      'supply',
    ]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await m.admin.call('listAuditLog', { since: future })).result_list).toEqual([]);
    await expectError(m.admin.call('listAuditLog', { since: 'soon' }), 'HOX_BAD_REQUEST');
    await expectError(m.admin.call('listAuditLog', { user: 'nobody' }), 'HOX_NOT_FOUND');
  });

  it('never stores a secret: tokens, parameter values, messages and credentials in URLs stay out', async () => {
    const m = await env.startMaster();
    const node = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const secrets = ['pw-4b1d-secret-value', 'tok-99c2-secret-value', 'msg-5e6f-secret-value', 'url-8a8a-secret'];
    const doc = await request(alice, 'db', {
      parameters: { password: secrets[0]!, api_token: secrets[1]! },
      sla_parameters: { computer_guid: 'n1' },
    });
    await node.client.call('publishConnectionParameters', {
      instance_guid: doc.instance_guid,
      connection_parameter_dict: { url: `postgres://u:${secrets[0]!}@h/db`, password: secrets[1]! },
    });
    await node.client.call('reportInstanceError', { instance_guid: doc.instance_guid, message: secrets[2]! });
    // No node runs that release: accepted, it waits (SlapOS's 102); its URL's credentials stay out all the same.
    const waiting = await alice.call('requestInstance', {
      title: 'other',
      software_release_uri: `https://user:${secrets[3]!}@releases.example.org/x.tgz?key=${secrets[3]!}`,
      software_type: 'default',
      parameters: { password: secrets[0]! },
    });
    expect(isNotReady(waiting)).toBe(true);
    const issued = await node.client.call('issueInstanceToken', { instance_guid: doc.instance_guid });
    const { token: reg } = await m.admin.call('createRegistrationToken', {});
    await m.admin.withToken(reg).call('registerNode', { computer_guid: 'n2' });

    const rows = await storedRows(m);
    expect(rows.map((r) => r.action)).toEqual(
      expect.arrayContaining(['publishConnectionParameters', 'reportInstanceError', 'issueInstanceToken']),
    );
    const text = JSON.stringify(rows);
    for (const secret of [...secrets, m.adminToken, aliceToken, node.token, issued.token, reg])
      expect(text, 'a secret reached the audit trail').not.toContain(secret);
    const publish = rows.find((r) => r.action === 'publishConnectionParameters');
    expect(publish).toMatchObject({ actorKind: 'node', actor: 'n1' });
    expect(publish!.target.parameter_keys).toEqual(['password', 'url']);
    expect(rows.find((r) => r.action === 'registerNode')).toMatchObject({ actorKind: 'registration', actor: null });
  });

  it('writes an entry for every audited route even when its body is refused, and none for the others', async () => {
    const m = await env.startMaster();
    for (const [name, route] of Object.entries(ROUTES) as [RouteName, (typeof ROUTES)[RouteName]][]) {
      const before = (await storedRows(m)).length;
      // An unknown field: refused by every closed schema before any handler runs.
      expect(await post(m, route.path, '{"not_a_field": 1}', m.adminToken), name).toBe(400);
      const after = await storedRows(m);
      if (route.audit) {
        expect(after.length, `${name} is audited but wrote no entry`).toBe(before + 1);
        expect(after.at(-1), name).toMatchObject({ action: name, actorKind: 'admin', result: 'HOX_BAD_REQUEST' });
      } else expect(after.length, `${name} is a read but wrote an entry`).toBe(before);
    }
  });

  it('audits artifact uploads, refused or stored, and not their reads', async () => {
    const m = await env.startMaster();
    const bytes = Buffer.from('artifact body');
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const put = (body: Buffer, token: string) =>
      fetch(`${m.url}/hox/v1/artifacts/${sha}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(body),
      });
    expect((await put(Buffer.from('other bytes'), m.adminToken)).status).toBe(400);
    expect((await put(bytes, m.adminToken)).status).toBe(200);
    const read = await fetch(`${m.url}/hox/v1/artifacts/${sha}`, {
      headers: { authorization: `Bearer ${m.adminToken}` },
    });
    expect(read.status).toBe(200);
    await read.arrayBuffer();
    const rows = (await storedRows(m)).filter((r) => r.action === 'uploadArtifact');
    expect(rows.map((r) => [r.result, r.target.sha256])).toEqual([
      ['HOX_BAD_REQUEST', sha],
      ['ok', sha],
    ]);
    expect(JSON.stringify(rows)).not.toContain('artifact body');
  });

  it('the master prunes on its own, every pruneIntervalMs, down to maxRows', async () => {
    const m = await env.startMaster({ audit: { maxRows: 2, pruneIntervalMs: 100 } });
    for (let i = 0; i < 5; i++) await m.admin.call('createRegistrationToken', {});
    const newest = (await storedRows(m)).slice(-2).map((r) => r.seq);
    let rows = await storedRows(m);
    for (let i = 0; i < 100 && rows.length > 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      rows = await storedRows(m);
    }
    expect(rows.map((r) => r.seq)).toEqual(newest);
  });

  it('prunes by age and by count, keeping the newest', async () => {
    let nowMs = Date.parse('2026-01-01T00:00:00.000Z');
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    for (let i = 0; i < 5; i++) {
      await m.admin.call('createRegistrationToken', {});
      nowMs += 86_400_000;
    }
    const store = m.master.store;
    expect(await store.pruneAudit(Date.parse('2026-01-03T00:00:00.000Z'), 10)).toBe(2);
    expect((await storedRows(m)).map((r) => new Date(r.atMs).toISOString().slice(0, 10))).toEqual([
      '2026-01-03',
      '2026-01-04',
      '2026-01-05',
    ]);
    expect(await store.pruneAudit(0, 1)).toBe(2);
    expect((await storedRows(m)).map((r) => new Date(r.atMs).toISOString().slice(0, 10))).toEqual(['2026-01-05']);
  });
});

describe('audit declarations on the server', () => {
  it('refuses a route that does not declare whether it is audited, before it serves anything', async () => {
    const m = await startTestMaster();
    try {
      const recorder = new AuditRecorder({
        store: m.master.store,
        clock: systemClock,
        logger: pino({ level: 'silent' }),
        adminTokenHash: '0'.repeat(64),
      });
      const app = Fastify();
      app.addHook('onRoute', recorder.checkRoute);
      expect(() => app.post('/hox.post.v1.something_new', () => ({}))).toThrow(/does not declare config.audit/);
      expect(() => app.post('/hox.post.v1.declared', { config: { audit: true } }, () => ({}))).not.toThrow();
      app.get('/health', () => ({ status: 'ok' }));
      await app.close();
    } finally {
      await m.stop();
    }
  });
});

describe('hox audit', () => {
  it('prints one aligned line per entry, and a stable JSON array with --json; a user sees only its own', async () => {
    const m = await startTestMaster();
    const home = mkdtempSync(join(tmpdir(), 'hox-audit-cli-'));
    try {
      const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
      await expectError(m.admin.withToken(aliceToken).call('createRegistrationToken', {}), 'HOX_FORBIDDEN');
      const base = { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: m.url };
      const human = await runHox(['audit', '--since', '1h'], { ...base, HOX_TOKEN: m.adminToken });
      expect(human.code, human.stderr).toBe(0);
      const lines = human.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^TIME\s+WHO\s+FROM\s+ACTION\s+RESULT\s+TARGET$/);
      expect(lines.slice(1)).toHaveLength(2);
      expect(lines[1]).toMatch(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}admin\s+127\.0\.0\.1\s+createUser\s+ok\s+name=alice$/,
      );
      expect(lines[2]).toMatch(/user alice\s+127\.0\.0\.1\s+createRegistrationToken\s+HOX_FORBIDDEN \(403\)/);
      // Aligned: the columns start at the same offsets on every line.
      expect(lines[1]!.indexOf('127.0.0.1')).toBe(lines[2]!.indexOf('127.0.0.1'));

      const json = await runHox(['audit', '--json', '--limit', '1'], { ...base, HOX_TOKEN: m.adminToken });
      expect(json.code, json.stderr).toBe(0);
      const entries = JSON.parse(json.stdout) as Record<string, unknown>[];
      expect(entries).toHaveLength(1);
      expect(Object.keys(entries[0]!).sort()).toEqual(
        ['action', 'actor', 'actor_kind', 'address', 'at', 'result', 'seq', 'status', 'target'].sort(),
      );

      const mine = await runHox(['audit', '--json'], { ...base, HOX_TOKEN: aliceToken });
      expect(mine.code, mine.stderr).toBe(0);
      expect((JSON.parse(mine.stdout) as { actor: string }[]).map((e) => e.actor)).toEqual(['alice']);
      const other = await runHox(['audit', '--user', 'admin'], { ...base, HOX_TOKEN: aliceToken });
      expect(other.code).not.toBe(0);
      expect(other.stderr).toContain('may read only its own audit entries');
    } finally {
      rmSync(home, { recursive: true, force: true });
      await m.stop();
    }
  });
});
