/**
 * Keeps the promises of every partition running on their period, remembers
 * the latest result of each (in memory and in a results file per partition)
 * and reports when a partition's set of passing/failing promises changes.
 */
import { rmSync } from 'node:fs';
import type { PromiseSpec } from '../../release-kit/types.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { checkPromise, clampDurationMs, type PromiseCheckContext, type PromiseResult } from './check-promise.js';
import { deleteResultsFile, readResultsFile, writeResultsFile } from './results-file.js';

/** @default for {@link PromiseSpec} `periodMs`. */
export const DEFAULT_PROMISE_PERIOD_MS = 10_000;
/** Bounds applied to `periodMs`: no busy loop, no timer overflow. */
export const MIN_PROMISE_PERIOD_MS = 50;
export const MAX_PROMISE_PERIOD_MS = 24 * 60 * 60 * 1000;

export interface PromiseRunnerOptions {
  /** JSON file where the latest results of a partition are kept (written atomically: tmp + rename). */
  resultsFile: (partitionId: string) => string;
  /**
   * Called when the ok/failing set of a partition changes (not on every run),
   * with the latest result of each of its promises and the failing ones.
   */
  onChange?: (partitionId: string, results: PromiseResult[], failing: PromiseResult[]) => void;
  /**
   * Called after every result recorded and whenever the set of promises changes (not only when ok/failing
   * does): what a reporter of each promise's own result listens to. It decides what is news.
   */
  onUpdate?: (partitionId: string) => void;
  /** Results files that cannot be read, written or deleted, and exceptions thrown by `onChange` or `onUpdate`. */
  onError?: (partitionId: string, error: unknown) => void;
  /** Stamps `checkedAtMs`. @default systemClock */
  clock?: Clock;
}

/** One promise of a partition, as scheduled. Replaced (never mutated) when its spec changes. */
interface ScheduledPromise {
  readonly spec: PromiseSpec;
  /** The spec as canonical JSON: what `set()` compares to stay idempotent. */
  readonly key: string;
  readonly periodMs: number;
  /** False once removed, replaced or stopped: a run still in flight is then not recorded. */
  active: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The run in flight, shared by whoever asks for one meanwhile: runs never overlap. */
  running: Promise<PromiseResult> | undefined;
}

interface PartitionState {
  readonly id: string;
  readonly file: string;
  /** In the order `set()` gave them. */
  promises: Map<string, ScheduledPromise>;
  context: PromiseCheckContext;
  /** Latest result per promise name (loaded from the results file at first). */
  results: Map<string, PromiseResult>;
  /** The ok/failing set last reported (or loaded): `onChange` fires when it differs. */
  reportedSignature: string;
  /** A write is queued and has not started: it will write the latest results, so no other is needed. */
  queuedWrite: Promise<void> | undefined;
  cleared: boolean;
  /** `set()` was called: `promises` is what the partition must run, not merely empty. */
  configured: boolean;
}

/**
 * Runs the promises of each partition every `periodMs`.
 *
 * @example
 * const runner = new PromiseRunner({
 *   resultsFile: (partitionId) => join(stateDir, `promises-${partitionId}.json`),
 *   onChange: (partitionId, _results, failing) => report(partitionId, failing),
 * });
 * runner.set('slappart0', plan.promises ?? [], { cwd: partitionPath, uid, gid, env });
 */
export class PromiseRunner {
  readonly #options: PromiseRunnerOptions;
  readonly #clock: Clock;
  readonly #partitions = new Map<string, PartitionState>();
  /** Per results file, the tail of its write/delete chain: operations on one file never interleave. */
  readonly #fileQueues = new Map<string, Promise<void>>();

