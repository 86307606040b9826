/**
 * What every client of the master API shares, whatever carries its calls (Node's `http` in
 * {@link MasterClient}, the browser's `fetch` in the web console): the types of a route's body and answer, and
 * how an error answer becomes the {@link HoxError} the master threw. No I/O here.
 */
import type { ROUTES, RouteName } from '../protocol/routes.js';
import type { Body, BodyName } from '../protocol/schemas.js';
import { HoxError } from '../shared/errors.js';
import { codeOfErrorType } from '../protocol/slapos-errors.js';

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

/**
 * The error an answer's body stands for: `{status, type: HOX_…, title, field?}` on our routes, SlapOS's
 * `{status, type, title, detail?, field?}` on `/slapos.*.v0.*` ones (src/protocol/slapos-errors.ts). Our message is
 * the `detail` when SlapOS's fixed wording took the title.
 */
export function toClientError(status: number, payload: unknown): HoxError {
  const body = (payload ?? {}) as { type?: unknown; title?: unknown; detail?: unknown; field?: unknown };
  const code = codeOfErrorType(body.type) ?? 'HOX_INTERNAL';
  const message =
    typeof body.detail === 'string'
      ? body.detail
      : typeof body.title === 'string'
        ? body.title
        : `master answered HTTP ${status}`;
  return new HoxError(code, message, typeof body.field === 'string' ? { field: body.field } : {});
}

/** Whether a request answer is SlapOS's "not ready yet" (HTTP 200, status 102). */
export function isNotReady(
  doc: ResponseOf<'requestInstance'>,
): doc is Extract<ResponseOf<'requestInstance'>, { status: 102 }> {
  return 'status' in doc && doc.status === 102;
}
