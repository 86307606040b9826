/**
 * Publishes a partition's connection parameters: the plan's `publish` with
 * the runtime publication (`.hox/publish.json`) merged over it, runtime keys
 * winning. A convergence publishes through {@link RuntimePublisher.publish};
 * between convergences, a change of the file is published within a fraction
 * of a second without running the profile again: the merge is redone with
 * the last plan's `publish`, and sent only if its value changed.
 *
 * A file that is refused (link, not a regular file, too large, not a JSON
 * object, or making the parameters fail the connection schema) is ignored —
 * the last accepted runtime values stay — and reported as the instance's
 * error until it is fixed.
 */
import { join } from 'node:path';
import type { MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
import { SerialQueues } from '../supervise/serial-queues.js';
import type { PublicationWatcher } from './publication-watcher.js';
import { RUNTIME_DIR, readRuntimePublication, type RuntimePartition } from './runtime-file.js';

/** What the last convergence of a partition knew, enough to publish again without the profile. */
export interface PublicationTarget {
  partition: RuntimePartition;
  instanceGuid: string;
  /** Acting as the instance. */
  client: MasterClient;
  /** The plan's `publish`. */
  base: Record<string, unknown>;
  /** Throws (naming the field) when the value fails the software type's connection schema. */
  validate: (value: Record<string, unknown>) => void;
  /** The instance's requested state, reported when a problem clears and nothing else fails. */
  state: 'started' | 'stopped';
}

export interface RuntimePublisherDeps {
  watcher: PublicationWatcher;
  /** The partition's other reasons to be in error (failing promises), as report messages. */
  otherFailures: (partitionId: string) => string[];
  log: (message: string, fields?: Record<string, unknown>) => void;
}

interface Entry {
  target: PublicationTarget;
  /** The runtime object last accepted in this tenancy. */
  lastAccepted: Record<string, unknown> | undefined;
  /** Canonical JSON of what the master was last sent successfully. */
  published: string | undefined;
  problem: string | null;
}

export class RuntimePublisher {
  readonly #entries = new Map<string, Entry>();
  // A convergence's publication and a change's never interleave.
  readonly #queues = new SerialQueues();

  constructor(private readonly deps: RuntimePublisherDeps) {}

  /**
   * A convergence's publication: merges, validates, publishes (always: it also heals a master that lost
   * it) and keeps watching the file; {@link problem} then says what to report about the file. Throws
   * when no value passes the connection schema.
   */
  publish(partitionId: string, target: PublicationTarget): Promise<void> {
    return this.#queues.run(partitionId, async () => {
      let entry = this.#entries.get(partitionId);
      if (entry?.target.instanceGuid === target.instanceGuid) entry.target = target;
      else {
        entry = { target, lastAccepted: undefined, published: undefined, problem: null };
        this.#entries.set(partitionId, entry);
      }
      this.deps.watcher.watch(partitionId, join(target.partition.path, RUNTIME_DIR), () =>
        this.#republish(partitionId),
      );
      const { value, problem } = await this.#resolve(entry);
      entry.problem = problem;
      if (value === undefined) throw new HoxError('HOX_BAD_REQUEST', problem ?? 'connection parameters: invalid');
      await target.client.call('publishConnectionParameters', {
        instance_guid: target.instanceGuid,
        connection_parameter_dict: value,
      });
      entry.published = canonicalJson(value);
    });
  }

  /** The problem of the partition's runtime publication, if any. */
  problem(partitionId: string): string | null {
    return this.#entries.get(partitionId)?.problem ?? null;
  }

  /** The partition was wiped: stop watching and forget it (waits for a publication in flight). */
  async forget(partitionId: string): Promise<void> {
    this.#entries.delete(partitionId);
    await this.deps.watcher.unwatch(partitionId);
    await this.#queues.run(partitionId, () => Promise.resolve());
  }

  async stop(): Promise<void> {
    await this.deps.watcher.stop();
    await this.#queues.idle();
  }

  #republish(partitionId: string): Promise<void> {
    return this.#queues.run(partitionId, async () => {
      const entry = this.#entries.get(partitionId);
      if (entry === undefined) return;
      const { value, problem } = await this.#resolve(entry);
      const { target } = entry;
      if (value !== undefined && canonicalJson(value) !== entry.published) {
        await target.client.call('publishConnectionParameters', {
          instance_guid: target.instanceGuid,
          connection_parameter_dict: value,
        });
        // Forgotten meanwhile (wiped): nothing more to say about it.
        if (this.#entries.get(partitionId) !== entry) return;
        entry.published = canonicalJson(value);
        this.deps.log(`partition ${partitionId}: published runtime connection parameters`, {
          instance: target.instanceGuid,
        });
      }
      if (problem === entry.problem) return;
      this.deps.log(`partition ${partitionId}: ${problem ?? 'runtime publication accepted'}`, {
        instance: target.instanceGuid,
      });
      const message = [...this.deps.otherFailures(partitionId), ...(problem === null ? [] : [problem])].join('; ');
      if (message !== '')
        await target.client.call('reportInstanceError', { instance_guid: target.instanceGuid, message });
      else
        await target.client.call('reportInstanceState', {
          instance_guid: target.instanceGuid,
          reported_state: target.state,
        });
      // Only once told: a report that failed is made again at the next change or poll.
      entry.problem = problem;
    });
  }

  /**
   * The value to publish and the problem to report. Tried in order: the file's object over the base,
   * the last accepted object over the base, the base alone; the first that passes the schema wins.
   */
  async #resolve(entry: Entry): Promise<{ value: Record<string, unknown> | undefined; problem: string | null }> {
    const { base, validate } = entry.target;
    const read = await readRuntimePublication(entry.target.partition);
    let problem: string | null = null;
    const failures = new Set<string>();
    const candidates: Record<string, unknown>[] = [];
    switch (read.kind) {
      case 'none':
        // The service removed it: its runtime values are withdrawn.
        entry.lastAccepted = undefined;
        break;
      case 'object':
        candidates.push({ ...base, ...read.value });
        break;
      case 'invalid':
        problem = read.message;
        break;
    }
    if (entry.lastAccepted !== undefined) candidates.push({ ...base, ...entry.lastAccepted });
    candidates.push(base);
    for (const [index, candidate] of candidates.entries()) {
      try {
        validate(candidate);
      } catch (error) {
        const raw = error instanceof Error ? error.message : String(error);
        const message = read.kind === 'object' && index === 0 ? `runtime publication: ${raw}` : raw;
        failures.add(message);
        problem ??= message;
        continue;
      }
      if (read.kind === 'object' && index === 0) entry.lastAccepted = read.value;
      return { value: candidate, problem };
    }
    // Nothing passes: every reason, the file's first and then the profile's own.
    const reasons = new Set([...(problem === null ? [] : [problem]), ...failures]);
    return { value: undefined, problem: [...reasons].join('; ') };
  }
}

/** JSON with object keys sorted, to compare values whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
