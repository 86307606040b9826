/**
 * What `hox db create|status|switchover|pause|resume|maintenance|promote` do:
 * read the cluster back, request its root with merged parameters
 * (cluster-parameters.ts), then follow what the root publishes until the
 * change took effect. Results on stdout; progress on stdout (stderr with --json).
 */
import type { ActionContext } from '../action-context.js';
import { HoxError } from '../../shared/errors.js';
import { maskSecrets } from '../output.js';
import { waitForTree } from '../wait-for-instance.js';
import {
  actorName,
  assertCluster,
  findTreeRoot,
  followTree,
  loadCluster,
  requestCluster,
  requestNewCluster,
  rootOf,
  slaOf,
  treeProblems,
  type Tree,
} from './cluster-client.js';
import {
  createParameters,
  memberCount,
  withAcceptDataLoss,
  withMaintenance,
  withPaused,
  withSwitchover,
  type CreateOptions,
} from './cluster-parameters.js';
import { readableProblem } from '../readable-problem.js';
import {
  clusterReadiness,
  clusterVerdict,
  describeSwitchover,
  formatClusterStatus,
  isReadyMember,
  readClusterView,
  type ClusterView,
  type EventView,
  type SwitchoverView,
  type TreeFacts,
} from './cluster-view.js';

/** What `hox db` actions get (src/cli/action-context.ts). */
export type DbContext = ActionContext;

/** The root's published view, or an error when the tree or its root is gone. */
export function viewOf(
  name: string,
  tree: Tree | undefined,
): { view: ClusterView; problems: string[]; published: Record<string, unknown> } {
  const root = tree === undefined ? undefined : rootOf(tree);
  if (tree === undefined || root === undefined)
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `cluster '${name}' not found`);
  const published = root.connection_parameters;
  return { view: readClusterView(published), problems: treeProblems(tree), published };
}

export const withProblems = (line: string, problems: string[]): string =>
  problems.length === 0 ? line : `${line} — ${problems.join('; ')}`;

/**
 * Follows a requested cluster: allocation and start (as `hox request --wait`), then its members.
 * `waitingFor` replaces the default timeout wording; `annotate` adds to each progress line.
 */
export async function waitUntilReady(
  ctx: DbContext,
  name: string,
  options: {
    notBeforeMs: number;
    expected: number;
    deadline: number;
    waitingFor?: string;
    annotate?: (view: ClusterView) => string | null;
  },
): Promise<{ view: ClusterView; published: Record<string, unknown> }> {
  const isAdmin = (await ctx.client.call('whoami', {})).kind === 'admin';
  await waitForTree(ctx.client, name, {
    timeoutMs: Math.max(1, options.deadline - Date.now()),
    notBeforeMs: options.notBeforeMs,
    isAdmin,
    progress: ctx.progress,
  });
  return followTree<{ view: ClusterView; published: Record<string, unknown> }>(ctx.client, name, {
    timeoutMs: Math.max(1, options.deadline - Date.now()),
    waitingFor: options.waitingFor ?? `cluster '${name}' to be ready`,
    progress: ctx.progress,
    check: (tree) => {
      const { view, problems, published } = viewOf(name, tree);
      const { ready, line } = clusterReadiness(view);
      // Until the root published with these parameters, what it shows is the cluster as it was.
      if (ready && view.membersExpected === options.expected) return { done: { view, published } };
      const extra = options.annotate?.(view) ?? null;
      return { progress: withProblems(extra === null ? line : `${line}; ${extra}`, problems) };
    },
  });
}

