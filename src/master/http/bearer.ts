/** The bearer token of a request: `Authorization: Bearer <token>`, the only way a token reaches the master. */
import type { FastifyRequest } from 'fastify';
import { HoxError } from '../../shared/errors.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token, or undefined when the header is missing or not of that form. */
export function bearerToken(request: FastifyRequest): string | undefined {
  return BEARER.exec(request.headers.authorization ?? '')?.[1];
}

/** The token, or `HOX_UNAUTHENTICATED` saying what is wrong with the header. */
export function bearer(request: FastifyRequest): string {
  const token = bearerToken(request);
  if (token !== undefined) return token;
  throw new HoxError(
    'HOX_UNAUTHENTICATED',
    request.headers.authorization === undefined
      ? 'missing Authorization: Bearer <token> header'
      : 'Authorization header must be "Bearer <token>"',
  );
}
