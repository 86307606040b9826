/** A partition's limits: the node's defaults, the plan's over them, each checked. Pure. */
import { availableParallelism } from 'node:os';
import type { PartitionLimits } from '../../release-kit/types.js';
import { badRequest } from '../../shared/errors.js';
import type { ResolvedLimits } from './partition-cgroups.js';

const GiB = 1024 ** 3;

/** The node's defaults unless `hox node` says otherwise: enough for PostgreSQL, Caddy and an npm build. */
export function defaultLimits(): ResolvedLimits {
  return {
    memoryBytes: 2 * GiB,
    cpus: availableParallelism(),
    pids: 1024,
    diskBytes: 10 * GiB,
    logBytes: 64 * 1024 * 1024,
  };
}

const BOUNDS: Record<keyof ResolvedLimits, { min: number; integer: boolean }> = {
  memoryBytes: { min: 16 * 1024 * 1024, integer: true },
  cpus: { min: 0.01, integer: false },
  pids: { min: 8, integer: true },
  diskBytes: { min: 1024 * 1024, integer: true },
  logBytes: { min: 64 * 1024, integer: true },
};

/**
 * `limits` over `defaults`. Throws a `HOX_BAD_REQUEST` naming the field
 * (`limits.pids: …`) for a value that is not a number in range.
 */
export function resolveLimits(
  defaults: ResolvedLimits,
  limits: PartitionLimits | undefined,
  field = 'limits',
): ResolvedLimits {
  const resolved = { ...defaults };
  for (const [key, value] of Object.entries(limits ?? {})) {
    if (!(key in BOUNDS)) throw badRequest(`${field}.${key}`, `is not a limit (${Object.keys(BOUNDS).join(', ')})`);
    const name = key as keyof ResolvedLimits;
    const { min, integer } = BOUNDS[name];
    if (value === undefined) continue;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      (integer && !Number.isSafeInteger(value))
    )
      throw badRequest(
        `${field}.${key}`,
        `${String(value)} must be ${integer ? 'an integer' : 'a number'} of at least ${min}`,
      );
    resolved[name] = value;
  }
  return resolved;
}
