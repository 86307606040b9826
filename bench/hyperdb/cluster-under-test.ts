/**
 * What bench/hyperdb needs from a clustered PostgreSQL to run the fault
 * scenarios on it: Patroni (patroni-cluster.ts), hyper_db, or any other peer.
 * The same scenarios and the same write client run against every
 * implementation, so the figures compare.
 */

/** A database member: its name in the cluster and where its PostgreSQL listens. */
export interface ClusterMember {
  name: string;
  host: string;
  port: number;
}

/** How the write client logs in (a role that may create a table and insert). */
export interface ClusterCredentials {
  user: string;
  password?: string;
  database: string;
  /** TLS options of the write client's connections (node-postgres `ssl`), when the peer requires TLS. */
  ssl?: { ca: string };
}

/** A clustered PostgreSQL with automatic failover, driven by the benchmark. */
export interface ClusterUnderTest {
  /** The peer's name in reports, e.g. `patroni`. */
  readonly name: string;
  /** Creates and starts every member, returns once bootstrapped (one primary, standbys streaming). */
  start(): Promise<void>;
  /** Every configured member, running or not, in a fixed order. */
  members(): ClusterMember[];
  /** Login for the write client. */
  credentials(): ClusterCredentials;
  /** The name of the member the cluster currently holds as primary; throws when there is none. */
  primary(): Promise<string>;
  /**
   * Member death: SIGKILL of the member's agent and of its postmaster (and
   * their children) at once, as a dying machine; nothing restarts them until
   * {@link restartMember}.
   */
  killMember(name: string): Promise<void>;
  /** Starts a killed member again (agent first; it brings PostgreSQL back as it decides). */
  restartMember(name: string): Promise<void>;
  /** Planned switchover to `to`, or to a member the cluster picks; resolves when a new primary holds the role. */
  switchover(to?: string): Promise<void>;
  /**
   * The address a client that never retries connects to, which follows the primary by itself (hyper_db's
   * read-write endpoint), or undefined when the peer has none of its own (Patroni: HAProxy in front).
   */
  readWriteEndpoint?(): { host: string; port: number };
  /**
   * The member's PostgreSQL processes running now: its postmaster and every child of it, not its agent.
   * The hung-primary scenario freezes them (SIGSTOP) while the agent runs on.
   */
  postgresPids(name: string): Promise<number[]>;
  /**
   * The member's PostgreSQL data directory, whatever runs or not. The disk-full scenario moves its `pg_wal`
   * onto a small filesystem while the member is killed.
   */
  dataDir(name: string): Promise<string>;
  /** The tail of the member's agent and PostgreSQL logs, for the progress log of a failed run. */
  logTail?(name: string): Promise<string>;
  /** Resolves when there is exactly one primary and every other member is a streaming standby; throws after `timeoutMs`. */
  waitHealthy(timeoutMs: number): Promise<void>;
  /** Kills every process and removes every file it made. Idempotent. */
  stop(): Promise<void>;
}
