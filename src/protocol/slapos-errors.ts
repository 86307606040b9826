/**
 * How errors read on SlapOS's own routes (`/slapos.*.v0.*`): as SlapOS's master answers them (its JSON-RPC
 * service, docs/slapos.md), `{status, type, title}` with SlapOS's type names and its 403 for the objects a caller
 * cannot reach, plus `detail` (our message, when the title is SlapOS's fixed wording) and `field` (the request
 * field at fault). Our own `hox.*.v1.*` routes keep `{status, type: HOX_…, title, field?, retryable}`.
 *
 * The mapping is one-to-one, so a client turns either shape back into the same {@link HoxError}.
 */
import type { HoxError } from '../shared/errors.js';
import { ERROR_CATALOGUE, isErrorCode, type ErrorCode } from '../shared/errors.js';

/** Codes SlapOS's master has a name of its own for (its JSON-RPC service and its framework, OpenAPIService). */
const SLAPOS_NAMES: Partial<Record<ErrorCode, { type: string; status: number }>> = {
  HOX_BAD_REQUEST: { type: 'invalid-json-object-content', status: 400 },
  HOX_UNAUTHENTICATED: { type: 'unauthorized', status: 401 },
  HOX_NOT_FOUND: { type: 'not-found', status: 404 },
  HOX_NODE_NOT_FOUND: { type: 'COMPUTE-NODE-NOT-FOUND', status: 403 },
  HOX_INSTANCE_NOT_FOUND: { type: 'SOFTWARE-INSTANCE-NOT-FOUND', status: 403 },
  HOX_INSTANCE_TREE_NOT_FOUND: { type: 'INSTANCE-TREE-NOT-FOUND', status: 403 },
  HOX_SOFTWARE_INSTALLATION_NOT_FOUND: { type: 'SOFTWARE-INSTALLATION-NOT-FOUND', status: 403 },
  HOX_SOFTWARE_DESTROY_NOT_REQUESTED: { type: 'SOFTWARE-INSTALLATION-DESTROY-NOT-REQUESTED', status: 403 },
  HOX_INVALID_TIOXML: { type: 'INVALIDATE_TIOXML', status: 400 },
};

/** The v0 type and status of `code`: SlapOS's own, else the code in SlapOS's spelling, refusals as 403. */
export function slaposErrorOf(code: ErrorCode): { type: string; status: number } {
  const named = SLAPOS_NAMES[code];
  if (named !== undefined) return named;
  const status = ERROR_CATALOGUE[code].status;
  // SlapOS's master answers every refusal about an object (missing, busy, conflicting) with 403.
  return {
    type: code.slice('HOX_'.length).replaceAll('_', '-'),
    status: status === 404 || status === 409 ? 403 : status,
  };
}

const BY_TYPE = new Map<string, ErrorCode>(
  (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).map((code) => [slaposErrorOf(code).type, code]),
);

/** The code a v0 answer's `type` stands for (undefined: not one of ours). */
export function codeOfSlaposType(type: string): ErrorCode | undefined {
  return BY_TYPE.get(type);
}

/** The body of an error answered on a `/slapos.*.v0.*` route. */
export function slaposErrorBody(error: HoxError): { status: number; body: Record<string, unknown> } {
  const { type, status } = slaposErrorOf(error.code);
  const detail = error.slaposTitle === undefined ? undefined : error.message;
  return {
    status,
    body: {
      status,
      type,
      title: error.slaposTitle ?? error.message,
      ...(detail === undefined ? {} : { detail }),
      ...(error.field === undefined ? {} : { field: error.field }),
    },
  };
}

/** Whether `path` is one of SlapOS's routes, which answer errors SlapOS's way. */
export const isSlaposPath = (path: string): boolean => path.startsWith('/slapos.');

/** The code an error body names, in either shape (a HOX_ code, or a v0 type). */
export function codeOfErrorType(type: unknown): ErrorCode | undefined {
  if (isErrorCode(type)) return type;
  return typeof type === 'string' ? codeOfSlaposType(type) : undefined;
}
