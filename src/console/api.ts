/**
 * The console's way to the master: the same routes, bodies and errors as every other client (src/protocol,
 * src/client/route-call.ts), carried by the browser's `fetch` to the origin that served the page. The token the
 * person signed in with is kept in this tab's session storage only: it goes when the tab closes, it is never
 * written to a cookie (so no other site can make the browser send it), and only this origin's script reads it.
 */
import { ROUTES, type RouteName } from '../protocol/routes.js';
import { isOk, toClientError, type ApiCaller, type RequestOf, type ResponseOf } from '../client/route-call.js';
import { HoxError } from '../shared/errors.js';

const TOKEN_KEY = 'hox.console.token';

/** How long a call may take; long-polls and log reads add their own wait. */
const CALL_TIMEOUT_MS = 30_000;

export class ConsoleApi implements ApiCaller {
  constructor(readonly token: string) {}

  async call<R extends RouteName>(
    name: R,
    body: RequestOf<R>,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResponseOf<R>> {
    const { signal } = options;
    const route = ROUTES[name];
    const extraWaitMs =
      name === 'waitForChange'
        ? ((body as { timeout_ms?: number }).timeout_ms ?? 25_000)
        : name === 'readTreeLogs'
          ? ((body as { wait_ms?: number }).wait_ms ?? 10_000)
          : 0;
    const timeout = AbortSignal.timeout(CALL_TIMEOUT_MS + extraWaitMs);
    let response: Response;
    try {
      response = await fetch(route.path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
        body: JSON.stringify(body),
        signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (error) {
      if (signal?.aborted === true) throw error;
      throw new HoxError('HOX_MASTER_UNREACHABLE', `the master did not answer (${route.path})`, { cause: error });
    }
    let payload: unknown;
    try {
      payload = await response.json();
    } catch (error) {
      throw new HoxError('HOX_INTERNAL', `the master answered ${response.status} with a body that is not JSON`, {
        cause: error,
      });
    }
    if (!isOk(response.status)) throw toClientError(response.status, payload);
    return payload as ResponseOf<R>;
  }
}

/** The token this tab signed in with, if any. */
export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** What to show a person for an error: the master's own message, which names the thing and the value. */
export function errorText(error: unknown): string {
  if (error instanceof HoxError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