export async function createCluster(
  ctx: DbContext,
  name: string,
  options: CreateOptions & {
    wait: boolean;
    timeoutMs: number;
    /** Master time (ms) before which nothing the cluster reported counts (`hox up`: its start), besides the request's. */
    notBeforeMs?: number;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const existing = await findTreeRoot(ctx.client, name);
  if (existing !== undefined) {
    assertCluster(name, existing);
    if (existing.state === 'destroyed')
      throw new HoxError('HOX_CONFLICT', `cluster '${name}' is being destroyed; create it again once it is gone`);
  }
  const parameters = createParameters(existing?.parameters, options);
  const answer = await requestNewCluster(ctx.client, name, parameters, existing === undefined ? {} : slaOf(existing));
  if ('status' in answer) {
    if (ctx.json) ctx.print(JSON.stringify({ cluster: name, accepted: true, message: answer.message }));
    else ctx.print(`${name}: accepted, not ready yet (${answer.message})`);
    return;
  }
  const verb = existing === undefined ? 'requested' : 'updated';
  if (!options.wait) {
    if (ctx.json)
      return ctx.print(JSON.stringify({ cluster: name, instance_guid: answer.instance_guid, ready: false }));
    ctx.print(
      `${name}: cluster ${verb} on ${answer.computer_guid}/${answer.compute_partition_id} (${answer.instance_guid})`,
    );
    ctx.print(`  hox db status ${name} shows its members as they come up`);
    return;
  }
  const { view, published } = await waitUntilReady(ctx, name, {
    notBeforeMs: Math.max(answer.processing_timestamp / 1000, options.notBeforeMs ?? 0),
    expected: memberCount(parameters),
    deadline,
  });
  if (ctx.json)
    return ctx.print(
      JSON.stringify({
        cluster: name,
        instance_guid: answer.instance_guid,
        ready: true,
        primary: view.primary,
        connection_parameters: maskSecrets(published, false),
      }),
    );
  const standbys = view.members.filter((m) => m.role === 'standby').map((m) => m.name);
  ctx.print(
    `${name}: ready — primary ${view.primary ?? '?'}${standbys.length > 0 ? `, standbys ${standbys.join(', ')} streaming` : ''}`,
  );
  ctx.print(
    `  read-write: ${view.rwHost ?? '?'}:${view.rwPort ?? '?'}   read-only: ${view.rwHost ?? '?'}:${view.roPort ?? '?'}`,
  );
  ctx.print(`  next: hox db status ${name}; hox db database ${name} app   # a database with its own role`);
}

export async function showClusterStatus(ctx: DbContext, name: string): Promise<void> {
  let tree: Tree | undefined;
  try {
    tree = (await ctx.client.call('listTreeStatus', { title: name })).result_list[0];
  } catch (error) {
    if (error instanceof HoxError && error.code === 'HOX_INSTANCE_TREE_NOT_FOUND')
      throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `cluster '${name}' not found`, { cause: error });
    throw error;
  }
  const root = tree === undefined ? undefined : rootOf(tree);
  if (tree === undefined || root === undefined)
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `cluster '${name}' not found`);
  assertCluster(name, root);
  const published = maskSecrets(root.connection_parameters, false);
  const view = readClusterView(published);
  const facts = treeFacts(tree);
  if (ctx.json) {
    const verdict = clusterVerdict(view, facts);
    return ctx.print(
      JSON.stringify({
        cluster: name,
        health: verdict.health,
        problem: verdict.problem,
        stale: verdict.stale,
        reported_at: tree.reported_at,
        reported_age_ms: tree.reported_age_ms,
        tree_health: tree.health,
        tree_health_message: tree.health_message,
        primary: view.primary,
        members_ready: view.members.filter((m) => isReadyMember(m, view.primary)).map((m) => m.name),
        members_expected: view.membersExpected,
        problems: treeProblems(tree).map(readableProblem),
        connection_parameters: published,
      }),
    );
  }
  for (const line of formatClusterStatus(name, facts, view, treeProblems(tree))) ctx.print(line);
}

/** What `hox db status` takes from the master's tree status. */
export function treeFacts(tree: Tree): TreeFacts {
  return { health: tree.health, healthMessage: tree.health_message, reportedAgeMs: tree.reported_age_ms };
}

export async function switchover(
  ctx: DbContext,
  name: string,
  options: { to: string | null; timeoutMs: number },
): Promise<void> {
  const cluster = await loadCluster(ctx.client, name);
  const { parameters, request } = withSwitchover(name, cluster.parameters, options.to);
  const startedMs = Date.now();
  await requestCluster(ctx.client, cluster, parameters);
  ctx.progress(`switchover ${request.id} requested${request.to === null ? '' : ` to ${request.to}`}`);
  const result = await followTree<SwitchoverView>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `cluster '${name}' to carry out switchover ${request.id}`,
    progress: ctx.progress,
    check: (tree) => {
      const { view, problems } = viewOf(name, tree);
      if (view.switchover?.id === request.id) return { done: view.switchover };
      return { progress: withProblems(`waiting for the members; primary ${view.primary ?? 'none'}`, problems) };
    },
  });
  const elapsedMs = Date.now() - startedMs;
  if (ctx.json)
    ctx.print(
      JSON.stringify({
        cluster: name,
        id: result.id,
        requested_to: request.to,
        result: result.result,
        reason: result.reason,
        from: result.from,
        to: result.to,
        duration_ms: result.durationMs,
        elapsed_ms: elapsedMs,
      }),
    );
  if (result.result !== 'done')
    throw new HoxError('HOX_CONFLICT', `switchover of cluster '${name}' ${describeSwitchover(result)}`);
  if (!ctx.json)
    ctx.print(
      `${name}: switchover ${describeSwitchover(result)}; ${(elapsedMs / 1000).toFixed(1)} s from request to result`,
    );
}

