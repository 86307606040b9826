/**
 * What a hyper_db cluster's root publishes, read defensively (the runtime
 * part comes from the router's `.hox/publish.json`, absent until it runs),
 * and how `hox db` shows it. Pure: published parameters in, lines out.
 *
 * Static keys (the `cluster` profile): members_expected, members_ready,
 * rw_host, rw_port, ro_port, sync_mode, paused, maintenance. Runtime keys
 * (Router.publish): primary, members[], last_failover, switchover,
 * databases (those created on the primary), databases_error, backups
 * (backup-view.ts), events.
 */
import { readableProblem } from '../readable-problem.js';
import { table } from '../output.js';
import { formatBackups, readBackupsView, type BackupsView } from './backup-view.js';

export interface MemberView {
  name: string;
  host: string | null;
  port: number | null;
  /** primary, standby, demoted, rejoining, empty, stopped, or unreachable. */
  role: string;
  term: number | null;
  timeline: number | null;
  streaming: boolean;
  lagMib: number | null;
  maintenance: boolean;
  syncState: string | null;
}

export interface EventView {
  at: string;
  member: string;
  kind: string;
  term: number | null;
  detail: string;
  timings: Record<string, number>;
}

export interface SwitchoverView {
  id: string;
  result: string;
  reason: string | null;
  from: string | null;
  to: string | null;
  durationMs: number | null;
}

export interface ClusterView {
  membersExpected: number | null;
  membersReady: number | null;
  rwHost: string | null;
  rwPort: number | null;
  roPort: number | null;
  syncMode: string | null;
  paused: boolean | null;
  maintenance: string[];
  /** Whether the router has published its part yet. */
  runtime: boolean;
  primary: string | null;
  members: MemberView[];
  lastFailover: EventView | null;
  switchover: SwitchoverView | null;
  /** Databases the router has created on the primary (null when it does not say). */
  databases: string[] | null;
  databasesError: string | null;
  /** Per database, why the router could not set it up. */
  databaseErrors: Record<string, string>;
  /** Per database present, the shared instance it belongs to (older routers do not say). */
  databaseOwners: Record<string, string>;
  /** Base backups and the WAL archive (null when the router does not publish them). */
  backups: BackupsView | null;
  events: EventView[];
}

type Json = Record<string, unknown>;

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function readEvent(v: unknown): EventView | null {
  if (!isObject(v) || typeof v.kind !== 'string') return null;
  const timings: Record<string, number> = {};
  if (isObject(v.timings))
    for (const [k, t] of Object.entries(v.timings)) if (typeof t === 'number' && Number.isFinite(t)) timings[k] = t;
  return {
    at: str(v.at) ?? '',
    member: str(v.member) ?? '?',
    kind: v.kind,
    term: num(v.term),
    detail: str(v.detail) ?? '',
    timings,
  };
}

function readSwitchover(v: unknown): SwitchoverView | null {
  if (!isObject(v) || typeof v.id !== 'string' || typeof v.result !== 'string') return null;
  return {
    id: v.id,
    result: v.result,
    reason: str(v.reason),
    from: str(v.from),
    to: str(v.to),
    durationMs: num(v.durationMs),
  };
}

function readMember(v: unknown): MemberView | null {
  if (!isObject(v) || typeof v.name !== 'string') return null;
  return {
    name: v.name,
    host: str(v.host),
    port: num(v.port),
    role: str(v.role) ?? 'unknown',
    term: num(v.term),
    timeline: num(v.timeline),
    streaming: v.streaming === true,
    lagMib: num(v.lag_mib),
    maintenance: v.maintenance === true,
    syncState: str(v.sync_state),
  };
}

export function readClusterView(published: Json): ClusterView {
  const list = <T>(v: unknown, read: (x: unknown) => T | null): T[] =>
    Array.isArray(v) ? v.map(read).filter((x): x is T => x !== null) : [];
  return {
    membersExpected: num(published.members_expected),
    membersReady: num(published.members_ready),
    rwHost: str(published.rw_host),
    rwPort: num(published.rw_port),
    roPort: num(published.ro_port),
    syncMode: str(published.sync_mode),
    paused: typeof published.paused === 'boolean' ? published.paused : null,
    maintenance: list(published.maintenance, str),
    runtime: 'members' in published || 'primary' in published,
    primary: str(published.primary),
    members: list(published.members, readMember),
    lastFailover: readEvent(published.last_failover),
    switchover: readSwitchover(published.switchover),
    databases: Array.isArray(published.databases) ? list(published.databases, str) : null,
    databasesError: str(published.databases_error),
    databaseErrors: stringRecord(published.database_errors),
    databaseOwners: stringRecord(published.database_owners),
    backups: readBackupsView(published),
    events: list(published.events, readEvent),
  };
}

/**
 * A member serving as it should: the primary the router follows, or a standby streaming from it (it says
 * so and the primary lists it among its replicas). Nothing else counts: `unreachable` (no answer: what it
 * said before is not kept), `rejoining`, `demoted`, `stopped`, `empty`, a standby that does not stream or
 * that the primary does not see, a member claiming `primary` that the router does not follow.
 */
