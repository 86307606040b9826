/** How an instance's health problems read in its error report. */
import type { PromiseResult } from './promise/check-promise.js';

/** `promise <name>: <message>` for each failing promise, in order. */
export function promiseFailureMessages(results: readonly PromiseResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => `promise ${r.name}: ${r.message}`);
}