  constructor(options: PromiseRunnerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Sets the desired promises of a partition. New or changed promises run at
   * once, then every `periodMs` (default 10000); removed ones are cancelled and
   * forgotten. Unchanged promises keep their schedule, so calling this again
   * with the same set is harmless. The context applies from each promise's
   * next run. Timers are unref'd: they do not keep the process alive.
   *
   * Throws when two promises share a name (the plan is invalid; nothing changes).
   */
  set(partitionId: string, promises: PromiseSpec[], context: PromiseCheckContext = {}): void {
    const names = new Set<string>();
    for (const spec of promises) {
      if (names.has(spec.name)) throw new Error(`partition '${partitionId}': duplicate promise name '${spec.name}'`);
      names.add(spec.name);
    }
    const state = this.#partitions.get(partitionId) ?? this.#loadPartition(partitionId);
    state.context = { ...context };
    const next = new Map<string, ScheduledPromise>();
    for (const spec of promises) {
      const key = canonicalJson(spec);
      const existing = state.promises.get(spec.name);
      if (existing?.key === key) {
        next.set(spec.name, existing);
        continue;
      }
      if (existing !== undefined) cancel(existing);
      const scheduled: ScheduledPromise = {
        spec,
        key,
        periodMs: clampDurationMs(
          spec.periodMs,
          DEFAULT_PROMISE_PERIOD_MS,
          MIN_PROMISE_PERIOD_MS,
          MAX_PROMISE_PERIOD_MS,
        ),
        active: true,
        timer: undefined,
        running: undefined,
      };
      next.set(spec.name, scheduled);
      this.#schedule(state, scheduled, 0);
    }
    for (const [name, scheduled] of state.promises) {
      if (!next.has(name)) cancel(scheduled);
    }
    const before = state.configured ? [...state.promises.keys()].join('\n') : undefined;
    state.promises = next;
    state.configured = true;
    if ([...next.keys()].join('\n') !== before) this.#notifyUpdate(state.id);
    let forgotten = false;
    for (const name of state.results.keys()) {
      if (next.has(name)) continue;
      state.results.delete(name);
      forgotten = true;
    }
    if (forgotten) {
      void this.#persist(state);
      this.#reportIfChanged(state);
    }
  }

  /**
   * Runs every promise of the partition now (joining a run already in flight)
   * and returns their results in `set()` order, once they are written to the
   * results file. An unknown partition has no promises: `[]`.
   */
  async checkNow(partitionId: string): Promise<PromiseResult[]> {
    const state = this.#partitions.get(partitionId);
    if (state === undefined) return [];
    const results = await Promise.all([...state.promises.values()].map((scheduled) => this.#run(state, scheduled)));
    await this.#persist(state);
    return results;
  }

  /** The latest known result of each promise of the partition; from its results file if not in memory. */
  results(partitionId: string): PromiseResult[] {
    const state = this.#partitions.get(partitionId);
    if (state !== undefined) return currentResults(state);
    try {
      return readResultsFile(this.#options.resultsFile(partitionId)) ?? [];
    } catch (error) {
      this.#reportError(partitionId, error);
      return [];
    }
  }

  /**
   * Each promise the partition must keep, in `set()` order, with its latest result (undefined: it has not run
   * yet). Undefined for a partition nothing was `set()` for since the runner started: what it should run is
   * not known yet (a restarted agent, before its first convergence).
   */
  planned(partitionId: string): { name: string; result: PromiseResult | undefined }[] | undefined {
    const state = this.#partitions.get(partitionId);
    if (state === undefined || !state.configured) return undefined;
    return [...state.promises.keys()].map((name) => ({ name, result: state.results.get(name) }));
  }

  /** Stops the partition's promises and forgets them, deleting its results file. */
  clear(partitionId: string): void {
    const state = this.#partitions.get(partitionId);
    if (state !== undefined) {
      state.cleared = true;
      for (const scheduled of state.promises.values()) cancel(scheduled);
      this.#partitions.delete(partitionId);
    }
    const file = state?.file ?? this.#options.resultsFile(partitionId);
    try {
      rmSync(file, { force: true });
    } catch (error) {
      this.#reportError(partitionId, error);
    }
    // Again after any write already in flight, which would otherwise bring the file back.
    void this.#enqueueFileOperation(partitionId, file, () => deleteResultsFile(file));
  }

  /**
   * Clears every timer and forgets every partition, as if the agent stopped;
   * runs in flight are not recorded. Results files stay; a later `set()` starts afresh from them.
   */
  stop(): void {
    for (const state of this.#partitions.values()) {
      for (const scheduled of state.promises.values()) cancel(scheduled);
    }
    this.#partitions.clear();
  }

  #loadPartition(partitionId: string): PartitionState {
    const file = this.#options.resultsFile(partitionId);
    let loaded: PromiseResult[] = [];
    try {
      loaded = readResultsFile(file) ?? [];
    } catch (error) {
      this.#reportError(partitionId, error);
    }
    const state: PartitionState = {
      id: partitionId,
      file,
      promises: new Map(),
      context: {},
      results: new Map(loaded.map((result) => [result.name, Object.freeze(result)])),
      reportedSignature: signature(loaded),
      queuedWrite: undefined,
      cleared: false,
      configured: false,
    };
    this.#partitions.set(partitionId, state);
    return state;
  }

  #schedule(state: PartitionState, scheduled: ScheduledPromise, delayMs: number): void {
    scheduled.timer = setTimeout(
      () => {
        scheduled.timer = undefined;
        const startedAt = performance.now();
        void this.#run(state, scheduled)
          .catch((error: unknown) => this.#reportError(state.id, error))
          .then(() => {
            // Period from start to start; a run longer than the period is followed at once by the next.
            if (scheduled.active)
              this.#schedule(state, scheduled, scheduled.periodMs - (performance.now() - startedAt));
          });
      },
      Math.max(0, delayMs),
    );
    scheduled.timer.unref();
  }

  #run(state: PartitionState, scheduled: ScheduledPromise): Promise<PromiseResult> {
    if (scheduled.running !== undefined) return scheduled.running;
    const run = async (): Promise<PromiseResult> => {
      try {
        const checkedAtMs = this.#clock.nowMs();
        const result = Object.freeze({ ...(await checkPromise(scheduled.spec, state.context)), checkedAtMs });
        if (scheduled.active) this.#record(state, result);
        return result;
      } finally {
        scheduled.running = undefined;
      }
    };
    scheduled.running = run();
    return scheduled.running;
  }

  #record(state: PartitionState, result: PromiseResult): void {
    state.results.set(result.name, result);
    void this.#persist(state);
    this.#reportIfChanged(state);
    this.#notifyUpdate(state.id);
  }

  #notifyUpdate(partitionId: string): void {
    try {
      this.#options.onUpdate?.(partitionId);
    } catch (error) {
      this.#reportError(partitionId, error);
    }
  }

