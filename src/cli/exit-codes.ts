import { HoxError } from '../shared/errors.js';

/** Stable exit codes: 0 ok, 1 failed, 2 bad usage or input, 3 master unreachable. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof HoxError)) return EXIT.failed;
  if (error.code === 'HOX_MASTER_UNREACHABLE') return EXIT.unreachable;
  if (
    error.status >= 400 &&
    error.status < 500 &&
    error.code !== 'HOX_UNAUTHENTICATED' &&
    error.code !== 'HOX_FORBIDDEN'
  ) {
    if (['HOX_BAD_REQUEST', 'HOX_UNKNOWN_SLA_KEY', 'HOX_INVALID_SLA', 'HOX_BODY_TOO_LARGE'].includes(error.code))
      return EXIT.usage;
  }
  return EXIT.failed;
}
