import type { CheckOutcome } from './check-outcome.js';
import { describeError } from './describe-error.js';

/** How much of a body is searched for `bodyContains`; a promise checks health, it does not download. */
export const MAX_HTTP_BODY_BYTES = 1024 * 1024;

export interface HttpCheck {
  url: string;
  /** Expected status; any 2xx or 3xx when absent. */
  status?: number;
  bodyContains?: string;
}

/**
 * GETs the URL without following redirects (a 3xx is an answer, as in SlapOS's
 * check_url_available), bounded by timeoutMs for headers and body together.
 */
export async function checkHttp(check: HttpCheck, timeoutMs: number): Promise<CheckOutcome> {
  let url: URL;
  try {
    url = new URL(check.url);
  } catch {
    return { ok: false, detail: 'invalid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, detail: `unsupported protocol '${url.protocol}'` };
  }
  const signal = AbortSignal.timeout(timeoutMs);
  const failure = (error: unknown): CheckOutcome => ({
    ok: false,
    detail: signal.aborted ? `timed out after ${timeoutMs} ms` : describeError(error),
  });

  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'manual', headers: { 'user-agent': 'hyperopenx-promise' } });
  } catch (error) {
    return failure(error);
  }
  const { status } = response;
  const statusOk = check.status === undefined ? status >= 200 && status < 400 : status === check.status;
  if (!statusOk || check.bodyContains === undefined) {
    await discardBody(response);
    return statusOk
      ? { ok: true, detail: `status ${status}` }
      : { ok: false, detail: `status ${status}, expected ${check.status ?? '2xx or 3xx'}` };
  }

  let body: { text: string; truncated: boolean };
  try {
    body = await readBoundedText(response, MAX_HTTP_BODY_BYTES);
  } catch (error) {
    return failure(error);
  }
  if (body.text.includes(check.bodyContains)) {
    return { ok: true, detail: `status ${status}, body contains '${check.bodyContains}'` };
  }
  const where = body.truncated ? `first ${MAX_HTTP_BODY_BYTES} bytes of body` : 'body';
  return { ok: false, detail: `${where} does not contain '${check.bodyContains}'` };
}

async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // The verdict is already known; a body that fails to close changes nothing.
  }
}

async function readBoundedText(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (response.body === null) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = maxBytes - size;
    chunks.push(value.byteLength > room ? value.subarray(0, room) : value);
    size += Math.min(value.byteLength, room);
    if (size >= maxBytes) {
      truncated = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), truncated };
}
