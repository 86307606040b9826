import type { Clock } from '../shared/clock.js';
import type { SecretBox } from '../store/secret-box.js';
import type { StoreTx } from '../store/store.js';
import type { Principal } from './principal.js';

/** What every domain operation receives: one transaction, the clock, the caller. */
export interface OpContext {
  tx: StoreTx;
  clock: Clock;
  principal: Principal;
  /** The store key: opens the platform CA (certificates of nodes and instances, their revocation). */
  box: SecretBox;
  /** Runs `work` once the transaction has committed (not if it fails); errors are logged, not answered. */
  afterCommit?: (work: () => Promise<void>) => void;
}

/**
 * Next processing timestamp, in microseconds like SlapOS's master: wall time,
 * but always strictly greater than the previous value.
 */
export function nextTimestamp(clock: Clock, previous: number): number {
  return Math.max(clock.nowMs() * 1000, previous + 1);
}
