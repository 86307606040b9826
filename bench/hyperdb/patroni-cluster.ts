/**
 * Patroni 3.0.2 (Debian 12) as a {@link ClusterUnderTest}: three members on
 * 127.0.0.21/22/23, Patroni's built-in Raft as the DCS (no etcd), Patroni's
 * default timings unless told otherwise, synchronous_mode on (see
 * patroni-config.ts for what that does in 3.0.2).
 *
 * Everything lives under one temporary directory owned by the `postgres`
 * system user, which runs Patroni (and so PostgreSQL, which refuses root)
 * when this process is root. `stop()` kills every process and removes the
 * directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { findPostgresBinDir } from '../../src/testing/postgres-server.js';
import type { ClusterCredentials, ClusterMember, ClusterUnderTest } from './cluster-under-test.js';
import {
  DEFAULT_PATRONI_TIMINGS,
  patroniConfig,
  pgDataDir,
  SUPERUSER,
  type PatroniClusterLayout,
  type PatroniMemberLayout,
  type PatroniTimings,
} from './patroni-config.js';
import { ensurePatroni } from './patroni-install.js';
import { killTrees, postmasterPid, processTree, signalAll, waitGone } from './process-tree.js';

/** Options of {@link PatroniCluster}. */
export interface PatroniClusterOptions {
  /** @default Patroni's: ttl 30 s, loop_wait 10 s, retry_timeout 10 s */
  timings?: Partial<PatroniTimings>;
  /** One loopback address per member. @default ['127.0.0.21', '127.0.0.22', '127.0.0.23'] */
  hosts?: readonly string[];
  /** Ports, the same on every member's address. @default 5432, 8008, 5010 */
  pgPort?: number;
  restPort?: number;
  raftPort?: number;
  /** Bound on bootstrap (install excluded). @default 180_000 */
  bootstrapTimeoutMs?: number;
  log?: (line: string) => void;
}

interface RunAs {
  uid: number;
  gid: number;
}

/** Cluster state as `GET /cluster` of Patroni's REST API returns it (the fields used here). */
interface PatroniClusterState {
  members: { name: string; role: string; state: string }[];
}

const HTTP_TIMEOUT_MS = 2_000;
const SWITCHOVER_HTTP_TIMEOUT_MS = 60_000;
/** Bound on Patroni picking another synchronous standby after a tag change (a few loop_wait cycles). */
const SYNC_STANDBY_TIMEOUT_MS = 90_000;
const HEALTH_POLL_MS = 100;
const STOP_GRACE_MS = 30_000;
const KILL_WAIT_MS = 10_000;
const LOG_TAIL_LINES = 15;
const FAILED_RUN_LOG_LINES = 60;

function systemUser(name: string): RunAs {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error(`no '${name}' system user: install the Debian package postgresql-15`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function assertFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error) => reject(new Error(`${host}:${port} is taken: ${error.message}`, { cause: error })));
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** Patroni on three loopback addresses, with its built-in Raft. */
export class PatroniCluster implements ClusterUnderTest {
  readonly name = 'patroni';
  private readonly timings: PatroniTimings;
  private readonly hosts: readonly string[];
  private readonly ports: { pg: number; rest: number; raft: number };
  private readonly bootstrapTimeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly superuserPassword = randomBytes(12).toString('hex');
  private layout: PatroniClusterLayout | undefined;
  private runAs: RunAs | undefined;
  private readonly agents = new Map<string, ChildProcess>();
  private stopping: Promise<void> | undefined;

  constructor(options: PatroniClusterOptions = {}) {
    this.timings = { ...DEFAULT_PATRONI_TIMINGS, ...options.timings };
    this.hosts = options.hosts ?? ['127.0.0.21', '127.0.0.22', '127.0.0.23'];
    this.ports = { pg: options.pgPort ?? 5432, rest: options.restPort ?? 8008, raft: options.raftPort ?? 5010 };
    this.bootstrapTimeoutMs = options.bootstrapTimeoutMs ?? 180_000;
    this.log = options.log ?? (() => {});
  }

