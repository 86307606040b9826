/**
 * Restart delays of a crashing service: exponential from `initialMs`, doubled
 * each consecutive crash, capped at `maxMs`. A service that stayed up for
 * `resetAfterMs` is considered healthy again and starts over from `initialMs`.
 */

export interface BackoffOptions {
  /** Delay before the first restart. */
  initialMs: number;
  /** Largest delay. */
  maxMs: number;
  /** A run at least this long resets the sequence to `initialMs`. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  resetAfterMs: 10_000,
});

/**
 * Delay before restart number `attempt` (0 for the first restart after a healthy run).
 *
 * @example backoffDelayMs(0, DEFAULT_BACKOFF) === 500; backoffDelayMs(3, DEFAULT_BACKOFF) === 4000
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions): number {
  // Capping the exponent keeps 2 ** attempt finite however long a service keeps crashing.
  const factor = 2 ** Math.min(Math.max(0, attempt), 52);
  return Math.min(options.maxMs, options.initialMs * factor);
}

/**
 * The restart delays of one service. Call {@link Backoff.next} at each unexpected exit.
 *
 * @example
 * const backoff = new Backoff({ initialMs: 500, maxMs: 30_000, resetAfterMs: 10_000 });
 * backoff.next(20); // 500
 * backoff.next(20); // 1000
 * backoff.next(60_000); // 500: it ran long enough to count as healthy
 */
export class Backoff {
  #attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Delay before the next restart, given how long the service ran before it exited. */
  next(ranMs: number): number {
    if (ranMs >= this.options.resetAfterMs) this.#attempt = 0;
    const delayMs = backoffDelayMs(this.#attempt, this.options);
    this.#attempt += 1;
    return delayMs;
  }

  /** Forgets past crashes (after a deliberate restart, e.g. a spec change). */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Throws unless the options make sense (positive delays, `initialMs <= maxMs`). */
export function validateBackoff(options: BackoffOptions): BackoffOptions {
  const { initialMs, maxMs, resetAfterMs } = options;
  const ok = [initialMs, maxMs, resetAfterMs].every((n) => Number.isFinite(n) && n >= 0) && initialMs <= maxMs;
  if (!ok) {
    throw new RangeError(
      `backoff must have 0 <= initialMs <= maxMs and resetAfterMs >= 0, got ${JSON.stringify(options)}`,
    );
  }
  return options;
}
