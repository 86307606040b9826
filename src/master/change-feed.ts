/**
 * Waiting for change: a node (or the CLI) asks for the first change after its
 * cursor that concerns it and, if there is none yet, waits — bounded — until
 * the store says something was committed. This is what lets a request reach
 * a node in milliseconds rather than on SlapOS's one-minute cron.
 */
import type { Store } from '../store/store.js';

export interface ChangeFilter {
  nodeId?: string;
  treeIds?: string[];
}

export interface WaitResult {
  cursor: number;
  changed: boolean;
}

export class ChangeFeed {
  private readonly waiters = new Set<() => void>();
  private readonly unsubscribe: () => void;
  /** Bumped on every commit notice, so a notice that lands while we query is never slept through. */
  private generation = 0;

  constructor(private readonly store: Store) {
    this.unsubscribe = store.onChange(() => {
      this.generation += 1;
      const woken = [...this.waiters];
      this.waiters.clear();
      for (const wake of woken) wake();
    });
  }

  /**
   * Without `since`, answers the current cursor at once. Otherwise answers as
   * soon as a change after `since` matches the filter, or after `timeoutMs`
   * with `changed: false`. A filter that matches nothing (`treeIds: []`) only waits.
   */
  async wait(
    filter: ChangeFilter,
    since: number | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult> {
    const latest = await this.store.latestChangeSeq();
    if (since === undefined) return { cursor: latest, changed: false };
    // A cursor from the future (store replaced): tell the caller to resync.
    if (since > latest) return { cursor: latest, changed: true };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matchesNothing = filter.nodeId === undefined && filter.treeIds !== undefined && filter.treeIds.length === 0;
      const seen = this.generation;
      if (!matchesNothing) {
        const rows = await this.store.changesAfter(since, filter);
        const last = rows.at(-1);
        if (last !== undefined) return { cursor: last.seq, changed: true };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal?.aborted === true) return { cursor: since, changed: false };
      if (this.generation !== seen) continue; // something committed while we queried: look again
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, remaining);
        signal?.addEventListener('abort', done, { once: true });
        this.waiters.add(done);
      });
    }
  }

  close(): void {
    this.unsubscribe();
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}
