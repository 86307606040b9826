/**
 * Notices changes in a partition's `.hox` directory quickly and cheaply:
 * `fs.watch` on the directory, re-armed when the directory is replaced (or
 * appears), plus a slow poll in case an event is missed. Events are
 * debounced, and each partition has at most one reaction in flight: a burst
 * of writes while one runs makes exactly one more run afterwards.
 */
import { watch, type FSWatcher } from 'node:fs';
import { lstat } from 'node:fs/promises';

export interface PublicationWatcherOptions {
  /** Quiet time after an event before reacting. @default 100 */
  debounceMs?: number;
  /** Every watched partition reacts at least this often, events or not. @default 5000 */
  pollIntervalMs?: number;
  log?: (message: string) => void;
}

interface Watched {
  dir: string;
  onChange: () => Promise<void>;
  watcher: FSWatcher | undefined;
  /** `dev:ino` of the directory the watcher is on. */
  armedOn: string | undefined;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  again: boolean;
  closed: boolean;
}

export class PublicationWatcher {
  readonly #watched = new Map<string, Watched>();
  readonly #debounceMs: number;
  readonly #pollIntervalMs: number;
  readonly #log: (message: string) => void;
  #poll: NodeJS.Timeout | undefined;

  constructor(options: PublicationWatcherOptions = {}) {
    this.#debounceMs = options.debounceMs ?? 100;
    this.#pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.#log = options.log ?? (() => undefined);
  }

  /**
   * Calls `onChange` (debounced, never two at once) when something changes in `dir`, and at every poll.
   * Watching a key already watched only replaces its `onChange`.
   */
  watch(key: string, dir: string, onChange: () => Promise<void>): void {
    const existing = this.#watched.get(key);
    if (existing !== undefined && existing.dir === dir) {
      existing.onChange = onChange;
      return;
    }
    if (existing !== undefined) this.#close(existing);
    const entry: Watched = {
      dir,
      onChange,
      watcher: undefined,
      armedOn: undefined,
      timer: undefined,
      running: undefined,
      again: false,
      closed: false,
    };
    this.#watched.set(key, entry);
    // A change between the caller's last read and the arming would otherwise wait for the poll.
    this.#trigger(entry);
    if (this.#poll === undefined) {
      this.#poll = setInterval(() => {
        for (const e of this.#watched.values()) this.#trigger(e);
      }, this.#pollIntervalMs);
      this.#poll.unref();
    }
  }

  /** Stops watching `key`; settles once a reaction in flight has ended. */
  async unwatch(key: string): Promise<void> {
    const entry = this.#watched.get(key);
    if (entry === undefined) return;
    this.#watched.delete(key);
    this.#close(entry);
    if (this.#watched.size === 0 && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
    await entry.running;
  }

  /** Whether `key` is watched (tests, diagnostics). */
  isWatching(key: string): boolean {
    return this.#watched.has(key);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watched.keys()].map((key) => this.unwatch(key)));
  }

  #close(entry: Watched): void {
    entry.closed = true;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.watcher?.close();
    entry.watcher = undefined;
  }

  #trigger(entry: Watched): void {
    if (entry.closed || entry.timer !== undefined) return;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.running !== undefined) {
        entry.again = true;
        return;
      }
      entry.running = this.#run(entry).finally(() => (entry.running = undefined));
    }, this.#debounceMs);
    entry.timer.unref();
  }

  async #run(entry: Watched): Promise<void> {
    do {
      entry.again = false;
      await this.#arm(entry);
      if (entry.closed) return;
      await entry.onChange().catch((error: unknown) => this.#log(`reacting to ${entry.dir}: ${String(error)}`));
    } while (entry.again && !entry.closed);
  }

  /** Watches the directory now at `entry.dir`, if it is one (never through a symbolic link). */
  async #arm(entry: Watched): Promise<void> {
    let identity: string | undefined;
    try {
      const st = await lstat(entry.dir);
      identity = st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
    } catch {
      identity = undefined;
    }
    if (entry.closed || (identity === entry.armedOn && entry.watcher !== undefined)) return;
    entry.watcher?.close();
    entry.watcher = undefined;
    entry.armedOn = undefined;
    if (identity === undefined) return; // gone or not a directory: the poll looks again
    try {
      const watcher = watch(entry.dir, { persistent: false }, () => this.#trigger(entry));
      watcher.on('error', () => {
        // The directory went away under the watcher: the next event or poll arms it again.
        watcher.close();
        if (entry.watcher === watcher) {
          entry.watcher = undefined;
          entry.armedOn = undefined;
        }
      });
      entry.watcher = watcher;
      entry.armedOn = identity;
    } catch (error) {
      this.#log(`cannot watch ${entry.dir}: ${String(error)}`);
    }
  }
}
