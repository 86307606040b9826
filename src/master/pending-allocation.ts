/**
 * The master's allocator for instances that wait (src/master/placement.ts): SlapOS places a request it could not
 * place at once when room appears, without another request. Here a pass runs after every committed change that
 * may make room — a format, a supply, a software or instance report (a partition freed), a registration, a
 * request (a new host) — and every {@link SWEEP_INTERVAL_MS} besides, so nothing depends on one poke arriving.
 *
 * Passes never overlap (a poke during one runs one more after it), run in the allocation lock like requests, and
 * place the oldest waiting instances first, at most {@link MAX_PLACED_PER_PASS} a pass.
 */
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/store.js';
import type { OpContext } from './context.js';
import { placeWaiting } from './placement.js';

export const SWEEP_INTERVAL_MS = 30_000;
/** Waiting instances looked at per pass: the rest wait for the next one (a poke after this pass, or the sweep). */
export const MAX_PLACED_PER_PASS = 200;

/** Places the waiting instances that fit now, oldest first; returns how many it placed. */
export async function placeWaitingInstances(ctx: OpContext, limit = MAX_PLACED_PER_PASS): Promise<number> {
  let placed = 0;
  for (const instance of await ctx.tx.listWaitingInstances(limit)) {
    const outcome = await placeWaiting(ctx, instance);
    if (outcome.waiting === null) placed += 1;
  }
  return placed;
}

export class PendingAllocator {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  start(intervalMs = SWEEP_INTERVAL_MS): void {
    this.timer = setInterval(() => this.poke(), intervalMs);
    this.timer.unref();
    this.poke();
  }

  /** Resolves once no pass is running (for shutdown). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.again = false;
    await this.running;
  }

  /** Something may have made room: run a pass (one more, if one is running). */
  poke(): void {
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  /** Resolves when the passes asked for so far are done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async pass(): Promise<void> {
    try {
      // Most passes find nothing waiting: they look first without taking the allocation lock.
      if ((await this.store.transaction((tx) => tx.listWaitingInstances(1))).length === 0) return;
      const placed = await this.store.transaction(
        (tx) => placeWaitingInstances({ tx, clock: this.clock, principal: { kind: 'admin' }, box: this.store.box }),
        { exclusive: 'allocation' },
      );
      if (placed > 0) this.logger.info({ placed }, 'placed waiting instances');
    } catch (err) {
      this.logger.warn({ err }, 'placing waiting instances failed');
    }
  }
}
