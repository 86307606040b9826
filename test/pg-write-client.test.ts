import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWriteClient, type WriteClient } from '../src/testing/pg-write-client.js';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { dualPrimaryOverlaps, gapAround, writeGaps, type AckedWrite } from '../src/testing/write-history.js';

const HOST = '127.0.0.1';

async function admin<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Acks by `member` after the first `from` acks. */
function acksOn(client: WriteClient, member: string, from = 0): number {
  return client
    .acked()
    .slice(from)
    .filter((ack) => ack.member === member).length;
}

/** Ends the write client's sessions on a server, as a failing member would. */
async function dropWriterSessions(url: string, database: string): Promise<void> {
  await admin(
    url,
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'hox-write-client'`,
    [database],
  );
}

describe('pg-write-client', () => {
  let server: PostgresServer;
  let seq = 0;
  const writers: WriteClient[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await Promise.all(writers.map((writer) => writer.stop()));
    await server?.stop();
  });

  async function writerOn(servers: PostgresServer[], extra: { statementTimeoutMs?: number } = {}) {
    seq += 1;
    const database = `writes_${seq}`;
    for (const s of servers) await createDatabase(s, database);
    const writer = startWriteClient({
      targets: servers.map((s) => ({ host: HOST, port: s.port })),
      user: 'hox',
      database,
      connectTimeoutMs: 300,
      ...extra,
    });
    writers.push(writer);
    return { writer, database };
  }

  it('writes continuously, every ack is on the server, and a deleted row is reported lost', async () => {
    const { writer, database } = await writerOn([server]);
    const primary = { host: HOST, port: server.port };
    await until('50 acks', () => writer.acked().length >= 50);
    const seen = writer.acked().length;
    await until('more acks', () => writer.acked().length >= seen + 20);

    const acks = writer.acked();
    expect(acks.map((ack) => ack.id)).toEqual(acks.map((_, i) => i + 1));
    expect(acks.every((ack) => ack.member === `${HOST}:${server.port}` && ack.timeline === 1)).toBe(true);
    expect(acks.every((ack) => ack.ackedAtMs >= ack.sentAtMs)).toBe(true);
    expect(await writer.ackedLost(primary)).toEqual([]);

    const victim = acks[10]!.id;
    const url = server.connectionString.replace(/\/postgres$/, `/${database}`);
    await admin(url, 'delete from hox_writes where id = $1', [victim]);
    expect(await writer.ackedLost(primary)).toEqual([victim]);

    const rows = await admin<{ member: string }>(url, 'select distinct member from hox_writes');
    expect(rows).toEqual([{ member: `${HOST}:${server.port}` }]);
    expect(writer.dualPrimary()).toEqual([]);
    expect(writer.stats().errors).toBe(0);

    await writer.stop();
    const after = writer.acked().length;
    await sleep(100);
    expect(writer.acked().length).toBe(after);
  });

  it('a frozen then resumed server gives one gap, timed-out commits and errors, and nothing acked is lost', async () => {
    const { writer, database } = await writerOn([server], { statementTimeoutMs: 300 });
    await until('20 acks', () => writer.acked().length >= 20);
    const pidFile = path.join(server.dataDir, 'pgdata', 'postmaster.pid');
    const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    const [session] = await admin<{ pid: number }>(
      server.connectionString,
      `select pid from pg_stat_activity where datname = $1 and application_name = 'hox-write-client'`,
      [database],
    );
    // A frozen machine: the postmaster (no new session) and the writer's backend (its commit hangs).
    const frozen = [postmaster, session!.pid];
    let faultAt = 0;
    try {
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      await sleep(20); // answers already sent reach the writer first
      faultAt = performance.now();
      await sleep(1_000);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
    }
    await writer.waitForAck(faultAt, 20_000);
    const gap = writer.gapAround(faultAt)!;
    expect(gap.durationMs).toBeGreaterThanOrEqual(900);
    expect(gap.fromMs).toBeLessThanOrEqual(faultAt);
    expect(gap.toMs).toBeGreaterThan(faultAt + 900);
    const stats = writer.stats();
    expect(stats.unknown).toBe(1);
    expect(stats.errors).toBeGreaterThan(1);
    expect(stats.maxGapMs).toBeGreaterThanOrEqual(900);
    expect(stats.gaps.some((g) => g.fromMs === gap.fromMs && g.toMs === gap.toMs)).toBe(true);
    expect(await writer.ackedLost({ host: HOST, port: server.port })).toEqual([]);
  });

  it('a server stopped and replaced by an empty one: a gap, errors, and every earlier ack reported lost', async () => {
    const other = await startPostgres();
    let replacement: PostgresServer | undefined;
    try {
      const { writer, database } = await writerOn([other]);
      await until('20 acks', () => writer.acked().length >= 20);
      const port = other.port;
      await other.stop();
      await sleep(20); // answers sent before the shutdown reach the writer first
      const faultAt = performance.now();
      await sleep(300);
      const replacedAt = performance.now();
      replacement = await startPostgres({ port });
      await createDatabase(replacement, database);
      await writer.waitForAck(replacedAt, 30_000);
      expect(writer.gapAround(faultAt)!.durationMs).toBeGreaterThanOrEqual(300);
      expect(writer.stats().errors).toBeGreaterThan(0);
      await writer.stop();
      const acks = writer.acked();
      const onOld = acks.filter((ack) => ack.ackedAtMs < replacedAt).map((ack) => ack.id);
      expect(onOld.length).toBeGreaterThanOrEqual(20);
      expect(onOld.length).toBeLessThan(acks.length);
      expect(await writer.ackedLost({ host: HOST, port })).toEqual(onOld);
    } finally {
      await other.stop();
      await replacement?.stop();
    }
  });

  it('detects two servers acking alternately', async () => {
    const second = await startPostgres();
    try {
      const { writer, database } = await writerOn([server, second]);
      const [a, b] = [`${HOST}:${server.port}`, `${HOST}:${second.port}`];
      await until('acks on A', () => acksOn(writer, a) >= 20);
      expect(writer.dualPrimary()).toEqual([]);

      // A refuses new writing sessions for a while, so the client moves to B; then the other way round.
      await admin(server.connectionString, `alter database ${database} set default_transaction_read_only = on`);
      await dropWriterSessions(server.connectionString, database);
      await until('acks on B', () => acksOn(writer, b) >= 20);
      await admin(server.connectionString, `alter database ${database} reset default_transaction_read_only`);
      await admin(second.connectionString, `alter database ${database} set default_transaction_read_only = on`);
      const mark = writer.acked().length;
      await dropWriterSessions(second.connectionString, database);
      await until('acks on A again', () => acksOn(writer, a, mark) >= 20);

      const overlaps = writer.dualPrimary();
      expect(overlaps.map((o) => [o.member, o.otherMember])).toEqual([
        [b, a],
        [a, b],
      ]);
      expect(overlaps.every((o) => o.timeline === 1 && o.otherTimeline === 1)).toBe(true);
      // The writes B acked are not on A: ackedLost against A reports exactly them.
      await writer.stop();
      const onB = writer
        .acked()
        .filter((ack) => ack.member === b)
        .map((ack) => ack.id);
      expect(await writer.ackedLost({ host: HOST, port: server.port })).toEqual(onB);
    } finally {
      await second.stop();
    }
  });

  it('measures pauses between acks and the gap around a fault time', () => {
    const at = (id: number, ackedAtMs: number): AckedWrite => ({
      id,
      member: 'a',
      timeline: 1,
      sentAtMs: ackedAtMs - 1,
      ackedAtMs,
      ackedAt: new Date(),
    });
    const acks = [at(1, 10), at(2, 20), at(3, 500), at(4, 510)];
    expect(writeGaps(acks, 100)).toEqual({ maxGapMs: 480, gaps: [{ fromMs: 20, toMs: 500, durationMs: 480 }] });
    expect(gapAround(acks, 300, 0)).toEqual({ fromMs: 20, toMs: 500, durationMs: 480 });
    expect(gapAround(acks, 20, 0)).toEqual({ fromMs: 20, toMs: 500, durationMs: 480 });
    expect(gapAround(acks, 5, 0)).toEqual({ fromMs: 0, toMs: 10, durationMs: 10 });
    expect(gapAround(acks, 510, 0)).toBeUndefined();
  });

  it('accepts a failover to a newer timeline and flags a return to an older one', () => {
    let id = 0;
    const ack = (member: string, timeline: number): AckedWrite => {
      id += 1;
      return { id, member, timeline, sentAtMs: id, ackedAtMs: id + 0.5, ackedAt: new Date() };
    };
    const failoverAndBack = [ack('a', 1), ack('a', 1), ack('b', 2), ack('b', 2), ack('a', 3)];
    expect(dualPrimaryOverlaps(failoverAndBack)).toEqual([]);

    const splitBrain = [ack('a', 1), ack('b', 2), ack('a', 1), ack('c', 2)];
    expect(dualPrimaryOverlaps(splitBrain)).toEqual([
      { member: 'a', timeline: 1, id: 8, ackedAtMs: 8.5, otherMember: 'b', otherTimeline: 2, otherFirstAckMs: 7.5 },
      { member: 'c', timeline: 2, id: 9, ackedAtMs: 9.5, otherMember: 'b', otherTimeline: 2, otherFirstAckMs: 7.5 },
    ]);
  });
});
