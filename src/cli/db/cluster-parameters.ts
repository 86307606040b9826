/**
 * The parameters `hox db` requests a hyper_db cluster with: pure functions
 * from the cluster's current parameters (read back from the master) to the
 * next ones. Each keeps every parameter it does not own, so a switchover never
 * resets a pause, a maintenance list or settings someone else set.
 *
 * The names and shapes are those of `clusterParameters` in
 * src/releases/hyper_db/release.ts (members are `member-1`…`member-N`).
 */
import { HoxError } from '../../shared/errors.js';
import { databaseNameProblem } from '../../releases/hyper_db/protocol.js';

export type ClusterParameters = Readonly<Record<string, unknown>>;

/** The release's default member count (`members` in its schema). */
export const DEFAULT_MEMBERS = 3;
export const MAX_MEMBERS = 7;
export const SYNC_MODES = ['quorum', 'strict', 'async'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** A fresh id for a request carried by parameters (switchover, accept_data_loss): the keepers handle each id once. */
export function newRequestId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export function memberCount(parameters: ClusterParameters): number {
  const n = parameters.members;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : DEFAULT_MEMBERS;
}

export function memberNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `member-${i + 1}`);
}

/** `member-1..member-3` (or `member-1` alone). */
export function describeMembers(count: number): string {
  return count === 1 ? 'member-1' : `member-1..member-${count}`;
}

/** Throws a bad-request error naming the member, the cluster and its members unless `member` is one of them. */
export function assertMember(cluster: string, parameters: ClusterParameters, member: string): void {
  const count = memberCount(parameters);
  if (!memberNames(count).includes(member))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `'${member}' is not a member of cluster '${cluster}' (members: ${describeMembers(count)})`,
      { field: 'member' },
    );
}

export interface CreateOptions {
  members?: number;
  syncMode?: SyncMode;
  /** `--param` entries; `members` / `sync_mode` given as flags win over them. */
  extra?: Record<string, unknown>;
}

/** Parameters of `hox db create`: the current ones (if the cluster exists) with the given ones over them. */
export function createParameters(current: ClusterParameters | undefined, options: CreateOptions): ClusterParameters {
  const members = options.members;
  if (members !== undefined && (!Number.isInteger(members) || members < 1 || members > MAX_MEMBERS))
    throw new HoxError('HOX_BAD_REQUEST', `--members must be an integer from 1 to ${MAX_MEMBERS}, not '${members}'`, {
      field: '--members',
    });
  return {
    ...current,
    ...options.extra,
    ...(members === undefined ? {} : { members }),
    ...(options.syncMode === undefined ? {} : { sync_mode: options.syncMode }),
  };
}

export interface SwitchoverRequest {
  id: string;
  to: string | null;
}

/** A new switchover request (towards `to`, or the best standby when null), with an id never used before. */
export function withSwitchover(
  cluster: string,
  current: ClusterParameters,
  to: string | null,
  newId: () => string = () => newRequestId('switchover'),
): { parameters: ClusterParameters; request: SwitchoverRequest } {
  if (to !== null) assertMember(cluster, current, to);
  const previous = (current.switchover as { id?: unknown } | undefined)?.id;
  let id = newId();
  for (let i = 0; i < 10 && id === previous; i += 1) id = newId();
  if (id === previous) throw new HoxError('HOX_INTERNAL', `could not make a switchover id other than '${id}'`);
  const request = { id, to };
  return { parameters: { ...current, switchover: request }, request };
}

export function withPaused(current: ClusterParameters, paused: boolean): ClusterParameters {
  return { ...current, paused };
}

export function maintenanceList(parameters: ClusterParameters): string[] {
  const list = parameters.maintenance;
  return Array.isArray(list) ? list.filter((m): m is string => typeof m === 'string') : [];
}

/**
 * Puts `member` in maintenance (`on`) or takes it out. Idempotent: adding a member already in the
 * list or removing one that is not changes nothing (`changed` says so). An emptied list is dropped.
 */
export function withMaintenance(
  cluster: string,
  current: ClusterParameters,
  member: string,
  on: boolean,
): { parameters: ClusterParameters; maintenance: string[]; changed: boolean } {
  assertMember(cluster, current, member);
  const before = maintenanceList(current);
  const has = before.includes(member);
  if (has === on) return { parameters: current, maintenance: before, changed: false };
  const maintenance = on ? [...before, member] : before.filter((m) => m !== member);
  const rest: Record<string, unknown> = { ...current };
  delete rest.maintenance;
  return {
    parameters: maintenance.length === 0 ? rest : { ...rest, maintenance },
    maintenance,
    changed: true,
  };
}

export interface AcceptDataLossRequest {
  id: string;
  member: string;
  by: string;
}

/** A forced promotion of `member` (without a majority), recorded as asked by `by`. */
export function withAcceptDataLoss(
  cluster: string,
  current: ClusterParameters,
  member: string,
  by: string,
  newId: () => string = () => newRequestId('promote'),
): { parameters: ClusterParameters; request: AcceptDataLossRequest } {
  assertMember(cluster, current, member);
  const previous = (current.accept_data_loss as { id?: unknown } | undefined)?.id;
  let id = newId();
  for (let i = 0; i < 10 && id === previous; i += 1) id = newId();
  if (id === previous) throw new HoxError('HOX_INTERNAL', `could not make a request id other than '${id}'`);
  const request = { id, member, by: by.slice(0, 200) };
  return { parameters: { ...current, accept_data_loss: request }, request };
}

/** Database names the release accepts (it names the database and its role after it). */
export function assertDatabaseName(name: string): void {
  const problem = databaseNameProblem(name);
  if (problem !== null) throw new HoxError('HOX_BAD_REQUEST', problem, { field: 'dbname' });
}

/** Parameters of a database (shared instance) with the password rotated once more. */
export function withPasswordRotation(current: ClusterParameters): ClusterParameters {
  const n = current.password_rotation;
  return { ...current, password_rotation: (typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : 0) + 1 };
}
