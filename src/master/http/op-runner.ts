/** How a route runs an operation: authenticated, its caller's kind checked, in one audited transaction. */
import type { FastifyRequest } from 'fastify';
import type { TokenKind } from '../../shared/states.js';
import type { OpContext } from '../context.js';

export interface OpSpec {
  /** The path named in refusals. */
  path: string;
  /** Principal kinds accepted; the operation applies finer object-level checks. */
  auth: readonly TokenKind[];
  /** Runs in the allocation lock (requests, formats, registrations). */
  exclusive?: boolean;
  /** May make room for an instance that waits: the allocator looks once it commits. */
  mayMakeRoom?: boolean;
  /** Without a bearer token, the client certificate presented names the caller (a SlapOS node or instance). */
  certificateAuth?: boolean;
}

export type OpRunner = <T>(request: FastifyRequest, op: OpSpec, work: (ctx: OpContext) => Promise<T>) => Promise<T>;
