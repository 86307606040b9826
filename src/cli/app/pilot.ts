/**
 * The pilot `hox up --with-pilot` brings up: a hyper_db cluster of three
 * members and the CRM (examples/crm) deployed on it with its postgres addon.
 * Running it again finds both and deploys nothing new.
 */
import { dirname, join } from 'node:path';
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

export async function startPilot(ctx: AppContext): Promise<{ url: string; cluster: string }> {
  ctx.print(`pilot: hyper_db cluster '${PILOT_CLUSTER}' (3 members)…`);
  await createCluster({ ...ctx, print: ctx.progress }, PILOT_CLUSTER, {
    members: 3,
    extra: {},
    wait: true,
    timeoutMs: 600_000,
  });
  const existing = await findTreeRoot(ctx.client, PILOT_APP);
  const deployed = existing !== undefined && (existing.parameters as { release?: unknown }).release !== undefined;
  if (!deployed) {
    ctx.print(`pilot: deploying the CRM from ${PILOT_SOURCE}…`);
    await deployApp({ ...ctx, print: ctx.progress }, PILOT_APP, PILOT_SOURCE, {
      dbCluster: PILOT_CLUSTER,
      wait: true,
      timeoutMs: 900_000,
    });
  } else {
    ctx.print(`pilot: the CRM is already deployed; waiting for it to serve`);
    await waitServing(ctx, PILOT_APP, 300_000);
  }
  const [tree] = (await ctx.client.call('listTreeStatus', { title: PILOT_APP })).result_list;
  const url = readAppView((tree === undefined ? undefined : rootOf(tree))?.connection_parameters ?? {}).url;
  if (url === null) throw new HoxError('HOX_CONFLICT', `the CRM publishes no url yet (hox app status ${PILOT_APP})`);
  return { url, cluster: PILOT_CLUSTER };
}
