/**
 * What every client of the master API shares, whatever carries its calls (Node's `http` in
 * {@link MasterClient}, the browser's `fetch` in the web console): the types of a route's body and answer, and
 * how an error answer becomes the {@link HoxError} the master threw. No I/O here.
 */
import type { ROUTES, RouteName } from '../protocol/routes.js';
import type { Body, BodyName } from '../protocol/schemas.js';
import { HoxError, isErrorCode } from '../shared/errors.js';

export type RequestOf<R extends RouteName> = Body<(typeof ROUTES)[R]['body'] & BodyName>;
export type ResponseOf<R extends RouteName> = Body<(typeof ROUTES)[R]['response'] & BodyName>;

/** Whatever calls the master's routes: code that only calls (no artifacts, no certificates) takes this. */
export interface ApiCaller {
  call<R extends RouteName>(route: R, body: RequestOf<R>, options?: { signal?: AbortSignal }): Promise<ResponseOf<R>>;
}

/** A 2xx status, as `Response.ok`. */
export function isOk(status: number): boolean {
  return status >= 200 && status <= 299;
}

/** The error an answer's body (`{status, type, title, field?}`) stands for. */
export function toClientError(status: number, payload: unknown): HoxError {
  const body = (payload ?? {}) as { type?: unknown; title?: unknown; field?: unknown };
  const code = isErrorCode(body.type) ? body.type : 'HOX_INTERNAL';
  const message = typeof body.title === 'string' ? body.title : `master answered HTTP ${status}`;
  return new HoxError(code, message, typeof body.field === 'string' ? { field: body.field } : {});
}

/** Whether a request answer is SlapOS's "not ready yet" (HTTP 200, status 102). */
export function isNotReady(
  doc: ResponseOf<'requestInstance'>,
): doc is Extract<ResponseOf<'requestInstance'>, { status: 102 }> {
  return 'status' in doc && doc.status === 102;
}
