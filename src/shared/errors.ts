/**
 * The single error type of HyperOpenX and its code catalogue.
 *
 * Every failure that crosses a boundary (HTTP body, client, CLI exit code) is
 * a {@link HoxError} carrying one of the codes below. Each edge converts
 * exactly once: the master's HTTP layer turns it into `{status, type,
 * title, field?, retryable}`, the client turns that body back into the same `HoxError`, the CLI
 * turns it into an exit code. `docs/errors.md` is checked against this table
 * by a test.
 */

export interface ErrorSpec {
  /** HTTP status the master answers with. */
  readonly status: number;
  /** Whether trying the same call again later may succeed. */
  readonly retryable: boolean;
  /** One line for docs/errors.md. */
  readonly description: string;
}

export const ERROR_CATALOGUE = {
  HOX_BAD_REQUEST: {
    status: 400,
    retryable: false,
    description: 'The body is malformed or fails the endpoint schema; the message names the field.',
  },
  HOX_BODY_TOO_LARGE: {
    status: 413,
    retryable: false,
    description: 'The request body is larger than the master accepts.',
  },
  HOX_ARTIFACT_QUOTA_EXCEEDED: {
    status: 413,
    retryable: false,
    description:
      "The upload would take its owner's artifacts over the master's per-owner quota; the message gives the sizes.",
  },
  HOX_UNAUTHENTICATED: {
    status: 401,
    retryable: false,
    description: 'No bearer token, or a token the master does not know.',
  },
  HOX_FORBIDDEN: {
    status: 403,
    retryable: false,
    description: 'The token is valid but may not act on this object.',
  },
  HOX_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'No such endpoint.',
  },
  HOX_NODE_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'The compute node named is not registered.',
  },
  HOX_PARTITION_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'The partition named does not exist on that compute node.',
  },
  HOX_PARTITION_BUSY: {
    status: 409,
    retryable: false,
    description: 'A format would remove a partition that still hosts an instance.',
  },
  HOX_INSTANCE_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'The instance named does not exist (or is not visible to the caller).',
  },
  HOX_INSTANCE_TREE_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'The instance tree named does not exist (or is not visible to the caller).',
  },
  HOX_SOFTWARE_INSTALLATION_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: 'The software release was never supplied to that compute node.',
  },
  HOX_NO_FREE_PARTITION: {
    status: 409,
    retryable: true,
    description:
      'No free partition matches (release supplied, SLA, anti-affinity): for an instance already accepted and waiting, when the client needs one now (hox db create checks the cluster can start).',
  },
  HOX_SOFTWARE_DESTROY_NOT_REQUESTED: {
    status: 409,
    retryable: false,
    description: 'A node reported a software installation destroyed though its destruction was not requested.',
  },
  HOX_INVALID_TIOXML: {
    status: 400,
    retryable: false,
    description:
      "A usage report is not a TioXML journal (SlapOS's `INVALIDATE_TIOXML`); the detail says what is wrong.",
  },
  HOX_NO_SHARED_HOST: {
    status: 409,
    retryable: true,
    description: 'A shared instance was requested but no busy partition runs the same release to host it.',
  },
  HOX_UNKNOWN_SLA_KEY: {
    status: 400,
    retryable: false,
    description: 'The SLA names a key the allocator does not know.',
  },
  HOX_INVALID_SLA: {
    status: 400,
    retryable: false,
    description: 'An SLA value is not acceptable (e.g. an unknown mode).',
  },
  HOX_TITLE_CONFLICT: {
    status: 409,
    retryable: false,
    description: 'Another instance of the same instance tree already has that title.',
  },
  HOX_CONFLICT: {
    status: 409,
    retryable: false,
    description: 'The change conflicts with the current state (e.g. a name already taken).',
  },
  HOX_TOKEN_USED: {
    status: 401,
    retryable: false,
    description: 'A one-time registration token was already used or has expired.',
  },
  HOX_STORE_BUSY: {
    status: 503,
    retryable: true,
    description: 'The store could not complete the transaction after several retries.',
  },
  HOX_STORE_KEY: {
    status: 500,
    retryable: false,
    description:
      "The master's store key is malformed or is not the key the store's secrets were sealed with; the message names the key file.",
  },
  HOX_NODE_NOT_ANSWERING: {
    status: 504,
    retryable: true,
    description:
      'A compute node did not answer a request relayed by the master (logs) in time; the message names the node and its last contact.',
  },
  HOX_MONITOR_NOT_ANSWERING: {
    status: 504,
    retryable: true,
    description:
      "The platform's monitor (its Prometheus) did not answer a query the master relayed (hox metrics); the message says what failed.",
  },
  HOX_MASTER_UNREACHABLE: {
    status: 503,
    retryable: true,
    description: 'The client could not reach the master (client-side only).',
  },
  HOX_MASTER_UNTRUSTED: {
    status: 503,
    retryable: false,
    description:
      "The master's TLS certificate does not verify against the CA the client trusts for it (client-side only); the message says how to pin the right CA.",
  },
  HOX_INTERNAL: {
    status: 500,
    retryable: true,
    description: 'An unexpected error; the master log has the details.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOGUE, value);
}

export interface HoxErrorOptions {
  /** The request field at fault, as a JSON pointer-ish path (`sla_parameters.foo`). */
  field?: string;
  cause?: unknown;
  /**
   * The title SlapOS's master gives this error on the `slapos.*.v0.*` routes, when a client may compare it
   * (src/protocol/slapos-errors.ts); the message then goes in the answer's `detail`.
   */
  slaposTitle?: string;
}

export class HoxError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly field: string | undefined;
  readonly slaposTitle: string | undefined;

  constructor(code: ErrorCode, message: string, options: HoxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoxError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.retryable = ERROR_CATALOGUE[code].retryable;
    this.field = options.field;
    this.slaposTitle = options.slaposTitle;
  }
}

/** Throws a `HOX_BAD_REQUEST` naming the field. */
export function badRequest(field: string, reason: string): HoxError {
  return new HoxError('HOX_BAD_REQUEST', `${field}: ${reason}`, { field });
}
