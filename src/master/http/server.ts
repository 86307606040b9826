/**
 * The master's HTTP edge: Fastify, the route table, bearer authentication,
 * request validation (Fastify's Ajv, closed schemas, no coercion) and
 * response validation (our own Ajv, before serialisation). Errors become
 * `{status, type, title, field?, retryable}` here and nowhere else.
 */
import { monitorInstance } from '../alerts.js';
import { Ajv, type ValidateFunction } from 'ajv';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { buildOpenApi } from '../../protocol/openapi.js';
import { ROUTES, type RouteName } from '../../protocol/routes.js';
import { Bodies } from '../../protocol/schemas.js';
import type { Clock } from '../../shared/clock.js';
import { HoxError } from '../../shared/errors.js';
import { schemaErrorText } from '../../shared/schema-error-message.js';
import type { Store } from '../../store/store.js';
import type { ArtifactSettings } from '../artifact-collector.js';
import type { ChangeFeed } from '../change-feed.js';
import type { TrustBundlePem } from '../../shared/pki/trust-bundle.js';
import type { OpContext } from '../context.js';
import { authenticate, describePrincipal } from '../principal.js';
import { HANDLERS, type HandlerEnv } from './handlers.js';
import { artifactRoutes } from './artifact-routes.js';
import { AuditRecorder, UNAUDITED_PATHS } from './audit-recorder.js';
import { bearer, bearerToken } from './bearer.js';
import { slapRoutes, isSlapPath, slapErrorStatus } from './slap-routes.js';
import type { OpRunner } from './op-runner.js';
import {
  certificateHolder,
  checkPresentedCertificate,
  presentedCertificate,
  refuseNodeWithoutCertificate,
} from '../pki/client-certificates.js';
import { waitForChange } from './wait-for-change.js';
import { consoleRoutes, type ConsoleAssets } from './console-assets.js';
import { ApiMetrics, storeMetrics } from './metrics.js';
import { listLogRequests, readTreeLogs } from '../log-relay.js';
import { queryMetrics } from '../metrics-query.js';
import { PendingAllocator } from '../pending-allocation.js';
import { isSlaposPath, slaposErrorBody } from '../../protocol/slapos-errors.js';

/** Routes that wait (bounded) for something to happen: they authenticate themselves and hold no transaction. */
const WAITING_ROUTES = {
  waitForChange,
  readTreeLogs,
  listLogRequests,
  queryMetrics,
} as const satisfies Partial<
  Record<RouteName, (options: HttpServerOptions, token: string, body: never, signal: AbortSignal) => Promise<unknown>>
>;
type WaitingRoute = keyof typeof WAITING_ROUTES;
const isWaitingRoute = (name: RouteName): name is WaitingRoute => Object.hasOwn(WAITING_ROUTES, name);

/** JSON is UTF-8 (RFC 8259): no charset parameter, as SlapOS's clients compare the header whole. */
const JSON_TYPE = 'application/json';

const EXCLUSIVE_ROUTES: ReadonlySet<RouteName> = new Set(['requestInstance', 'formatNode', 'registerNode']);

/**
 * Routes whose change may make room for an instance that waits (src/master/pending-allocation.ts); an instance's
 * report only when it says destroyed (a partition freed): the others are the platform's steady traffic.
 */
const MAY_MAKE_ROOM: ReadonlySet<RouteName> = new Set(['supply', 'formatNode', 'registerNode', 'requestInstance']);
const makesRoom = (name: RouteName, body: unknown): boolean =>
  MAY_MAKE_ROOM.has(name) ||
  (name === 'reportInstanceState' && (body as { reported_state?: unknown }).reported_state === 'destroyed');

export interface HttpServerOptions {
  store: Store;
  feed: ChangeFeed;
  clock: Clock;
  logger: Logger;
  adminTokenHash: string;
  env: HandlerEnv;
  /** @default 2 MiB */
  bodyLimitBytes?: number;
  /** How often the allocator looks for waiting instances besides the changes that poke it. @default 30 s */
  pendingSweepIntervalMs?: number;
  /** Upload limit and per-user quota of artifacts. @default ARTIFACT_DEFAULTS */
  artifacts?: ArtifactSettings;
  /** The web console's files (`GET /`); without them `/` says how to build it. */
  console?: ConsoleAssets;
  /** The platform CA's trust bundle, served to anyone (`GET /pki/trust-bundle`). */
  trustBundle?: () => Promise<TrustBundlePem>;
  /** Calls made with a node's token must present that node's certificate (but the one asking for it). */
  requireNodeCertificates?: boolean;
  /**
   * Serve HTTPS with this key and certificate chain (PEM), asking clients for a certificate that chains to `ca`
   * (the platform CA's roots and issuing CAs); plain HTTP without.
   */
  https?: { key: string; cert: string; ca: string };
}