export function isReadyMember(m: MemberView, primary: string | null): boolean {
  if (m.role === 'primary') return m.name === primary;
  return (
    m.role === 'standby' && m.streaming && primary !== null && m.syncState !== null && m.syncState !== 'disconnected'
  );
}

function notReadyReason(m: MemberView, primary: string | null): string {
  if (m.role === 'primary') return 'primary the router does not follow';
  if (m.role !== 'standby') return m.role;
  if (!m.streaming) return 'standby, not streaming';
  return primary === null ? 'standby, no primary' : `standby, not seen by ${primary}`;
}

/**
 * Whether the cluster is ready: a primary is published and every expected member is the primary or a
 * streaming standby. `line` says how far it is, for progress output.
 */
export function clusterReadiness(view: ClusterView): { ready: boolean; line: string } {
  const expected = view.membersExpected ?? view.members.length;
  const healthy = view.members.filter((m) => isReadyMember(m, view.primary));
  const lagging = view.members
    .filter((m) => !isReadyMember(m, view.primary))
    .map((m) => `${m.name} ${notReadyReason(m, view.primary)}`);
  const parts = [
    `members ready ${healthy.length}/${expected}`,
    `primary ${view.primary ?? (view.runtime ? 'none yet' : 'unknown (router not publishing yet)')}`,
  ];
  if (!view.runtime && view.membersReady !== null) parts.push(`${view.membersReady} member(s) published`);
  if (lagging.length > 0) parts.push(lagging.join(', '));
  const ready =
    view.primary !== null &&
    expected > 0 &&
    view.members.length === expected &&
    healthy.length === expected &&
    view.members.some((m) => m.name === view.primary && m.role === 'primary');
  return { ready, line: parts.join('; ') };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

export function describeTimings(timings: Record<string, number>): string {
  return Object.entries(timings)
    .map(([k, ms]) => `${k} ${Math.round(ms)} ms`)
    .join(', ');
}

export function describeSwitchover(s: SwitchoverView): string {
  const path = s.result === 'refused' || (s.from === null && s.to === null) ? '' : ` ${s.from ?? '?'} → ${s.to ?? '?'}`;
  const took = s.durationMs === null ? '' : ` in ${seconds(s.durationMs)}`;
  const why = s.reason === null ? '' : `: ${s.reason}`;
  return `${s.result}${path}${took}${why} (${s.id})`;
}

function describeEvent(e: EventView): string {
  const timings = describeTimings(e.timings);
  return `${e.at} ${e.member} ${e.kind}${e.term === null ? '' : ` (term ${e.term})`}: ${e.detail}${timings === '' ? '' : `; ${timings}`}`;
}

const dash = (v: string | number | null): string => (v === null ? '-' : String(v));

/**
 * Whether database `dbname` is usable: the cluster has a primary, the router applied its databases
 * without error and lists `dbname` among them (when it publishes that list). `line` says what is missing.
 */
export function databaseReadiness(
  view: ClusterView,
  dbname: string,
  owner?: string,
): { ready: boolean; line: string; error?: string } {
  if (view.primary === null) return { ready: false, line: 'the cluster has no primary yet' };
  const error = view.databaseErrors[dbname];
  if (error !== undefined) return { ready: false, line: `database '${dbname}': ${error}`, error };
  // A name whose previous owner just went: the list may still show the old database until the router acts.
  const ownedByOther = owner !== undefined && (view.databaseOwners[dbname] ?? owner) !== owner;
  if (ownedByOther) return { ready: false, line: `waiting for the router to make database '${dbname}' anew` };
  if (view.databases?.includes(dbname) === true)
    return { ready: true, line: `database '${dbname}' exists on ${view.primary}` };
  if (view.databasesError !== null)
    return { ready: false, line: `the cluster could not apply its databases yet: ${view.databasesError}` };
  if (view.databases !== null && !view.databases.includes(dbname))
    return { ready: false, line: `waiting for the router to create database '${dbname}' on ${view.primary}` };
  return { ready: true, line: `database '${dbname}' exists on ${view.primary}` };
}

/**
 * What the master says of the cluster's tree (listTreeStatus): its health (`ok` only when the write
 * probe passes — the root's `rw-endpoint` promise — and every node was heard from lately), what is
 * wrong, and the age of the reports it rests on.
 */
export interface TreeFacts {
  health: string;
  healthMessage: string | null;
  /** Age of the oldest node contact behind the view, in the master's clock (null: unknown). */
  reportedAgeMs: number | null;
}

/**
 * Past this age the published view is stale: the master's bound on node silence (tree-health.ts,
 * NODE_SILENT_AFTER_MS). The master says `stale` by itself; this also catches an older master.
 */
export const VIEW_STALE_AFTER_MS = 75_000;

export type ClusterHealth = 'ok' | 'degraded' | 'pending' | 'error' | 'stale' | 'destroying' | 'unknown';

export interface ClusterVerdict {
  health: ClusterHealth;
  /** What is wrong, for a person; null when ok. */
  problem: string | null;
  stale: boolean;
}

/**
 * The cluster's health as `hox db status` states it: `ok` only when the master says ok (a write went
 * through the read-write endpoint lately, reports fresh), a primary is published and every member is
 * ready; `degraded` when writes work but a member is not ready; otherwise the master's verdict
 * (`error`, `stale`, `pending`, `destroying`) with what is wrong.
 */
export function clusterVerdict(view: ClusterView, facts: TreeFacts): ClusterVerdict {
  const stale = facts.health === 'stale' || (facts.reportedAgeMs !== null && facts.reportedAgeMs > VIEW_STALE_AFTER_MS);
  const message = facts.healthMessage === null ? null : readableProblem(facts.healthMessage);
  if (facts.health === 'destroying') return { health: 'destroying', problem: message, stale };
  if (stale)
    return {
      health: 'stale',
      problem:
        message ??
        `the published view is ${Math.round((facts.reportedAgeMs ?? 0) / 1000)} s old (stale past ${VIEW_STALE_AFTER_MS / 1000} s)`,
      stale,
    };
  if (facts.health === 'error') {
    // The write probe's verdict says most: quote it alone when it is there.
    const writes = /no primary accepts writes through .*/.exec(message ?? '');
    return { health: 'error', problem: writes?.[0] ?? message, stale };
  }
  if (facts.health === 'pending') return { health: 'pending', problem: message, stale };
  if (facts.health !== 'ok')
    return { health: 'unknown', problem: message ?? `the master says '${facts.health}'`, stale };
  if (view.primary === null)
    return {
      health: 'error',
      problem: view.runtime ? 'no primary is published' : 'the router has not published yet',
      stale,
    };
  const { ready, line } = clusterReadiness(view);
  if (!ready) return { health: 'degraded', problem: line, stale };
  return { health: 'ok', problem: null, stale };
}

const age = (ms: number | null): string => (ms === null ? 'unknown' : `${Math.round(ms / 1000)} s ago`);

/** `hox db status` as readable lines. `problems` are instance errors of the tree, already formatted. */
export function formatClusterStatus(
  name: string,
  facts: TreeFacts,
  view: ClusterView,
  problems: string[] = [],
): string[] {
  const verdict = clusterVerdict(view, facts);
  const lines = [
    `cluster ${name}  (health ${verdict.health}${verdict.problem === null ? '' : `: ${verdict.problem}`})`,
  ];
  const endpoint = view.rwHost === null ? '-' : `${view.rwHost}:${dash(view.rwPort)} (ro port ${dash(view.roPort)})`;
  lines.push(`  endpoint:    ${endpoint}`);
  lines.push(
    `  as of:       ${age(facts.reportedAgeMs)}${verdict.stale ? ` — STALE (past ${VIEW_STALE_AFTER_MS / 1000} s): what follows may no longer be true` : ''}`,
  );
  lines.push(`  primary:     ${view.primary ?? (view.runtime ? 'none' : 'unknown: the router has not published yet')}`);
  lines.push(
    `  members:     ${view.members.filter((m) => isReadyMember(m, view.primary)).length}/${dash(view.membersExpected)} ready, sync mode ${dash(view.syncMode)}`,
  );
  lines.push(`  paused:      ${view.paused === null ? '-' : view.paused ? 'yes (no automatic failover)' : 'no'}`);
  if (view.maintenance.length > 0) lines.push(`  maintenance: ${view.maintenance.join(', ')}`);
  if (view.members.length > 0) {
    lines.push('');
    const rows = view.members.map((m) => [
      m.name,
      m.role,
      m.host === null ? '-' : `${m.host}:${dash(m.port)}`,
      dash(m.timeline),
      dash(m.lagMib),
      dash(m.syncState),
      m.maintenance ? 'yes' : 'no',
    ]);
    for (const line of table(['member', 'role', 'host:port', 'timeline', 'lag MiB', 'sync state', 'maintenance'], rows))
      lines.push(`  ${line}`);
  }
  lines.push('');
  const f = view.lastFailover;
  lines.push(`  last failover:   ${f === null ? 'none' : describeEvent(f)}`);
  lines.push(`  last switchover: ${view.switchover === null ? 'none' : describeSwitchover(view.switchover)}`);
  if (view.databases !== null && view.databases.length > 0)
    lines.push(`  databases:       ${view.databases.join(', ')}`);
  if (view.databasesError !== null) lines.push(`  databases error: ${view.databasesError}`);
  lines.push(...formatBackups(view.backups));
  if (problems.length > 0) {
    lines.push('', '  problems:');
    for (const p of problems) lines.push(`    ${readableProblem(p)}`);
  }
  if (view.events.length > 0) {
    lines.push('', '  recent events:');
    for (const e of view.events) lines.push(`    ${describeEvent(e)}`);
  }
  return lines;
}
