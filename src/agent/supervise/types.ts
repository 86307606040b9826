/** The supervisor's vocabulary, shared by its files and re-exported by `supervisor.ts`. */
import type { ServiceSpec } from '../../release-kit/types.js';
import type { PartitionIsolation } from '../isolate/partition-launch.js';

/** One service to run, as the agent resolved it for a partition. */
export interface SupervisedService {
  /** Partition the service belongs to, e.g. `p0`. */
  partitionId: string;
  spec: ServiceSpec;
  /** Absolute path of the partition directory; `spec.cwd` is relative to it. */
  partitionPath: string;
  /** Run as this user and group when the agent is root. Undefined: the agent's own. */
  uid?: number;
  gid?: number;
  /**
   * Start it in the partition's cgroups, with its private /tmp and /dev/shm, as `isolation.uid`
   * (which must be `uid`). Undefined: a plain spawn as `uid`/`gid`.
   */
  isolation?: PartitionIsolation | undefined;
  /**
   * The full environment of the process, built by the agent. `spec.env` entries
   * missing from it are added, so an agent that already merged them changes nothing.
   */
  env: Record<string, string>;
}

/**
 * Where a service is in its life.
 *
 * - `starting` → `running` once spawned, → `failed` when it cannot be spawned.
 * - `running` → `backoff` when it exits on its own, → `stopping` when asked to stop.
 * - `backoff` → `starting` when the delay is over, → `stopped` when asked to stop.
 * - `stopping` → `stopped` once the whole process group is gone.
 * - `stopped` and `failed` → `starting` at the next `ensure()` listing the service.
 *
 * An adopted service (found running by `start()`) begins in `running`; a
 * recorded one whose process died while no agent watched begins in `stopped`.
 */
export type ServiceState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export interface ServiceStatus {
  partitionId: string;
  name: string;
  state: ServiceState;
  /** Pid (and process group id) of the running process. */
  pid: number | null;
  /** Restarts after unexpected exits since this supervisor started. */
  restarts: number;
  lastExitCode: number | null;
  lastExitSignal: string | null;
  /** When the service entered `state` (clock milliseconds). */
  since: number;
  /** True while the process is one a previous agent started. */
  adopted: boolean;
}

export type SupervisorEventKind = 'started' | 'exited' | 'restarting' | 'adopted' | 'stopped' | 'gave-up';

/**
 * Something that happened to a service. `started`, `adopted` and `stopped`
 * carry the pid; `exited` the pid, code and signal; `restarting` the delay
 * before the next start; `gave-up` that it could not be spawned (it stays
 * `failed` until the next `ensure()`).
 */
export interface SupervisorEvent {
  partitionId: string;
  name: string;
  kind: SupervisorEventKind;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  delayMs?: number;
}