  async start(): Promise<void> {
    if (this.layout !== undefined) throw new Error('patroni cluster already started');
    const version = await ensurePatroni(this.log);
    const binDir = findPostgresBinDir();
    if (binDir === undefined) throw new Error('PostgreSQL binaries not found: install postgresql-15');
    for (const host of this.hosts) {
      for (const port of Object.values(this.ports)) await assertFree(host, port);
    }
    this.runAs = process.getuid?.() === 0 ? systemUser('postgres') : undefined;
    const root = await mkdtemp(path.join(os.tmpdir(), 'hox-patroni-'));
    const members = this.hosts.map((host, i) => ({
      name: `pg${i + 1}`,
      host,
      pgPort: this.ports.pg,
      restPort: this.ports.rest,
      raftPort: this.ports.raft,
      dir: path.join(root, `pg${i + 1}`),
    }));
    this.layout = {
      scope: `hox-bench-${process.pid}`,
      binDir,
      members,
      timings: this.timings,
      superuserPassword: this.superuserPassword,
      replicationPassword: randomBytes(12).toString('hex'),
    };
    this.log(`${version}, ${binDir}, ${root}, timings ${JSON.stringify(this.timings)}`);
    try {
      await this.own(root);
      for (const member of members) {
        await mkdir(member.dir, { mode: 0o700 });
        await this.own(member.dir);
        const file = path.join(member.dir, 'patroni.yml');
        await writeFile(file, JSON.stringify(patroniConfig(this.layout, member), null, 2), { mode: 0o600 });
        await this.own(file);
      }
      for (const member of members) this.spawnAgent(member);
      await this.waitHealthy(this.bootstrapTimeoutMs);
    } catch (error) {
      const tails = members.map((m) => `--- ${m.name} ---\n${this.memberLogTail(m)}`).join('\n');
      await this.stop();
      throw new Error(`patroni cluster did not bootstrap: ${describeError(error)}\n${tails}`, { cause: error });
    }
  }

  members(): ClusterMember[] {
    return this.requireLayout().members.map((m) => ({ name: m.name, host: m.host, port: m.pgPort }));
  }

  credentials(): ClusterCredentials {
    return { user: SUPERUSER, password: this.superuserPassword, database: 'postgres' };
  }

  async primary(): Promise<string> {
    const leader = (await this.clusterState()).members.find((m) => m.role === 'leader');
    if (leader === undefined) throw new Error('patroni: no leader at the moment');
    return leader.name;
  }

  async killMember(name: string): Promise<void> {
    const member = this.member(name);
    const agent = this.agents.get(name);
    if (agent === undefined) throw new Error(`patroni member '${name}' is not running`);
    this.agents.delete(name);
    await killTrees([agent.pid, postmasterPid(pgDataDir(member))], KILL_WAIT_MS);
  }

  async restartMember(name: string): Promise<void> {
    const member = this.member(name);
    if (this.agents.has(name)) throw new Error(`patroni member '${name}' is already running`);
    // A killed postmaster's children die on their own; wait so the new one finds its port and shared memory free.
    const stale = postmasterPid(pgDataDir(member));
    if (stale !== undefined) await killTrees([stale], KILL_WAIT_MS);
    this.spawnAgent(member);
  }

  /**
   * `POST /switchover`. Patroni 3.0.2 in synchronous mode takes only the synchronous standby as candidate
   * ("candidate name does not match with sync_standby"): a switchover to another member first makes that one
   * the synchronous standby (see {@link makeSyncStandby}).
   */
  async switchover(to?: string): Promise<void> {
    const leader = await this.primary();
    const release = to === undefined ? undefined : await this.makeSyncStandby(leader, to);
    try {
      await this.requestSwitchover(leader, to);
    } finally {
      await release?.();
    }
  }

