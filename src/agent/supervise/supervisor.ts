/**
 * The node agent's process supervisor: runs the services of partitions, keeps
 * them running, and survives its own restarts.
 *
 * Services are session leaders detached from the agent, with their output in
 * log files, so killing the agent (even with SIGKILL) neither stops nor
 * restarts them. Each spawn leaves a pid record in `stateDir`; the next
 * supervisor adopts the processes those records name (pid and start time
 * must both match) instead of starting duplicates.
 */
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock } from '../../shared/clock.js';
import { HoxError } from '../../shared/errors.js';
import { DEFAULT_BACKOFF, validateBackoff, type BackoffOptions } from './backoff.js';
import { isProcessAlive, pidRecordPath, readPidRecords, removePidRecord, writePidRecord } from './pid-record.js';
import { signalGroup, terminateGroup } from './process-group.js';
import { SerialQueues, settleAll } from './serial-queues.js';
import { newServiceEntry, serviceStatus, updateEntry, type ServiceEntry } from './service-entry.js';
import { launchPlan, spawnService, validateServices, type LaunchPlan } from './service-launch.js';
import type { ServiceState, ServiceStatus, SupervisedService, SupervisorEvent } from './types.js';

export type { ServiceState, ServiceStatus, SupervisedService, SupervisorEvent, SupervisorEventKind } from './types.js';

export interface SupervisorOptions {
  /** Directory of the pid records, one JSON file per service, e.g. `<agent-data>/run`. Created if missing. */
  stateDir: string;
  /** Directory of a partition's `<name>.log` files (stdout and stderr appended); created and given to the service's user. */
  logDir: (partitionId: string) => string;
  /** Told of every start, exit, restart, adoption, stop and give-up. Must not throw. */
  onEvent?: (event: SupervisorEvent) => void;
  /** How often adopted processes are checked for liveness. @default 500 */
  pollIntervalMs?: number;
  /** Restart delays after unexpected exits. @default {initialMs: 500, maxMs: 30000, resetAfterMs: 10000} */
  backoff?: BackoffOptions;
  /** @default systemClock */
  clock?: Clock;
}

/** How long, after its group is gone, a child's exit event may take to arrive. */
const EXIT_EVENT_WAIT_MS = 1_000;

/**
 * @example
 * const supervisor = new Supervisor({ stateDir: '/srv/hox/run', logDir: (p) => `/srv/hox/log/${p}` });
 * await supervisor.start(); // adopts what a previous agent left running
 * await supervisor.ensure('p0', [{ partitionId: 'p0', spec, partitionPath: '/srv/slapgrid/p0', env }]);
 * await supervisor.stop(); // services keep running
 */
export class Supervisor {
  readonly #stateDir: string;
  readonly #logDir: (partitionId: string) => string;
  readonly #onEvent: ((event: SupervisorEvent) => void) | undefined;
  readonly #pollIntervalMs: number;
  readonly #backoff: BackoffOptions;
  readonly #clock: Clock;
  readonly #partitions = new Map<string, Map<string, ServiceEntry>>();
  /** Per partition: ensure, stopPartition and backoff restarts never overlap. */
  readonly #queues = new SerialQueues();
  #phase: 'new' | 'started' | 'stopped' = 'new';
  #pollTimer: NodeJS.Timeout | null = null;

