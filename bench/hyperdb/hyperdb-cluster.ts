/**
 * hyper_db as a ClusterUnderTest: the real platform (a master and four
 * `hox node` processes, src/testing/hyperdb-platform.ts; the cluster's root
 * lands on the first, one member on each of the others), a 3-member cluster
 * with its defaults, and a database (shared instance) for the write client.
 * Member death kills the member's node agent first (so nothing restarts it),
 * then its keeper and every PostgreSQL process of the member.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  healthy,
  startHyperDbPlatform,
  type ClusterStatus,
  type HyperDbPlatform,
} from '../../src/testing/hyperdb-platform.js';
import type { ClusterCredentials, ClusterMember, ClusterUnderTest } from './cluster-under-test.js';

const TITLE = 'bench-db';

export class HyperDbCluster implements ClusterUnderTest {
  readonly name = 'hyper_db';
  private platform: HyperDbPlatform | undefined;
  private status: ClusterStatus | undefined;
  private creds: ClusterCredentials | undefined;
  private rw: { host: string; port: number } | undefined;
  private readonly killedNodes = new Map<string, string>();
  /** A primary killed since the last healthy status: it must not be the primary of the next one. */
  private deposed: string | null = null;

  constructor(private readonly options: { log?: (line: string) => void; parameters?: Record<string, unknown> } = {}) {}

  private get p(): HyperDbPlatform {
    if (this.platform === undefined) throw new Error('hyper_db cluster not started');
    return this.platform;
  }

  async start(): Promise<void> {
    this.platform = await startHyperDbPlatform({ nodes: 4, partitions: 2 });
    await this.p.requestCluster(TITLE, this.options.parameters ?? {});
    this.status = await this.p.waitForCluster(TITLE, healthy(3), 120_000);
    const db = await this.p.requestDatabase(TITLE, 'bench');
    this.creds = {
      user: String(db.user),
      password: String(db.password),
      database: String(db.dbname),
      ssl: { ca: String(db.ca_cert) },
    };
    this.rw = { host: String(db.host), port: Number(db.port) };
    this.options.log?.(`cluster ready, primary ${this.status.primary ?? '?'}`);
  }

  members(): ClusterMember[] {
    return (this.status?.members ?? []).map((m) => ({ name: m.name, host: m.host, port: m.port }));
  }

  /** The router's read-write endpoint (PgBouncer), as published to the database's shared instance. */
  readWriteEndpoint(): { host: string; port: number } {
    if (this.rw === undefined) throw new Error('hyper_db cluster not started');
    return this.rw;
  }

  credentials(): ClusterCredentials {
    if (this.creds === undefined) throw new Error('hyper_db cluster not started');
    return this.creds;
  }

  /** The primary as published; a published primary that was just killed is stale: wait for the next one. */
  async primary(): Promise<string> {
    const s = await this.p.waitForCluster(TITLE, (x) => x.primary !== null && !this.killedNodes.has(x.primary), 30_000);
    this.status = s;
    if (s.primary === null) throw new Error('hyper_db: no primary right now');
    return s.primary;
  }

  private async nodeOf(member: string): Promise<string> {
    const [tree] = (await this.p.admin.call('listTreeStatus', { title: TITLE })).result_list;
    const node = tree?.instance_list.find((i) => i.title === member)?.computer_guid;
    if (node == null) throw new Error(`hyper_db: ${member} is not allocated`);
    return node;
  }

  async killMember(name: string): Promise<void> {
    const node = await this.nodeOf(name);
    if (this.status?.primary === name || (await this.p.clusterStatus(TITLE))?.primary === name) this.deposed = name;
    this.p.killAgent(node);
    this.killedNodes.set(name, node);
    for (const pid of await this.p.memberPids(TITLE, name)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async restartMember(name: string): Promise<void> {
    const node = this.killedNodes.get(name) ?? (await this.nodeOf(name));
    this.killedNodes.delete(name);
    this.p.startAgent(node);
    await Promise.resolve();
  }

  async switchover(to?: string): Promise<void> {
    const before = await this.primary();
    const id = randomUUID();
    await this.p.requestCluster(TITLE, {
      ...(this.options.parameters ?? {}),
      switchover: { id, to: to ?? null },
    });
    const s = await this.p.waitForCluster(TITLE, (x) => x.switchover?.id === id, 60_000);
    if (s.switchover?.result !== 'done') {
      this.options.log?.(await this.p.logs(TITLE));
      throw new Error(`hyper_db switchover ${s.switchover?.result ?? '?'}: ${s.switchover?.reason ?? ''}`);
    }
    await this.p.waitForCluster(TITLE, (x) => x.primary !== null && x.primary !== before, 30_000);
  }

  /** The processes of the member's partition (found by their working directory) that are PostgreSQL's. */
  async postgresPids(name: string): Promise<number[]> {
    const pids: number[] = [];
    for (const pid of await this.p.memberPids(TITLE, name)) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') pids.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  /** Every member's keeper and PostgreSQL log tail and the router's (the platform's failure report). */
  async logTail(): Promise<string> {
    return this.p.logs(TITLE);
  }

  async dataDir(name: string): Promise<string> {
    return path.join(await this.p.partitionPath(TITLE, name), 'pgdata');
  }

  /**
   * Healthy as published, and no longer led by a member killed since: the published status lags the
   * cluster by a poll and a publication, so right after a kill it still shows the dead primary healthy.
   */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deposed = this.deposed;
    this.status = await this.p.waitForCluster(
      TITLE,
      (s) => healthy(3)(s) && (deposed === null || s.primary !== deposed),
      timeoutMs,
    );
    this.deposed = null;
  }

  async stop(): Promise<void> {
    const p = this.platform;
    this.platform = undefined;
    await p?.stop();
  }
}