  #reportIfChanged(state: PartitionState): void {
    const results = currentResults(state);
    const current = signature(results);
    if (current === state.reportedSignature) return;
    state.reportedSignature = current;
    try {
      this.#options.onChange?.(
        state.id,
        results,
        results.filter((result) => !result.ok),
      );
    } catch (error) {
      this.#reportError(state.id, error);
    }
  }

  /** Queues a write of the partition's latest results; a write already queued (not started) serves. */
  #persist(state: PartitionState): Promise<void> {
    if (state.queuedWrite !== undefined) return state.queuedWrite;
    state.queuedWrite = this.#enqueueFileOperation(state.id, state.file, async () => {
      state.queuedWrite = undefined;
      if (!state.cleared) await writeResultsFile(state.file, state.id, currentResults(state));
    });
    return state.queuedWrite;
  }

  /** Chains the operation after the file's previous one; the returned promise never rejects. */
  #enqueueFileOperation(partitionId: string, file: string, operation: () => Promise<void>): Promise<void> {
    const previous = this.#fileQueues.get(file) ?? Promise.resolve();
    const next = previous.then(operation).catch((error: unknown) => this.#reportError(partitionId, error));
    this.#fileQueues.set(file, next);
    void next.then(() => {
      if (this.#fileQueues.get(file) === next) this.#fileQueues.delete(file);
    });
    return next;
  }

  #reportError(partitionId: string, error: unknown): void {
    try {
      this.#options.onError?.(partitionId, error);
    } catch {
      // An error handler that throws has nowhere left to report to.
    }
  }
}

function cancel(scheduled: ScheduledPromise): void {
  scheduled.active = false;
  clearTimeout(scheduled.timer);
  scheduled.timer = undefined;
}

/** Latest results of the desired promises, in `set()` order; before any `set()`, those loaded from disk. */
function currentResults(state: PartitionState): PromiseResult[] {
  if (state.promises.size === 0) return [...state.results.values()];
  const results: PromiseResult[] = [];
  for (const name of state.promises.keys()) {
    const result = state.results.get(name);
    if (result !== undefined) results.push(result);
  }
  return results;
}

/** What `onChange` watches: which promises have a result, and whether each passes. */
function signature(results: readonly PromiseResult[]): string {
  const entries = results.map((result): [string, boolean] => [result.name, result.ok]);
  return JSON.stringify(entries.sort(([a], [b]) => compareStrings(a, b)));
}

/** JSON with object keys sorted, so that equal specs compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, nested: unknown) =>
    nested !== null && typeof nested === 'object' && !Array.isArray(nested)
      ? Object.fromEntries(Object.entries(nested).sort(([a], [b]) => compareStrings(a, b)))
      : nested,
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
