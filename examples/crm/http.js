/** Small HTTP helpers over node:http: form bodies, responses, and the one error type handlers throw. */

/** An error with an HTTP status; its message is shown to the user (so it never holds internals). */
export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/** @default largest accepted form body (64 KiB): every field has a few hundred characters at most */
const MAX_FORM_BYTES = 64 * 1024;

/**
 * Reads an `application/x-www-form-urlencoded` body.
 *
 * @returns {Promise<URLSearchParams>}
 * @throws {HttpError} 415 for another content type, 413 when larger than 64 KiB
 */
export async function readForm(req) {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(415, 'expected a form (application/x-www-form-urlencoded)');
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Headers on every response: the pages need nothing but their own inline style and same-origin forms. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

/** Sends `body` (a string or SafeHtml) as an HTML page. */
export function sendHtml(res, status, body, headers = {}) {
  const text = String(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Sends plain text (health checks, errors before a page can be rendered). */
export function sendText(res, status, text, headers = {}) {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** 303 See Other: after a successful POST, the browser GETs the result (no resubmission on reload). */
export function redirect(res, location, headers = {}) {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'content-length': 0, 'cache-control': 'no-store', ...headers });
  res.end();
}
