/**
 * Artifact settings and the collector of unreferenced artifacts.
 *
 * An owner's claim on an artifact is *referenced* while an instance of one of
 * that owner's instance trees, not requested destroyed, names its SHA-256
 * anywhere in its parameters (hyper_edge: the app's `release.artifact` and
 * `history[].artifact`, each replica's `release.sha256`). An admin's claim is
 * referenced by any owner's instance (admin artifacts are usable by all).
 *
 * The collector deletes claims that are unreferenced *and* idle — neither
 * uploaded nor checked (`HEAD`/`GET`) by their owner for the grace period —
 * then the content no claim names. Why an upload followed by a deploy is
 * never collected: the upload (or the CLI's check that the master already
 * has it) touches the claim, and the deploy's request names it well within
 * the grace period; a claim touched after the collector listed it is kept,
 * because the deletion re-checks the claim is still idle.
 */
import { badRequest } from '../shared/errors.js';
import type { Store } from '../store/store.js';
import { ADMIN_OWNER_ID } from './principal.js';

export interface ArtifactSettings {
  /** Largest upload. @default 256 MiB */
  readonly limitBytes: number;
  /** Total bytes of artifacts one user may hold (`null`: unbounded). The admin is never bounded. @default 1 GiB */
  readonly quotaBytes: number | null;
  /** How long an unreferenced artifact is kept after its owner last uploaded or checked it. @default 1 hour */
  readonly graceMs: number;
  /** How often the master collects unreferenced artifacts. @default 10 minutes */
  readonly collectIntervalMs: number;
}

export const ARTIFACT_DEFAULTS: ArtifactSettings = Object.freeze({
  limitBytes: 256 * 1024 * 1024,
  quotaBytes: 1024 * 1024 * 1024,
  graceMs: 3_600_000,
  collectIntervalMs: 600_000,
});

/** Defaults filled in and each value checked. */
export function resolveArtifactSettings(options: Partial<ArtifactSettings> = {}): ArtifactSettings {
  const settings = { ...ARTIFACT_DEFAULTS, ...options };
  const positive = (name: string, value: number) => {
    if (!Number.isSafeInteger(value) || value <= 0) throw badRequest(name, `must be a positive integer, not ${value}`);
  };
  positive('artifacts.limitBytes', settings.limitBytes);
  if (settings.quotaBytes !== null) positive('artifacts.quotaBytes', settings.quotaBytes);
  positive('artifacts.graceMs', settings.graceMs);
  positive('artifacts.collectIntervalMs', settings.collectIntervalMs);
  return Object.freeze(settings);
}

const SHA256_IN_TEXT = /(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g;

/** Deletes the claims nothing references once idle for `graceMs`; returns how many went. */
export async function collectArtifacts(store: Store, nowMs: number, graceMs: number): Promise<number> {
  const idleSince = nowMs - graceMs;
  const idle = await store.artifacts.listIdle(idleSince);
  if (idle.length === 0) return 0;
  const referenced = await store.transaction(async (tx) => {
    const byOwner = new Map<string, Set<string>>();
    const anyOwner = new Set<string>();
    for (const tree of await tx.listTrees()) {
      const names = byOwner.get(tree.ownerId) ?? new Set<string>();
      byOwner.set(tree.ownerId, names);
      for (const instance of await tx.listTreeInstances(tree.id)) {
        if (instance.requestedState === 'destroyed') continue;
        for (const [sha256] of JSON.stringify(instance.parameters).matchAll(SHA256_IN_TEXT)) {
          names.add(sha256);
          anyOwner.add(sha256);
        }
      }
    }
    return { byOwner, anyOwner };
  });
  const unreferenced = idle.filter((claim) =>
    claim.ownerId === ADMIN_OWNER_ID
      ? !referenced.anyOwner.has(claim.sha256)
      : referenced.byOwner.get(claim.ownerId)?.has(claim.sha256) !== true,
  );
  return store.artifacts.deleteIdle(unreferenced, idleSince);
}