/** Turns whatever was thrown into the one error the API speaks. */
export function toHoxError(error: unknown): HoxError {
  if (error instanceof HoxError) return error;
  const e = error as FastifyError & {
    validation?: { instancePath: string; keyword: string; params: Record<string, unknown>; message?: string }[];
  };
  if (e.validation !== undefined && e.validation.length > 0) {
    const { field, message } = schemaErrorText(e.validation[0]!, '', 'body');
    return new HoxError('HOX_BAD_REQUEST', message, { field: field || 'body' });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HoxError('HOX_BODY_TOO_LARGE', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HoxError('HOX_BAD_REQUEST', 'content-type must be application/json', { field: 'content-type' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HoxError('HOX_BAD_REQUEST', 'body: must be a JSON object', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HoxError('HOX_BAD_REQUEST', 'body: not valid JSON', { field: 'body' });
    default:
      break;
  }
  if (error instanceof SyntaxError || (e.statusCode === 400 && typeof e.message === 'string'))
    return new HoxError('HOX_BAD_REQUEST', `body: ${e.message}`, { field: 'body' });
  return new HoxError('HOX_INTERNAL', 'internal error', { cause: error });
}

export function errorBody(error: HoxError): Record<string, unknown> {
  return {
    status: error.status,
    type: error.code,
    title: error.message,
    ...(error.field === undefined ? {} : { field: error.field }),
    retryable: error.retryable,
  };
}

export async function buildHttpServer(options: HttpServerOptions) {
  const { store, clock, logger } = options;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes ?? 2 * 1024 * 1024,
    // On shutdown, long-polls and half-closed sockets are cut at once: clients retry.
    forceCloseConnections: true,
    // Request lines are not logged: bodies and headers may carry tokens and secrets.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    ...(options.https === undefined
      ? {}
      : {
          https: {
            ...options.https,
            minVersion: 'TLSv1.2' as const,
            // Mutual TLS when the client has a certificate; a CLI or a browser without one still connects.
            requestCert: true,
            rejectUnauthorized: false,
          },
        }),
  });

  const responseAjv = new Ajv({ strict: false, allErrors: false });
  const responseValidators = new Map<string, ValidateFunction>();
  for (const [name, route] of Object.entries(ROUTES))
    responseValidators.set(name, responseAjv.compile(Bodies[route.response]));

  /** Errors answer SlapOS's way on its routes, ours elsewhere (src/protocol/slapos-errors.ts). */
  const sendError = (request: FastifyRequest, reply: FastifyReply, hox: HoxError): void => {
    // slap.py reads a status only: 404 is "not found", 408 "not ready", anything else a failure.
    if (isSlapPath(request.url))
      void reply.status(slapErrorStatus(hox)).type('text/plain; charset=utf-8').send(`${hox.code}: ${hox.message}`);
    else if (isSlaposPath(request.url)) {
      const { status, body } = slaposErrorBody(hox);
      void reply.status(status).type(JSON_TYPE).send(body);
    } else void reply.status(hox.status).type(JSON_TYPE).send(errorBody(hox));
  };
  app.setErrorHandler((error, request, reply) => {
    const hox = toHoxError(error);
    if (hox.code === 'HOX_INTERNAL') request.log.error({ err: error, url: request.url }, 'internal error');
    else request.log.info({ url: request.url, code: hox.code }, hox.message);
    sendError(request, reply, hox);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(
      request,
      reply,
      new HoxError('HOX_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0] ?? ''}`),
    );
  });

  const allocator = new PendingAllocator(store, clock, logger);
  app.addHook('onReady', async () => {
    allocator.start(options.pendingSweepIntervalMs);
    return Promise.resolve();
  });
  app.addHook('onClose', async () => await allocator.stop());

  // Fastify adds `; charset=utf-8` to the JSON it serialises; SlapOS's clients compare the header whole.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.getHeader('content-type') === 'application/json; charset=utf-8')
      void reply.header('content-type', JSON_TYPE);
    return Promise.resolve(payload);
  });

  // Every answer counted, by registered route (a bounded set of labels).
  const apiMetrics = new ApiMetrics();
  app.addHook('onResponse', async (request, reply) => {
    apiMetrics.observe(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    return Promise.resolve();
  });

  // Before any route: every route must declare whether it is audited.
  const audit = new AuditRecorder({ store, clock, logger, adminTokenHash: options.adminTokenHash });
  app.addHook('onRoute', audit.checkRoute);
  app.addHook('onSend', audit.onSend);

  // A request that came with a client certificate is held to it (src/master/pki/client-certificates.ts).
  app.addHook('onRequest', async (request) => {
    if (UNAUDITED_PATHS.has(request.url.split('?')[0] ?? '')) return;
    const presented = presentedCertificate(request.raw.socket);
    const token = bearerToken(request);
    if (presented !== undefined) await checkPresentedCertificate(store, options.adminTokenHash, presented, token);
    else if (
      options.requireNodeCertificates === true &&
      token !== undefined &&
      request.url !== ROUTES.nodeCertificate.path
    )
      await refuseNodeWithoutCertificate(store, token);
  });

  app.get('/health', () => ({ status: 'ok' }));
  // Prometheus (src/master/http/metrics.ts): the admin's token, or the platform's monitor (an hyper_monitor instance
  // of the admin's, src/master/alerts.ts) with its instance token; what it shows spans every tenant.
  // Read-only telemetry, scraped every few seconds: not audited (it would crowd people's actions out).
  app.get('/metrics', { config: { audit: false } }, async (request, reply) => {
    const token = bearer(request);
    const text = await store.transaction(async (tx) => {
      const principal = await authenticate(tx, token, options.adminTokenHash, clock);
      if ((await monitorInstance(tx, principal)) === null)
        throw new HoxError(
          'HOX_FORBIDDEN',
          `${describePrincipal(principal)} may not read /metrics: the admin's only (and the platform's monitor's)`,
        );
      return await storeMetrics(tx, clock);
    });
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(`${await apiMetrics.registry.metrics()}${text}`);
  });
  void app.register(consoleRoutes(options.console));
  const openApi = buildOpenApi({ serverUrl: options.env.baseUrl });
  app.get('/openapi.json', () => openApi);
  // Public material (roots, issuing CAs, CRLs): what a client checks against the CA pin it was given before it
  // trusts this master (hox login --ca-pin, hox node --ca-pin), as kubeadm's discovery does.
  const trustBundle = options.trustBundle;
  if (trustBundle !== undefined) app.get('/pki/trust-bundle', async () => await trustBundle());

  /** Authenticates, checks the caller's kind and runs the operation in one transaction, audited. */
  const runOp: OpRunner = async (request, op, work) => {
    const token = op.certificateAuth === true ? bearerToken(request) : bearer(request);
    let committed: (() => Promise<void>)[] = [];
    const result = await store.transaction(
      async (tx) => {
        committed = []; // a retried transaction starts over
        const principal =
          token !== undefined
            ? await authenticate(tx, token, options.adminTokenHash, clock)
            : await certificateHolder(tx, presentedCertificate(request.raw.socket));
        audit.notePrincipal(request, principal);
        if (!(op.auth as readonly string[]).includes(principal.kind))
          throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(principal)} may not call ${op.path}`);
        const answer = await work({ tx, clock, principal, box: store.box, afterCommit: (w) => committed.push(w) });
        // The entry commits with the change it records.
        await audit.appendInTransaction(tx, request, principal);
        return answer;
      },
      // Requests allocate, formats and registrations reshape the partition table: they queue
      // rather than fight over the same rows (and the same index pages) on PostgreSQL.
      op.exclusive === true ? { exclusive: 'allocation' } : {},
    );
    audit.committed(request);
    if (op.mayMakeRoom === true) allocator.poke();
    for (const w of committed)
      await w().catch((err: unknown) => request.log.error({ err, url: request.url }, 'work after commit failed'));
    return result;
  };
  const run = (request: FastifyRequest, name: RouteName, work: (ctx: OpContext) => Promise<unknown>) =>
    runOp(
      request,
      {
        path: ROUTES[name].path,
        auth: ROUTES[name].auth,
        exclusive: EXCLUSIVE_ROUTES.has(name),
        mayMakeRoom: makesRoom(name, request.body),
      },
      work,
    );

  const validateResponse = (name: string, payload: unknown): void => {
    const validate = responseValidators.get(name)!;
    if (!validate(payload)) {
      throw new HoxError('HOX_INTERNAL', `response of ${name} does not match its schema`, {
        cause: new Error(responseAjv.errorsText(validate.errors)),
      });
    }
  };

  void app.register(artifactRoutes(options, audit));
  // SlapOS's older protocol (slap.py, slapgrid): its own paths, forms in, xml_marshaller out.
  void app.register(slapRoutes({ run: runOp, env: options.env }));

  for (const [name, route] of Object.entries(ROUTES) as [RouteName, (typeof ROUTES)[RouteName]][]) {
    app.post(
      route.path,
      { schema: { body: Bodies[route.body] }, config: { audit: route.audit, auditAction: name } },
      async (request: FastifyRequest, reply: FastifyReply) => {
        if (isWaitingRoute(name)) {
          const token = bearer(request);
          const abort = new AbortController();
          // The client went away: stop waiting. (The request stream closes as soon as its body is read.)
          reply.raw.on('close', () => {
            if (!reply.raw.writableEnded) abort.abort();
          });
          const wait = WAITING_ROUTES[name] as (
            o: HttpServerOptions,
            t: string,
            b: never,
            s: AbortSignal,
          ) => Promise<unknown>;
          const result = await wait(options, token, request.body as never, abort.signal);
          validateResponse(name, result);
          return reply.type(JSON_TYPE).send(result);
        }
        const handler = HANDLERS[name] as (ctx: OpContext, body: never, env: HandlerEnv) => Promise<unknown>;
        const result = await run(request, name, (ctx) => handler(ctx, request.body as never, options.env));
        validateResponse(name, result);
        return reply.type(JSON_TYPE).send(result);
      },
    );
  }
  return app;
}
