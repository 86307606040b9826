/**
 * The master's allocator for instances that wait (src/master/placement.ts): SlapOS places a request it could not
 * place at once when room appears, without another request. Here a pass runs after every committed change that
 * may make room — a format, a supply, a registration, a request (a new host), an instance reported destroyed (a
 * partition freed), and their slap-protocol twins — and every {@link SWEEP_INTERVAL_MS} besides, so nothing
 * depends on one poke arriving.
 *
 * A pass looks at every waiting instance, oldest first, {@link PAGE_SIZE} at a time, each page in its own
 * transaction in the allocation lock that requests take (a page holds the lock briefly; another master's pass
 * or a request can come between two pages). Passes never overlap: a poke during one runs one more after it.
 */
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { HoxError } from '../shared/errors.js';
import type { InstanceRow, Store } from '../store/store.js';
import type { OpContext } from './context.js';
import { placeWaiting } from './placement.js';

export const SWEEP_INTERVAL_MS = 30_000;
/** Waiting instances looked at per transaction. */
export const PAGE_SIZE = 200;

export interface PagePlaced {
  /** How many of the page it placed. */
  placed: number;
  /** How many it looked at: fewer than the page size means the last page. */
  examined: number;
  /** Where the next page starts. */
  last: Pick<InstanceRow, 'createdAtMs' | 'id'> | undefined;
  /** Instances whose SLA is refused outright now (a pinned host gone): they keep waiting, said in the log. */
  refused: { instanceId: string; reason: string }[];
}

/** Places the waiting instances of one page that fit now, oldest first. */
export async function placeWaitingPage(
  ctx: OpContext,
  after?: Pick<InstanceRow, 'createdAtMs' | 'id'>,
  limit = PAGE_SIZE,
): Promise<PagePlaced> {
  const page = await ctx.tx.listWaitingInstances(limit, after);
  const outcome: PagePlaced = { placed: 0, examined: page.length, last: page.at(-1), refused: [] };
  for (const instance of page) {
    try {
      // No explanation: nobody reads it here, and it costs reads inside the lock.
      if ((await placeWaiting(ctx, instance, { explain: false })).waiting === null) outcome.placed += 1;
    } catch (error) {
      // Refused before any write: it must not hold up the others.
      if (!(error instanceof HoxError)) throw error;
      outcome.refused.push({ instanceId: instance.id, reason: error.message });
    }
  }
  return outcome;
}

export class PendingAllocator {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
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

  /** Resolves once no pass is running; no pass starts after it (shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.again = false;
    await this.running;
  }

  /** Something may have made room: run a pass (one more, if one is running). */
  poke(): void {
    if (this.stopped) return;
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

  private async pass(): Promise<void> {
    try {
      // Most passes find nothing waiting: they look first without taking the allocation lock.
      if ((await this.store.transaction((tx) => tx.listWaitingInstances(1))).length === 0) return;
      let after: Pick<InstanceRow, 'createdAtMs' | 'id'> | undefined;
      let placed = 0;
      for (let pages = 0; !this.stopped && pages < 10_000; pages += 1) {
        const page = await this.store.transaction(
          (tx) => placeWaitingPage({ tx, clock: this.clock, principal: { kind: 'admin' }, box: this.store.box }, after),
          { exclusive: 'allocation' },
        );
        placed += page.placed;
        for (const r of page.refused) this.logger.warn(r, 'a waiting instance cannot be placed as requested');
        if (page.examined < PAGE_SIZE || page.last === undefined) break;
        after = page.last;
      }
      if (placed > 0) this.logger.info({ placed }, 'placed waiting instances');
    } catch (err) {
      this.logger.warn({ err }, 'placing waiting instances failed');
    }
  }
}
