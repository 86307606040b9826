/**
 * Software installations: what a node must install (`available`) or remove
 * (`destroyed`), and what it reports. Reports never change the requested
 * state; a `destroyed` report (only accepted once destruction was requested)
 * removes the installation from the node's list.
 */
import { HoxError, badRequest } from '../shared/errors.js';
import type { SoftwareReportedState, SoftwareRequestedState } from '../shared/states.js';
import type { SoftwareInstallationRow } from '../store/store.js';
import type { OpContext } from './context.js';
import { loadNode, touchNode } from './nodes.js';
import { requireAdmin } from './principal.js';

export const MAX_URL_LENGTH = 2048;

/** Release URLs: a built-in name, an absolute path, or a file/http(s) URL. */
export function checkReleaseUrl(field: string, url: string): void {
  if (url.length === 0) throw badRequest(field, 'must not be empty');
  if (url.length > MAX_URL_LENGTH) throw badRequest(field, `longer than ${MAX_URL_LENGTH} characters`);
  if (/[\s\u0000-\u001f]/.test(url)) throw badRequest(field, 'must not contain spaces or control characters');
}

export async function supply(
  ctx: OpContext,
  nodeId: string,
  url: string,
  state: SoftwareRequestedState,
): Promise<void> {
  requireAdmin(ctx.principal);
  checkReleaseUrl('software_release_uri', url);
  await loadNode(ctx, nodeId);
  const existing = await ctx.tx.getSoftwareInstallation(nodeId, url);
  // Supplying again after a failed install asks the node to try again.
  const retry = state === 'available' && existing?.reportedState === 'error';
  if (existing?.requestedState === state && !retry) return;
  if (existing === undefined && state === 'destroyed')
    throw new HoxError(
      'HOX_SOFTWARE_INSTALLATION_NOT_FOUND',
      `software release '${url}' was never supplied to compute node '${nodeId}'`,
    );
  await ctx.tx.upsertSoftwareInstallation({
    nodeId,
    url,
    requestedState: state,
    reportedState: retry ? null : (existing?.reportedState ?? null),
    errorMessage: retry ? null : (existing?.errorMessage ?? null),
    updatedAtMs: ctx.clock.nowMs(),
  });
  await ctx.tx.appendChange({ nodeId, treeId: null, atMs: ctx.clock.nowMs() });
}

async function loadInstallation(ctx: OpContext, nodeId: string, url: string): Promise<SoftwareInstallationRow> {
  const node = await loadNode(ctx, nodeId);
  await touchNode(ctx, node);
  const row = await ctx.tx.getSoftwareInstallation(nodeId, url);
  if (row === undefined)
    throw new HoxError(
      'HOX_SOFTWARE_INSTALLATION_NOT_FOUND',
      `software release '${url}' is not supplied to compute node '${nodeId}'`,
      { slaposTitle: `No installation found with url: ${url}` },
    );
  return row;
}

export async function reportSoftwareState(
  ctx: OpContext,
  nodeId: string,
  url: string,
  reported: Exclude<SoftwareReportedState, 'error'>,
): Promise<void> {
  const row = await loadInstallation(ctx, nodeId, url);
  if (reported === 'destroyed') {
    if (row.requestedState !== 'destroyed')
      throw new HoxError(
        'HOX_SOFTWARE_DESTROY_NOT_REQUESTED',
        `software release '${url}' reported destroyed on compute node '${nodeId}' but its destruction was not requested`,
        { slaposTitle: 'Reported state is destroyed but requested state is not destroyed' },
      );
    await ctx.tx.deleteSoftwareInstallation(nodeId, url);
  } else {
    if (row.reportedState === reported && row.errorMessage === null) return;
    await ctx.tx.upsertSoftwareInstallation({
      ...row,
      reportedState: reported,
      errorMessage: null,
      updatedAtMs: ctx.clock.nowMs(),
    });
  }
  await ctx.tx.appendChange({ nodeId, treeId: null, atMs: ctx.clock.nowMs() });
}

export async function reportSoftwareError(ctx: OpContext, nodeId: string, url: string, message: string): Promise<void> {
  const row = await loadInstallation(ctx, nodeId, url);
  await ctx.tx.upsertSoftwareInstallation({
    ...row,
    reportedState: 'error',
    errorMessage: message,
    updatedAtMs: ctx.clock.nowMs(),
  });
  await ctx.tx.appendChange({ nodeId, treeId: null, atMs: ctx.clock.nowMs() });
}

export async function listSoftware(ctx: OpContext, nodeId: string): Promise<SoftwareInstallationRow[]> {
  const node = await loadNode(ctx, nodeId);
  await touchNode(ctx, node);
  return ctx.tx.listSoftwareInstallations(nodeId);
}
