/**
 * `hox.get.v1.metrics` (`hox metrics NODE|TREE`): the key series of a compute node, or of one of the caller's
 * instance trees, read by the master from the platform's monitor (the admin's `hyper_monitor` tree: its published
 * URL, password and CA), so a user sees their own trees' series without any access to Prometheus itself.
 *
 * - A node's series span every tenant: the admin's only.
 * - A tree is looked up among the caller's own, and its queries select it by title and owner (`tree`, `owner`:
 *   the labels the master gives every partition series, src/master/http/metrics.ts), so another user's tree of
 *   the same title is never read.
 * - A waiting route: the store is read in one short transaction, then Prometheus is asked with none held, each
 *   query bounded (30 s, src/shared/prometheus-api.ts).
 */
import type { Body } from '../protocol/schemas.js';
import { METRIC_POINTS, nodePanels, quoted, treePanels, type Panel } from '../shared/metric-panels.js';
import { HoxError } from '../shared/errors.js';
import { queryRange, type PrometheusAccess, type RangeSeries } from '../shared/prometheus-api.js';
import type { StoreTx } from '../store/store.js';
import type { LogRelayOptions } from './log-relay.js';
import { ADMIN_OWNER_ID, authenticate, describePrincipal } from './principal.js';
import { MONITOR_RELEASE } from './alerts.js';

/** The admin's monitor that has published how to reach it (the one titled `monitor` first, as `hox up` names it). */
async function monitorAccess(tx: StoreTx): Promise<PrometheusAccess | undefined> {
  const trees = (await tx.listTrees(ADMIN_OWNER_ID)).sort(
    (a, b) => Number(b.title === 'monitor') - Number(a.title === 'monitor'),
  );
  for (const tree of trees) {
    const root = await tx.getInstance(tree.rootInstanceId);
    if (root === undefined || root.releaseUrl !== MONITOR_RELEASE || root.requestedState !== 'started') continue;
    const { url, user, password, ca_cert: ca } = root.connectionParameters;
    if (typeof url === 'string' && typeof user === 'string' && typeof password === 'string' && typeof ca === 'string')
      return { url, user, password, ca };
  }
  return undefined;
}

export async function queryMetrics(
  options: LogRelayOptions,
  token: string,
  body: Body<'metricsQuery'>,
  signal: AbortSignal,
): Promise<Body<'metricsResult'>> {
  const { store, clock } = options;
  const { kind, panels, access } = await store.transaction(async (tx) => {
    const p = await authenticate(tx, token, options.adminTokenHash, clock);
    if (p.kind !== 'user' && p.kind !== 'admin')
      throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not read metrics`);
    const ownerId = p.kind === 'user' ? p.userId : ADMIN_OWNER_ID;
    const tree = await tx.findTree(ownerId, body.target);
    let found: { kind: 'node' | 'tree'; panels: Panel[] };
    if (tree !== undefined)
      found = { kind: 'tree', panels: treePanels(`tree=${quoted(tree.title)},owner=${quoted(ownerId)}`) };
    else if (p.kind === 'admin' && (await tx.getNode(body.target)) !== undefined)
      found = { kind: 'node', panels: nodePanels(body.target) };
    else
      throw new HoxError(
        'HOX_INSTANCE_TREE_NOT_FOUND',
        p.kind === 'admin'
          ? `no instance tree or compute node '${body.target}'`
          : `instance tree '${body.target}' not found`,
      );
    const monitor = await monitorAccess(tx);
    if (monitor === undefined)
      throw new HoxError(
        'HOX_CONFLICT',
        "the platform has no monitor ready (the admin's hyper_monitor tree, which hox up requests as 'monitor')",
      );
    return { ...found, access: monitor };
  });

  const endS = Math.floor(clock.nowMs() / 1000);
  const stepS = Math.max(1, Math.round((body.minutes * 60) / METRIC_POINTS));
  const range = { startS: endS - body.minutes * 60, endS, stepS };
  const results: { panel: Panel; series: RangeSeries[] }[] = [];
  for (const panel of panels) {
    if (signal.aborted) break; // the client went away: nobody reads the answer
    try {
      results.push({ panel, series: await queryRange(access, panel.query, range) });
    } catch (error) {
      throw new HoxError('HOX_MONITOR_NOT_ANSWERING', `the monitor did not answer: ${(error as Error).message}`);
    }
  }
  if (results.every((r) => r.series.length === 0))
    throw new HoxError(
      'HOX_NOT_FOUND',
      `the monitor has no series for ${kind === 'node' ? `compute node '${body.target}'` : `instance tree '${body.target}'`} in the last ${body.minutes} min`,
    );
  return {
    target: body.target,
    kind,
    start: new Date(range.startS * 1000).toISOString(),
    step_s: stepS,
    series: results.flatMap(({ panel, series }) =>
      series.map((s) => {
        // One value per step of the range, null where Prometheus had none.
        const byTime = new Map(s.values.map(([t, v]) => [Math.round(t), Number(v)]));
        const values = Array.from({ length: METRIC_POINTS + 1 }, (_, i) => {
          const v = byTime.get(range.startS + i * stepS);
          return v !== undefined && Number.isFinite(v) ? v : null;
        });
        return {
          name: [panel.title, ...panel.by.map((l) => s.metric[l] ?? '')].join(' '),
          query: panel.query,
          unit: panel.unit,
          labels: s.metric,
          values,
        };
      }),
    ),
  };
}