export async function setPaused(ctx: DbContext, name: string, paused: boolean, timeoutMs: number): Promise<void> {
  const cluster = await loadCluster(ctx.client, name);
  await requestCluster(ctx.client, cluster, withPaused(cluster.parameters, paused));
  await followTree<true>(ctx.client, name, {
    timeoutMs,
    waitingFor: `cluster '${name}' to publish paused = ${paused}`,
    progress: ctx.progress,
    check: (tree) => {
      const { view, problems } = viewOf(name, tree);
      if (view.paused === paused) return { done: true };
      return {
        progress: withProblems(`requested paused = ${paused}; the cluster still says ${String(view.paused)}`, problems),
      };
    },
  });
  if (ctx.json) return ctx.print(JSON.stringify({ cluster: name, paused }));
  ctx.print(
    paused
      ? `${name}: paused — no automatic failover until hox db resume ${name} (switchovers still work)`
      : `${name}: resumed — automatic failover is on`,
  );
}

const sameMembers = (a: string[], b: string[]): boolean =>
  a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

export async function setMaintenance(
  ctx: DbContext,
  name: string,
  member: string,
  on: boolean,
  timeoutMs: number,
): Promise<void> {
  const cluster = await loadCluster(ctx.client, name);
  const next = withMaintenance(name, cluster.parameters, member, on);
  if (next.changed) await requestCluster(ctx.client, cluster, next.parameters);
  await followTree<true>(ctx.client, name, {
    timeoutMs,
    waitingFor: `cluster '${name}' to publish the maintenance of ${member}`,
    progress: ctx.progress,
    check: (tree) => {
      const { view, problems } = viewOf(name, tree);
      // The static list says the root took it; the member's own flag says its keeper did (if it answers).
      const seen = view.members.find((m) => m.name === member);
      const keeperAgrees = seen === undefined || seen.role === 'unreachable' || seen.maintenance === on;
      if (sameMembers(view.maintenance, next.maintenance) && keeperAgrees) return { done: true };
      return {
        progress: withProblems(
          `maintenance requested: [${next.maintenance.join(', ')}]; published: [${view.maintenance.join(', ')}]${seen === undefined ? '' : `, ${member} says ${seen.maintenance ? 'in' : 'out of'} maintenance`}`,
          problems,
        ),
      };
    },
  });
  if (ctx.json)
    return ctx.print(JSON.stringify({ cluster: name, member, maintenance: next.maintenance, changed: next.changed }));
  const already = next.changed ? '' : ' (it already was)';
  ctx.print(
    on
      ? `${name}: ${member} in maintenance${already} — never promoted, out of the synchronous quorum`
      : `${name}: ${member} out of maintenance${already}`,
  );
}

/** A forced promotion needs `--accept-data-loss`: refused without it, saying what may be lost. */
export function assertAcceptsDataLoss(name: string, member: string, accepted: boolean): void {
  if (!accepted)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `promoting '${member}' of cluster '${name}' without a majority may lose data: commits acknowledged by the old primary but not yet on '${member}' are gone for good, and the old primary is rewound or recloned when it comes back. Prefer hox db switchover while a primary is alive; if you accept losing those commits, run again with --accept-data-loss`,
      { field: '--accept-data-loss' },
    );
}

export async function forcePromotion(
  ctx: DbContext,
  name: string,
  member: string,
  options: { acceptDataLoss: boolean; timeoutMs: number },
): Promise<void> {
  assertAcceptsDataLoss(name, member, options.acceptDataLoss);
  const cluster = await loadCluster(ctx.client, name);
  const by = await actorName(ctx.client);
  const { parameters, request } = withAcceptDataLoss(name, cluster.parameters, member, by);
  await requestCluster(ctx.client, cluster, parameters);
  ctx.progress(`forced promotion ${request.id} of ${member} requested by ${by}`);
  const marker = `(request ${request.id})`;
  const event = await followTree<EventView>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `${member} to act on forced promotion ${request.id}; its keeper ignores it while a primary's lease is valid, see hox db status ${name}`,
    progress: ctx.progress,
    check: (tree) => {
      const { view, problems } = viewOf(name, tree);
      const acted = view.events.find((e) => e.kind === 'forced-promotion' && e.detail.includes(marker));
      if (acted !== undefined && view.primary === member) return { done: acted };
      const line = acted === undefined ? `waiting for ${member} to act` : `${member} is promoting itself`;
      return { progress: withProblems(`${line}; primary ${view.primary ?? 'none'}`, problems) };
    },
  });
  if (ctx.json) return ctx.print(JSON.stringify({ cluster: name, id: request.id, member, by, primary: member, event }));
  ctx.print(`${name}: ${member} promoted without a majority (${request.id}, by ${by}); ${event.detail}`);
}
