/**
 * hyper_db end to end, black box: a master, three `hox node` processes, the
 * built-in release, real PostgreSQL 15 members, a client writing all along.
 * The fast subset of ../shared/specs/hyperdb-scenarios.md (numbers below);
 * the long ones run from test-long/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  healthy,
  startHyperDbPlatform,
  type ClusterStatus,
  type HyperDbPlatform,
} from '../src/testing/hyperdb-platform.js';
import { startWriteClient, type WriteClient, type WriteTarget } from '../src/testing/pg-write-client.js';

const CLUSTER = 'db';
let p: HyperDbPlatform;
let db: Record<string, unknown>;
let writer: WriteClient | undefined;
const report: string[] = [];

const targetsOf = (s: ClusterStatus): WriteTarget[] => s.members.map((m) => ({ host: m.host, port: m.port }));
const primaryOf = (s: ClusterStatus) => {
  const m = s.members.find((x) => x.name === s.primary);
  if (m === undefined) throw new Error(`no primary in ${JSON.stringify(s)}`);
  return m;
};

async function query(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await client.query<Record<string, unknown>>(sql, params);
  } finally {
    await client.end();
  }
}

function memberUrl(m: { host: string; port: number }): string {
  return `postgresql://${String(db.user)}:${encodeURIComponent(String(db.password))}@${m.host}:${m.port}/${String(db.dbname)}`;
}

async function keeperPid(member: string): Promise<number | undefined> {
  for (const pid of await p.memberPids(CLUSTER, member)) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes('keeper')) return pid;
  }
  return undefined;
}

async function startWriter(s: ClusterStatus): Promise<WriteClient> {
  const w = startWriteClient({
    targets: targetsOf(s),
    user: String(db.user),
    password: String(db.password),
    database: String(db.dbname),
    connectTimeoutMs: 1000,
    intervalMs: 5,
    ...(process.env.HOX_TEST_VERBOSE ? { log: (line: string) => process.stderr.write(`writer: ${line}\n`) } : {}),
  });
  await w.waitForAck(performance.now(), 30_000);
  return w;
}

async function firstAckFromOther(w: WriteClient, member: string, afterMs: number, timeoutMs: number) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const found = w.acked().find((a) => a.ackedAtMs > afterMs && a.member !== member);
    if (found !== undefined) return found;
    if (performance.now() > end) throw new Error(`no write acknowledged by a member other than ${member}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(process.getuid?.() !== 0)('hyper_db (needs root: members run as partition users)', () => {
  beforeAll(async () => {
    p = await startHyperDbPlatform({ nodes: 3, partitions: 2 });
  }, 120_000);

  afterAll(async () => {
    await writer?.stop();
    await p?.stop();
    if (report.length > 0) process.stderr.write(`hyper_db figures:\n  ${report.join('\n  ')}\n`);
  }, 120_000);

  it('1: bootstraps 3 members on 3 nodes; a table created on the primary reaches both standbys; standbys refuse writes', async () => {
    const t0 = performance.now();
    await p.requestCluster(CLUSTER, {});
    const s = await p.waitForCluster(CLUSTER, healthy(3), 120_000);
    report.push(`bootstrap to healthy: ${Math.round(performance.now() - t0)} ms`);
    const [tree] = (await p.admin.call('listTreeStatus', { title: CLUSTER })).result_list;
    const members = tree!.instance_list.filter((i) => i.software_type === 'member');
    expect(new Set(members.map((m) => m.computer_guid)).size).toBe(3);

    db = await p.requestDatabase(CLUSTER, 'app');
    expect(db.database_url).toMatch(/target_session_attrs=read-write/);
    const primary = primaryOf(s);
    await query(memberUrl(primary), 'CREATE TABLE notes (id int primary key, body text)');
    await query(memberUrl(primary), "INSERT INTO notes VALUES (1, 'hello')");
    for (const standby of s.members.filter((m) => m.name !== s.primary)) {
      const end = Date.now() + 10_000;
      let rows = 0;
      while (rows === 0 && Date.now() < end) {
        rows = (await query(memberUrl(standby), 'SELECT 1 FROM notes WHERE id = 1').catch(() => ({ rowCount: 0 })))
          .rowCount!;
      }
      expect(rows, `${standby.name} has the row`).toBe(1);
      await expect(query(memberUrl(standby), "INSERT INTO notes VALUES (2, 'no')")).rejects.toThrow(/read-only/);
    }
    // The read-write endpoint reaches the primary; the database's role cannot touch another database.
    const viaRouter = await query(String(db.rw_url), 'SELECT pg_is_in_recovery() AS r');
    expect(viaRouter.rows[0]?.r).toBe(false);
    await expect(query(String(db.rw_url).replace(/\/app$/, '/postgres'), 'SELECT 1')).rejects.toThrow(
      /permission denied|not permitted|no pg_hba/i,
    );
  }, 180_000);

  it('11/12: switchover under write load hands over without losing a commit; an ineligible target is refused', async () => {
    const before = await p.waitForCluster(CLUSTER, healthy(3), 60_000);
    const keepers = new Map<string, number | undefined>();
    for (const m of before.members) keepers.set(m.name, await keeperPid(m.name));
    writer = await startWriter(before);

    await p.requestCluster(CLUSTER, { switchover: { id: 'bad-1', to: 'member-9' } });
    const refused = await p.waitForCluster(CLUSTER, (s) => s.switchover?.id === 'bad-1', 30_000);
    expect(refused.switchover?.result).toBe('refused');
    expect(refused.switchover?.reason).toMatch(/member-9.*not a member/);
    expect(refused.primary).toBe(before.primary);

    const target = before.members.find((m) => m.name !== before.primary)!.name;
    const tSwitch = performance.now();
    await p.requestCluster(CLUSTER, { switchover: { id: 'sw-1', to: target } });
    const after = await p.waitForCluster(CLUSTER, (s) => s.switchover?.id === 'sw-1', 60_000);
    expect(after.switchover?.result, JSON.stringify(after.switchover)).toBe('done');
    const settled = await p.waitForCluster(CLUSTER, (s) => healthy(3)(s) && s.primary === target, 60_000);
    await writer.waitForAck(performance.now(), 30_000);
    const gap = Math.max(
      0,
      ...writer
        .stats()
        .gaps.filter((g) => g.toMs > tSwitch)
        .map((g) => g.durationMs),
    );
    report.push(`switchover write gap: ${Math.round(gap)} ms (keeper's handover: ${after.switchover?.durationMs} ms)`);
    await writer.stop();
    expect(await writer.ackedLost(primaryOf(settled))).toEqual([]);
    expect(writer.dualPrimary()).toEqual([]);
    writer = undefined;
    // Parameter changes reach the keepers through a reloaded file: no keeper was restarted.
    for (const m of before.members) expect(await keeperPid(m.name), `${m.name}'s keeper pid`).toBe(keepers.get(m.name));
  }, 240_000);

  it('3/9: member death (agent, keeper and postmaster killed): a standby takes over, nothing acked is lost, the old member rejoins', async () => {
    const before = await p.waitForCluster(CLUSTER, healthy(3), 60_000);
    writer = await startWriter(before);
    const victim = primaryOf(before);
    const [tree] = (await p.admin.call('listTreeStatus', { title: CLUSTER })).result_list;
    const node = tree!.instance_list.find((i) => i.title === victim.name)!.computer_guid!;
    p.killAgent(node);
    const pids = await p.memberPids(CLUSTER, victim.name);
    expect(pids.length).toBeGreaterThan(1);
    const tKill = performance.now();
    for (const pid of pids) process.kill(pid, 'SIGKILL');

    // An ack already on its way when the member died may still arrive: wait for one from another member.
    const victimAddress = `${victim.host}:${victim.port}`;
    const ack = await firstAckFromOther(writer, victimAddress, tKill, 60_000);
    const lastBefore = writer
      .acked()
      .filter((a) => a.member === victimAddress)
      .at(-1);
    report.push(`member death write gap: ${Math.round(ack.ackedAtMs - (lastBefore?.ackedAtMs ?? tKill))} ms`);

    p.startAgent(node);
    const rejoined = await p.waitForCluster(CLUSTER, (s) => healthy(3)(s) && s.primary !== victim.name, 120_000);
    await writer.stop();
    expect(await writer.ackedLost(primaryOf(rejoined))).toEqual([]);
    expect(writer.dualPrimary()).toEqual([]);
    writer = undefined;
    const statusLog = join(await p.partitionPath(CLUSTER, victim.name), 'keeper-state.json');
    const events = (JSON.parse(readFileSync(statusLog, 'utf8')) as { events: { kind: string }[] }).events;
    expect(
      events.some((e) => e.kind === 'rejoin' || e.kind === 'reclone'),
      JSON.stringify(events),
    ).toBe(true);
  }, 300_000);
});
