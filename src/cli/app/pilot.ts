/**
 * The pilot `hox up --with-pilot` brings up: a hyper_db cluster of three
 * members and the CRM (examples/crm) deployed on it with its postgres addon.
 * Running it again finds both and deploys nothing new; it then waits for what
 * is true now — the cluster's root reporting (its rw-endpoint promise: a write
 * committed through the endpoint) after this run started, and the CRM's URL
 * answering 200 — never for what the previous run published.
 */
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { HoxError } from '../../shared/errors.js';
import { findTreeRoot, rootOf } from '../db/cluster-client.js';
import { createCluster } from '../db/cluster-actions.js';
import { deployApp, waitServing, type AppContext } from './app-actions.js';
import { readAppView } from './app-view.js';

export const PILOT_CLUSTER = 'pilot-db';
export const PILOT_APP = 'crm';
/** examples/crm, from src/cli/app or dist/cli/app. */
export const PILOT_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'crm');
/** How long the CRM may take to answer 200 once its replicas say they serve. */
const ANSWER_TIMEOUT_MS = 120_000;

/** Prefixes a line with `name: ` unless it already names it: progress by tree. */
const tagged =
  (name: string, out: (line: string) => void) =>
  (line: string): void =>
    out(line.startsWith(`${name}:`) || line.startsWith(`${name} `) ? line : `${name}: ${line}`);

/**
 * Waits until `url` answers 200 (a GET, redirects not followed), bounded in time; says what it got otherwise.
 * For the CRM, its health check (`/healthz`, which reads its database): its pages ask to sign in first.
 */
export async function waitAnswering(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (let attempt = 0; attempt < 10_000; attempt += 1) {
    try {
      const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) break;
    await sleep(250);
  }
  throw new HoxError('HOX_CONFLICT', `${url} does not answer 200 after ${Math.round(timeoutMs / 1000)} s (${last})`);
}

export async function startPilot(
  ctx: AppContext,
  options: {
    /** Master time (ms) this run started: what was reported before it (by a previous run) does not count. */
    notBeforeMs?: number;
  } = {},
): Promise<{ url: string; cluster: string }> {
  ctx.print(`${PILOT_CLUSTER}: hyper_db cluster (3 members)…`);
  const cluster = tagged(PILOT_CLUSTER, ctx.progress);
  await createCluster({ ...ctx, print: cluster, progress: cluster }, PILOT_CLUSTER, {
    members: 3,
    extra: {},
    wait: true,
    timeoutMs: 600_000,
    ...(options.notBeforeMs === undefined ? {} : { notBeforeMs: options.notBeforeMs }),
  });
  const app = tagged(PILOT_APP, ctx.progress);
  const existing = await findTreeRoot(ctx.client, PILOT_APP);
  const deployed = existing !== undefined && (existing.parameters as { release?: unknown }).release !== undefined;
  if (!deployed) {
    ctx.print(`${PILOT_APP}: deploying the CRM from ${PILOT_SOURCE}…`);
    await deployApp({ ...ctx, print: app, progress: app }, PILOT_APP, PILOT_SOURCE, {
      dbCluster: PILOT_CLUSTER,
      wait: true,
      timeoutMs: 900_000,
    });
  } else {
    ctx.print(`${PILOT_APP}: the CRM is already deployed; waiting for it to serve`);
    await waitServing({ ...ctx, print: app, progress: app }, PILOT_APP, 300_000);
  }
  const [tree] = (await ctx.client.call('listTreeStatus', { title: PILOT_APP })).result_list;
  const url = readAppView((tree === undefined ? undefined : rootOf(tree))?.connection_parameters ?? {}).url;
  if (url === null) throw new HoxError('HOX_CONFLICT', `the CRM publishes no url yet (hox app status ${PILOT_APP})`);
  // What the replicas published may be the previous run's: the CRM's own answer is what is true now.
  const health = new URL('/healthz', url).href;
  await waitAnswering(health, ANSWER_TIMEOUT_MS);
  ctx.print(`${PILOT_APP}: answers 200 at ${health}`);
  return { url, cluster: PILOT_CLUSTER };
}
