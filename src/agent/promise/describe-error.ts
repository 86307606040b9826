/** Short readable words for the system errors a promise check meets most. */
const ERROR_CODE_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name resolution failed',
  ETIMEDOUT: 'connection timed out',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'connection closed',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_HEADERS_OVERFLOW: 'response headers too large',
};

/** How deep a `cause` chain is followed (fetch wraps the socket error once or twice). */
const MAX_CAUSE_DEPTH = 4;

/**
 * One readable phrase for a thrown value: a known system error code becomes
 * words ("connection refused"); otherwise the innermost `cause` message, which
 * is more telling than wrappers such as fetch's "fetch failed".
 */
export function describeError(error: unknown): string {
  let current: unknown = error;
  let innermostMessage: string | undefined;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
    if (typeof current === 'object') {
      const { code, message } = current as { code?: unknown; message?: unknown };
      if (typeof code === 'string' && ERROR_CODE_TEXT[code] !== undefined) return ERROR_CODE_TEXT[code];
      if (typeof message === 'string' && message !== '') innermostMessage = message;
      current = (current as { cause?: unknown }).cause;
    } else {
      if (typeof current === 'string' && current !== '') innermostMessage = current;
      break;
    }
  }
  return innermostMessage ?? 'unknown error';
}
