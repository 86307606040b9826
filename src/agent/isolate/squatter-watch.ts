/**
 * Looks for squatters (`squatter-scan.ts`) every `periodMs` and whenever
 * asked, keeps the latest problems of each partition, and says when a
 * partition's problems change — the agent reports them with the partition's
 * promises.
 */
import { findSquatters, socketsToExamine, squatterProblems, type GuardedPartition } from './squatter-scan.js';
import { findSocketHolders, listBoundSockets, userNames } from './squatter-sockets.js';

/** @default for {@link SquatterWatchOptions} `periodMs`: as often as promises run by default. */
export const DEFAULT_SQUATTER_PERIOD_MS = 10_000;

export interface SquatterWatchOptions {
  /** The partitions to guard, read at every scan. */
  partitions: () => readonly GuardedPartition[];
  /** Called with a partition's problems when they differ from the last scan's (`[]`: none left). */
  onChange: (partitionId: string, problems: readonly string[]) => void;
  /** A scan that failed (unreadable /proc, say): the previous problems stay. */
  onError?: (error: unknown) => void;
  /** @default DEFAULT_SQUATTER_PERIOD_MS */
  periodMs?: number;
  /** @default '/proc' */
  procDir?: string;
}

export class SquatterWatch {
  readonly #options: SquatterWatchOptions;
  readonly #problems = new Map<string, readonly string[]>();
  #timer: NodeJS.Timeout | undefined;
  /** The scan in flight, shared by whoever asks meanwhile: scans never overlap. */
  #scanning: Promise<void> | undefined;
  #stopped = false;

  constructor(options: SquatterWatchOptions) {
    this.#options = options;
  }

  /** Scans now, then every `periodMs` (the timer is unref'd). */
  start(): void {
    this.#stopped = false;
    const tick = (): void => {
      void this.scanNow().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.periodMs ?? DEFAULT_SQUATTER_PERIOD_MS);
        this.#timer?.unref();
      });
    };
    tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The latest problems of a partition (`[]` when none). */
  problems(partitionId: string): readonly string[] {
    return this.#problems.get(partitionId) ?? [];
  }

  /** One scan now (joining one in flight); resolves once `onChange` was called for what changed. */
  scanNow(): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    let next: Map<string, string[]>;
    try {
      const partitions = this.#options.partitions();
      const procDir = this.#options.procDir ?? '/proc';
      const examined = socketsToExamine(partitions, await listBoundSockets(procDir));
      const holders = findSocketHolders(new Set(examined.map((s) => s.inode)), procDir);
      next = squatterProblems(findSquatters(partitions, examined, holders), userNames());
    } catch (error) {
      this.#options.onError?.(error);
      return;
    }
    if (this.#stopped) return;
    for (const partitionId of new Set([...this.#problems.keys(), ...next.keys()])) {
      const before = this.#problems.get(partitionId) ?? [];
      const after = next.get(partitionId) ?? [];
      if (before.join('\n') === after.join('\n')) continue;
      if (after.length === 0) this.#problems.delete(partitionId);
      else this.#problems.set(partitionId, after);
      this.#options.onChange(partitionId, after);
    }
  }
}
