/** How an instance's health problems read in its error report. */
import type { PromiseResult } from './promise/check-promise.js';
import { MAX_PROMISE_MESSAGE_CHARS } from './promise/check-promise.js';
import { safePromiseMessage } from './promise/promise-reporter.js';

/**
 * `promise <name>: <message>` for each failing promise, in order, credentials masked as in the promise report
 * (`hox show` prints both: a password a check printed must not reach the master by the status either).
 */
export function promiseFailureMessages(results: readonly PromiseResult[]): string[] {
  return results
    .filter((r) => !r.ok)
    .map((r) => `promise ${r.name}: ${safePromiseMessage(r.message, MAX_PROMISE_MESSAGE_CHARS)}`);
}
