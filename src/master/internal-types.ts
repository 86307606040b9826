/**
 * Internal software types: types a release requests for itself (hyper_db's `member`, hyper_edge's
 * `replica`) and nobody else may. Their parameters are written by the release's own profile — a member's
 * PostgreSQL settings, a replica's source artifact — so a user requesting one directly could set what the
 * release never lets them set. The release declares them in its manifest (`internalSoftwareTypes`); the
 * master knows those of the built-in releases it ships, and the node agent refuses to run any internal
 * type that is a root or a shared instance (for releases the master does not know).
 */
import { HoxError } from '../shared/errors.js';
import type { InstanceRow } from '../store/store.js';

/** Release URL → its internal software types. */
export type InternalSoftwareTypes = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * Refuses a request for an internal type unless the requester is an instance of that very release.
 * Destroying is always allowed (instances created before a type became internal must go away).
 */
export function assertMayRequestType(
  internal: InternalSoftwareTypes,
  input: { software_release_uri: string; software_type: string; state?: string },
  requester: InstanceRow | undefined,
): void {
  if (input.state === 'destroyed') return;
  if (internal.get(input.software_release_uri)?.has(input.software_type) !== true) return;
  if (requester !== undefined && requester.releaseUrl === input.software_release_uri) return;
  throw new HoxError(
    'HOX_BAD_REQUEST',
    `software type '${input.software_type}' of release '${input.software_release_uri}' is internal: only the release's own instances request it`,
    { field: 'software_type' },
  );
}
