import { HoxError, type ErrorCode } from '../shared/errors.js';

/** Stable exit codes: 0 ok, 1 failed, 2 bad usage or input, 3 master unreachable. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

const BAD_INPUT: ReadonlySet<ErrorCode> = new Set([
  'HOX_BAD_REQUEST',
  'HOX_UNKNOWN_SLA_KEY',
  'HOX_INVALID_SLA',
  'HOX_BODY_TOO_LARGE',
]);

/**
 * A command hox ran elsewhere and followed (`hox app run`) ended with `exitCode`: hox exits with it too, after
 * saying so on stderr (the message).
 */
export class CommandExit extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CommandExit';
  }
}

/** The CLI's single conversion from error to exit code. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommandExit) return error.exitCode;
  if (!(error instanceof HoxError)) return EXIT.failed;
  if (error.code === 'HOX_MASTER_UNREACHABLE') return EXIT.unreachable;
  return BAD_INPUT.has(error.code) ? EXIT.usage : EXIT.failed;
}