  async postgresPids(name: string): Promise<number[]> {
    const postmaster = postmasterPid(pgDataDir(this.member(name)));
    return Promise.resolve(postmaster === undefined ? [] : processTree(postmaster));
  }

  /** The end of the member's patroni.log (Patroni's own log and what its PostgreSQL prints there). */
  async logTail(name: string): Promise<string> {
    return Promise.resolve(this.memberLogTail(this.member(name), FAILED_RUN_LOG_LINES));
  }

  async dataDir(name: string): Promise<string> {
    return Promise.resolve(pgDataDir(this.member(name)));
  }

  /**
   * Makes `to` the synchronous standby of `leader`, when it is not: every other standby is tagged `nosync`
   * (its configuration file rewritten, then SIGHUP), so the leader picks `to` at its next cycle. Returns what
   * clears those tags again, or undefined when nothing was changed.
   */
  private async makeSyncStandby(leader: string, to: string): Promise<(() => Promise<void>) | undefined> {
    const target = this.member(to);
    if (await this.isSyncStandby(target)) return undefined;
    const others = this.requireLayout().members.filter((m) => m.name !== leader && m.name !== to);
    const retag = async (nosync: boolean): Promise<void> => {
      for (const member of others) {
        await writeFile(
          path.join(member.dir, 'patroni.yml'),
          JSON.stringify(patroniConfig(this.requireLayout(), member, { nosync }), null, 2),
        );
        const agent = this.agents.get(member.name);
        if (agent?.pid !== undefined) signalAll([agent.pid], 'SIGHUP');
      }
    };
    await retag(true);
    const deadline = Date.now() + SYNC_STANDBY_TIMEOUT_MS;
    while (!(await this.isSyncStandby(target))) {
      if (Date.now() >= deadline) {
        await retag(false);
        throw new Error(`patroni did not make ${to} its synchronous standby within ${SYNC_STANDBY_TIMEOUT_MS} ms`);
      }
      await sleep(HEALTH_POLL_MS * 5);
    }
    this.log(`${to} is the synchronous standby now (the other standbys tagged nosync for the switchover)`);
    return () => retag(false);
  }

