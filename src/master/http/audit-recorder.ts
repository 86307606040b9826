/**
 * Where the HTTP edge writes the audit trail (docs/security/audit.md). Every
 * route declares `config.audit` (the route table's `audit`, or the artifact
 * routes' own): a route registered without it makes the server refuse to
 * start, so a new endpoint cannot slip past the trail unnoticed.
 *
 * - A successful audited call writes its entry inside the call's own
 *   transaction ({@link AuditRecorder.appendInTransaction}): the change and
 *   its entry commit together or not at all, one insert more per call.
 * - Every other answer of an audited route (a refused token, a bad body, a
 *   conflict, an upload) gets its entry just before it is sent (`onSend`), in
 *   a transaction of its own, since the call's transaction, if any, rolled
 *   back. Who made it is the principal the call established, or, when it
 *   failed before that (body parsing, validation), what its token
 *   authenticates as now; `unauthenticated` when none is accepted.
 */
import { bearerToken } from './bearer.js';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Logger } from 'pino';
import { codeOfErrorType } from '../../protocol/slapos-errors.js';
import type { Clock } from '../../shared/clock.js';
import type { AuditEntry, Store, StoreTx } from '../../store/store.js';
import { auditActor, auditTarget } from '../audit-trail.js';
import { authenticate, type Principal } from '../principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Whether calls of this route go to the audit trail. Required of every route. */
    audit?: boolean;
    /** The entry's `action` (the route name). */
    auditAction?: string;
  }
}

/** Routes outside the audit trail by nature: unauthenticated, read-only. */
/** The public paths: no token, no audit, no client certificate check. */
export const UNAUDITED_PATHS: ReadonlySet<string> = new Set(['/health', '/openapi.json', '/pki/trust-bundle']);

export class AuditRecorder {
  private readonly principals = new WeakMap<FastifyRequest, Principal>();
  private readonly audited = new WeakSet<FastifyRequest>();

  constructor(private readonly options: { store: Store; clock: Clock; logger: Logger; adminTokenHash: string }) {}

  /** The `onRoute` hook (installed before any route is added): refuses a route that does not declare `audit`. */
  readonly checkRoute = (route: RouteOptions): void => {
    if (UNAUDITED_PATHS.has(route.url)) return;
    if (typeof route.config?.audit !== 'boolean')
      throw new Error(`route ${String(route.method)} ${route.url} does not declare config.audit (true or false)`);
  };

  /** The `onSend` hook: the entry of an audited call not yet recorded (every answer but a committed success). */
  readonly onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const config = request.routeOptions.config;
    if (config.audit !== true || this.audited.has(request)) return payload;
    this.audited.add(request);
    const status = reply.statusCode;
    try {
      await this.options.store.transaction(async (tx) => {
        const principal = this.principals.get(request) ?? (await this.authenticateQuietly(tx, request));
        await tx.appendAudit(this.entry(request, principal, status, status < 400 ? 'ok' : errorCode(payload)));
      });
    } catch (err) {
      // The answer is decided already: the missing entry is logged, the caller still gets its answer.
      request.log.error({ err, url: request.url }, 'writing the audit entry failed');
    }
    return payload;
  };

  /** Records who the call is from, for an entry written after a failure. */
  notePrincipal(request: FastifyRequest, principal: Principal): void {
    this.principals.set(request, principal);
  }

  /** Appends the success entry of an audited call inside its transaction. */
  async appendInTransaction(tx: StoreTx, request: FastifyRequest, principal: Principal): Promise<void> {
    if (request.routeOptions.config.audit !== true) return;
    await tx.appendAudit(this.entry(request, principal, 200, 'ok'));
  }

  /** The call's transaction committed with its entry: none more at `onSend`. */
  committed(request: FastifyRequest): void {
    if (request.routeOptions.config.audit === true) this.audited.add(request);
  }

  private entry(request: FastifyRequest, principal: Principal | null, status: number, result: string): AuditEntry {
    const config = request.routeOptions.config;
    const json = request.headers['content-type']?.startsWith('application/json') === true;
    const { sha256 } = (request.params ?? {}) as { sha256?: unknown };
    const extra: Record<string, string> = typeof sha256 === 'string' ? { sha256: sha256.slice(0, 64) } : {};
    return {
      atMs: this.options.clock.nowMs(),
      ...auditActor(principal),
      address: request.ip,
      action: config.auditAction ?? `${request.method} ${request.routeOptions.url ?? ''}`,
      target: auditTarget(json ? request.body : undefined, extra),
      status,
      result,
    };
  }

  private async authenticateQuietly(tx: StoreTx, request: FastifyRequest): Promise<Principal | null> {
    const token = bearerToken(request);
    if (token === undefined) return null;
    try {
      return await authenticate(tx, token, this.options.adminTokenHash, this.options.clock);
    } catch {
      return null;
    }
  }
}

/** The error code of an error answer's body (`type`; SlapOS's names on its routes read as ours), or `error`. */
function errorCode(payload: unknown): string {
  if (typeof payload === 'string') {
    try {
      const body = JSON.parse(payload) as { type?: unknown };
      if (typeof body.type === 'string') return (codeOfErrorType(body.type) ?? body.type).slice(0, 64);
    } catch {
      // not JSON: fall through
    }
  }
  return 'error';
}