  constructor(options: SupervisorOptions) {
    this.#stateDir = options.stateDir;
    this.#logDir = options.logDir;
    this.#onEvent = options.onEvent;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
    if (!(this.#pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${this.#pollIntervalMs}`);
    this.#backoff = Object.freeze({ ...validateBackoff(options.backoff ?? DEFAULT_BACKOFF) });
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Reads the pid records and adopts the processes still alive (same pid and
   * start time). Records of dead processes are kept: the service is started
   * again when an `ensure()` lists it.
   */
  async start(): Promise<void> {
    if (this.#phase !== 'new')
      throw new HoxError('HOX_INTERNAL', `supervisor of '${this.#stateDir}' can start only once`);
    await mkdir(this.#stateDir, { recursive: true, mode: 0o700 });
    for (const record of await readPidRecords(this.#stateDir)) {
      const alive = await isProcessAlive(record.pid, record.startTime);
      const current = this.#partition(record.partitionId).get(record.name);
      // Two records of one service (one written by hand): keep a live one, forget dead ones.
      if (current !== undefined && (current.pid !== null || !alive)) {
        if (!alive) await removePidRecord(record.file);
        continue;
      }
      if (current?.recordFile) await removePidRecord(current.recordFile);
      const entry = newServiceEntry(record.partitionId, record.name, this.#clock.nowMs(), this.#backoff);
      updateEntry(entry, {
        specHash: record.specHash,
        stopTimeoutMs: record.stopTimeoutMs,
        state: alive ? 'running' : 'stopped',
        pid: alive ? record.pid : null,
        startTime: alive ? record.startTime : null,
        adopted: alive,
        diedUnwatched: !alive,
        recordFile: record.file,
      });
      this.#partition(record.partitionId).set(record.name, entry);
      if (alive) this.#emit(entry, { kind: 'adopted', pid: record.pid });
    }
    this.#phase = 'started';
    this.#schedulePoll();
  }

  /**
   * Makes `services` the services of `partitionId`: starts missing, stopped
   * and failed ones, restarts those whose command, environment, cwd or user
   * changed, stops those no longer listed. Idempotent; a running (or adopted)
   * process whose spec is unchanged is left alone. Throws a `HOX_BAD_REQUEST`
   * for an invalid list (nothing is done then), and a `HOX_INTERNAL` naming
   * the services that could not be spawned after handling all the others.
   */
  async ensure(partitionId: string, services: SupervisedService[]): Promise<void> {
    this.#assertStarted('ensure');
    validateServices(partitionId, services);
    const plans = services.map(launchPlan);
    await this.#queues.run(partitionId, async () => {
      this.#assertStarted('ensure');
      const entries = this.#partition(partitionId);
      const wanted = new Set(plans.map((plan) => plan.name));
      const unwanted = [...entries.values()].filter((entry) => !wanted.has(entry.name));
      await settleAll(
        unwanted.map(async (entry) => {
          await this.#stopEntry(entry);
          entries.delete(entry.name);
        }),
      );
      const failures: HoxError[] = [];
      for (const plan of plans) {
        const failure = await this.#ensureOne(entries, partitionId, plan);
        if (failure !== null) failures.push(failure);
      }
      if (entries.size === 0) this.#partitions.delete(partitionId);
      if (failures.length > 0) {
        const cause = failures.length === 1 ? failures[0] : new AggregateError(failures);
        throw new HoxError('HOX_INTERNAL', failures.map((f) => f.message).join('; '), { cause });
      }
    });
  }

  /**
   * Stops every service of the partition: SIGTERM to each process group,
   * SIGKILL after the service's `stopTimeoutMs`, and waits until they are
   * gone. They stay listed as `stopped` until an `ensure()` starts or drops them.
   */
  async stopPartition(partitionId: string): Promise<void> {
    this.#assertStarted('stopPartition');
    await this.#queues.run(partitionId, async () => {
      const entries = this.#partitions.get(partitionId);
      if (entries !== undefined) await settleAll([...entries.values()].map((entry) => this.#stopEntry(entry)));
    });
  }

  /** The services of one partition, or of all. */
  status(partitionId?: string): ServiceStatus[] {
    const partitions =
      partitionId === undefined ? [...this.#partitions.values()] : [this.#partitions.get(partitionId) ?? new Map()];
    return partitions.flatMap((entries) => [...entries.values()].map(serviceStatus));
  }

  /**
   * Stops supervising, not the services: they keep running for the next
   * supervisor to adopt. Pending restarts are dropped; operations under way
   * are waited for.
   */
  async stop(): Promise<void> {
    this.#phase = 'stopped';
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    this.#pollTimer = null;
    for (const entries of this.#partitions.values()) for (const entry of entries.values()) this.#clearTimer(entry);
    await this.#queues.idle();
  }

  async #ensureOne(
    entries: Map<string, ServiceEntry>,
    partitionId: string,
    plan: LaunchPlan,
  ): Promise<HoxError | null> {
    let entry = entries.get(plan.name);
    if (entry === undefined) {
      entry = newServiceEntry(partitionId, plan.name, this.#clock.nowMs(), this.#backoff);
      entries.set(plan.name, entry);
    }
    entry.plan = plan;
    if (entry.specHash === plan.specHash) {
      entry.stopTimeoutMs = plan.stopTimeoutMs;
      if (entry.state === 'running' || entry.state === 'starting' || entry.state === 'backoff') return null;
    } else {
      // Stopped with the grace period of the process being replaced.
      if (entry.pid !== null || entry.state === 'backoff') await this.#stopEntry(entry);
      entry.backoff.reset();
    }
    if (entry.diedUnwatched) {
      entry.restarts += 1;
      this.#emit(entry, { kind: 'restarting', delayMs: 0 });
    }
    return this.#spawn(entry, plan);
  }

  /** Starts a process for the entry. Never throws: a failure leaves it `failed` and is returned. */
  async #spawn(entry: ServiceEntry, plan: LaunchPlan): Promise<HoxError | null> {
    entry.diedUnwatched = false;
    this.#setState(entry, 'starting');
    let spawned;
    try {
      spawned = await spawnService(plan, entry.partitionId, this.#logDir(entry.partitionId));
    } catch (error) {
      return this.#giveUp(entry, error, `cannot start service '${entry.name}' of partition '${entry.partitionId}'`);
    }
    const { pid, startTime, exited } = spawned;
    const { specHash, stopTimeoutMs } = plan;
    updateEntry(entry, {
      specHash,
      stopTimeoutMs,
      pid,
      startTime,
      exited,
      adopted: false,
      startedAtMs: this.#clock.nowMs(),
    });
    this.#setState(entry, 'running');
    void exited.then(({ code, signal }) => this.#onExit(entry, pid, code, signal));
    this.#emit(entry, { kind: 'started', pid });
    let file: string;
    try {
      const { partitionId, name, startedAtMs } = entry;
      file = await writePidRecord(this.#stateDir, {
        partitionId,
        name,
        pid,
        startTime,
        specHash,
        stopTimeoutMs,
        startedAtMs,
      });
    } catch (error) {
      // Unrecorded, the process would be started a second time by the next agent: better not run it.
      this.#clearTimer(entry);
      this.#setState(entry, 'stopping');
      await terminateGroup(pid, startTime, 0).catch(() => undefined);
      if (entry.pid === pid) updateEntry(entry, { pid: null, startTime: null, exited: null });
      return this.#giveUp(entry, error, `cannot write the pid record of service '${entry.name}' (pid ${pid})`);
    }
    // A record under another name (written by hand) would name this service twice; if it cannot be
    // removed, the next start() still prefers the live record and drops the dead one.
    if (entry.recordFile !== null && entry.recordFile !== file) await removePidRecord(entry.recordFile).catch(() => {});
    entry.recordFile = file;
    return null;
  }

  #giveUp(entry: ServiceEntry, error: unknown, message: string): HoxError {
    this.#setState(entry, 'failed');
    this.#emit(entry, { kind: 'gave-up' });
    return error instanceof HoxError ? error : new HoxError('HOX_INTERNAL', message, { cause: error });
  }

  /** A process of ours ended (exit event) or an adopted one vanished (poll). */
  #onExit(entry: ServiceEntry, pid: number, code: number | null, signal: string | null): void {
    if (this.#phase === 'stopped' || entry.pid !== pid) return;
    const ownChild = entry.exited !== null;
    updateEntry(entry, {
      pid: null,
      startTime: null,
      exited: null,
      adopted: false,
      lastExitCode: code,
      lastExitSignal: signal,
    });
    if (entry.state === 'stopping') return; // #stopEntry finishes the job
    this.#emit(entry, { kind: 'exited', pid, code, signal });
    if (ownChild) {
      // Whatever the leader left in its group would hold ports and files its successor needs. The
      // group id was freed moments ago at most, and Linux hands out pids in turn, not again at once.
      try {
        signalGroup(pid, 'SIGKILL');
      } catch {
        // Not ours to kill (EPERM): the restart goes ahead regardless.
      }
    }
    if (entry.plan === null) {
      // Adopted and not yet ensured: how to start it again is known only once ensure() lists it.
      entry.diedUnwatched = true;
      this.#setState(entry, 'stopped');
      return;
    }
    const delayMs = entry.backoff.next(this.#clock.nowMs() - entry.startedAtMs);
    entry.restarts += 1;
    this.#setState(entry, 'backoff');
    this.#emit(entry, { kind: 'restarting', delayMs });
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = null;
      void this.#queues.run(entry.partitionId, () => this.#restartAfterBackoff(entry));
    }, delayMs);
  }

  async #restartAfterBackoff(entry: ServiceEntry): Promise<void> {
    const current = this.#partitions.get(entry.partitionId)?.get(entry.name);
    if (this.#phase !== 'started' || current !== entry || entry.state !== 'backoff' || entry.plan === null) return;
    await this.#spawn(entry, entry.plan);
  }

  /** Stops the entry's process group if any, drops its pid record, leaves it `stopped`. */
  async #stopEntry(entry: ServiceEntry): Promise<void> {
    this.#clearTimer(entry);
    const { pid, startTime, exited } = entry;
    if (pid !== null && startTime !== null) {
      this.#setState(entry, 'stopping');
      try {
        await terminateGroup(pid, startTime, entry.stopTimeoutMs);
      } catch (error) {
        this.#setState(entry, 'running');
        throw error;
      }
      // Our child's exit event records its code and signal; it follows the group's death closely.
      if (exited !== null) await Promise.race([exited, sleep(EXIT_EVENT_WAIT_MS, undefined, { ref: false })]);
      if (entry.pid === pid) updateEntry(entry, { pid: null, startTime: null, exited: null });
    }
    updateEntry(entry, { adopted: false, diedUnwatched: false });
    this.#setState(entry, 'stopped');
    if (entry.recordFile !== null) await removePidRecord(entry.recordFile);
    await removePidRecord(pidRecordPath(this.#stateDir, entry.partitionId, entry.name));
    entry.recordFile = null;
    if (pid !== null) this.#emit(entry, { kind: 'stopped', pid });
  }

  #schedulePoll(): void {
    this.#pollTimer = setTimeout(() => void this.#poll(), this.#pollIntervalMs);
  }

  /** Adopted processes are not our children: no exit event, so their liveness is checked here. */
  async #poll(): Promise<void> {
    for (const entries of [...this.#partitions.values()]) {
      for (const entry of [...entries.values()]) {
        const { pid, startTime } = entry;
        if (pid === null || startTime === null || entry.exited !== null) continue;
        let alive = true;
        try {
          alive = await isProcessAlive(pid, startTime);
        } catch {
          // An unreadable /proc entry proves nothing; the next poll looks again.
        }
        if (!alive) this.#onExit(entry, pid, null, null);
      }
    }
    if (this.#phase === 'started') this.#schedulePoll();
  }

  #partition(partitionId: string): Map<string, ServiceEntry> {
    let entries = this.#partitions.get(partitionId);
    if (entries === undefined) {
      entries = new Map();
      this.#partitions.set(partitionId, entries);
    }
    return entries;
  }

  #setState(entry: ServiceEntry, state: ServiceState): void {
    entry.state = state;
    entry.since = this.#clock.nowMs();
  }

  #clearTimer(entry: ServiceEntry): void {
    if (entry.restartTimer !== null) clearTimeout(entry.restartTimer);
    entry.restartTimer = null;
  }

  #emit(entry: ServiceEntry, event: Omit<SupervisorEvent, 'partitionId' | 'name'>): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent({ partitionId: entry.partitionId, name: entry.name, ...event });
    } catch (error) {
      // A listener's bug must not leave a service half-handled: report it outside this call instead.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #assertStarted(operation: string): void {
    if (this.#phase !== 'started') {
      const why = this.#phase === 'new' ? 'call start() first, to adopt running services' : 'it was stopped';
      throw new HoxError('HOX_INTERNAL', `supervisor of '${this.#stateDir}' cannot ${operation}: ${why}`);
    }
  }
}