  /** `GET /sync` on the member's REST API answers 200 only on the synchronous standby. */
  private async isSyncStandby(member: PatroniMemberLayout): Promise<boolean> {
    try {
      const response = await fetch(`http://${member.host}:${member.restPort}/sync`, {
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
      await response.body?.cancel();
      return response.status === 200;
    } catch {
      return false;
    }
  }

  private async requestSwitchover(leader: string, to: string | undefined): Promise<void> {
    const member = this.member(leader);
    const response = await fetch(`http://${member.host}:${member.restPort}/switchover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(to === undefined ? { leader } : { leader, candidate: to }),
      signal: AbortSignal.timeout(SWITCHOVER_HTTP_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status !== 200)
      throw new Error(`patroni refused the switchover from ${leader}: ${response.status} ${text}`);
    this.log(`switchover: ${text.trim()}`);
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let reason = 'not checked yet';
    for (;;) {
      try {
        const problem = await this.healthProblem();
        if (problem === undefined) return;
        reason = problem;
      } catch (error) {
        reason = describeError(error);
      }
      if (Date.now() >= deadline) throw new Error(`patroni cluster not healthy within ${timeoutMs} ms: ${reason}`);
      await sleep(HEALTH_POLL_MS);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    const layout = this.layout;
    if (layout === undefined) return;
    // Patroni stops its PostgreSQL on SIGTERM; whatever is left after the grace period is killed.
    const agents = [...this.agents.values()];
    this.agents.clear();
    signalAll(
      agents.flatMap((agent) => (agent.pid === undefined ? [] : [agent.pid])),
      'SIGTERM',
    );
    await waitGone(
      agents.flatMap((agent) => (agent.pid === undefined ? [] : processTree(agent.pid))),
      STOP_GRACE_MS,
    );
    const roots = [...agents.map((agent) => agent.pid), ...layout.members.map((m) => postmasterPid(pgDataDir(m)))];
    try {
      await killTrees(roots, KILL_WAIT_MS);
    } finally {
      await rm(path.dirname(layout.members[0]!.dir), { recursive: true, force: true });
    }
  }

  /** What keeps the cluster from being healthy, or `undefined` when it is. */
  private async healthProblem(): Promise<string | undefined> {
    const state = await this.clusterState();
    const leaders = state.members.filter((m) => m.role === 'leader');
    if (leaders.length !== 1) return `${leaders.length} leaders`;
    const leader = this.member(leaders[0]!.name);
    const standbys = this.requireLayout().members.filter((m) => m !== leader);
    const client = new pg.Client({
      host: leader.host,
      port: leader.pgPort,
      ...this.credentials(),
      connectionTimeoutMillis: HTTP_TIMEOUT_MS,
      query_timeout: HTTP_TIMEOUT_MS,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ name: string; state: string; sync_state: string; recovery: boolean }>(
        'select application_name as name, state, sync_state, pg_is_in_recovery() as recovery from pg_stat_replication',
      );
      const streaming = rows.filter((r) => r.state === 'streaming').map((r) => r.name);
      const missing = standbys.filter((m) => !streaming.includes(m.name)).map((m) => m.name);
      if (missing.length > 0) return `${missing.join(', ')} not streaming from ${leader.name}`;
      if (!rows.some((r) => r.sync_state === 'sync')) return `no synchronous standby on ${leader.name} yet`;
      return undefined;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** `GET /cluster` from the first running member that answers. */
  private async clusterState(): Promise<PatroniClusterState> {
    const errors: string[] = [];
    for (const member of this.requireLayout().members) {
      if (!this.agents.has(member.name)) continue;
      try {
        const response = await fetch(`http://${member.host}:${member.restPort}/cluster`, {
          signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
        });
        if (response.ok) return (await response.json()) as PatroniClusterState;
        errors.push(`${member.name}: HTTP ${response.status}`);
      } catch (error) {
        errors.push(`${member.name}: ${describeError(error)}`);
      }
    }
    throw new Error(`no patroni REST API answered (${errors.join('; ') || 'no member running'})`);
  }

  private spawnAgent(member: PatroniMemberLayout): void {
    const logFd = openSync(path.join(member.dir, 'patroni.log'), 'a');
    try {
      const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: member.dir, LC_ALL: 'C.UTF-8' };
      const agent = spawn('patroni', [path.join(member.dir, 'patroni.yml')], {
        cwd: member.dir,
        env: { ...env, PYTHONUNBUFFERED: '1' },
        stdio: ['ignore', logFd, logFd],
        ...(this.runAs ?? {}),
      });
      agent.on('error', (error) => this.log(`${member.name}: patroni: ${error.message}`));
      agent.on('exit', (code, signal) => {
        if (this.agents.get(member.name) === agent) {
          this.agents.delete(member.name);
          this.log(`${member.name}: patroni exited unexpectedly (${code ?? signal})\n${this.memberLogTail(member)}`);
        }
      });
      this.agents.set(member.name, agent);
    } finally {
      closeSync(logFd);
    }
  }

  private memberLogTail(member: PatroniMemberLayout, lineCount = LOG_TAIL_LINES): string {
    try {
      const lines = readFileSync(path.join(member.dir, 'patroni.log'), 'utf8').trimEnd().split('\n');
      return lines.slice(-lineCount).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async own(file: string): Promise<void> {
    if (this.runAs !== undefined) await chown(file, this.runAs.uid, this.runAs.gid);
  }

  private requireLayout(): PatroniClusterLayout {
    if (this.layout === undefined) throw new Error('patroni cluster not started');
    return this.layout;
  }

  private member(name: string): PatroniMemberLayout {
    const member = this.requireLayout().members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no patroni member '${name}'`);
    return member;
  }
}
