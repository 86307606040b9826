/** What hyper_edge's profile hands its runner, and what the runner publishes. */

/** `runner.json`, written by the replica's profile (re-read by the runner on change). */
export interface RunnerConfig {
  app: string;
  replica: string;
  /** The partition's address: the app binds it, the local proxy listens on it. */
  host: string;
  /** The replica's local proxy (Caddy): the port the public endpoint reaches this replica on. */
  proxyPort: number;
  /** Two ports for the app's web process: a new version starts on the one the serving version does not use. */
  slotPorts: [number, number];
  /** Unix socket of the local proxy's admin API. */
  adminSocket: string;
  /** The release to serve, or null (nothing deployed yet). */
  release: { id: number; sha256: string; archive: string } | null;
  /** The app's environment: config vars, generated secrets, addon variables. */
  env: Record<string, string>;
  /**
   * The app's public URL without a trailing slash (`http://127.1.2.3:8000`): `APP_URL` in the app's
   * environment, under its manifest's [env] and config vars (so a domain in front can be set instead).
   */
  appUrl: string | null;
  /** Workers run on the first replica only. */
  runWorkers: boolean;
  /** Seconds a stopping process gets between SIGTERM and SIGKILL. */
  stopTimeoutS: number;
  /**
   * `hox app restart`: restart the serving processes (all, or one process type) once per id. An id the runner
   * has applied (its record says so) is not applied again; absent (a runner.json from before) or null: none.
   */
  restart?: RestartRequest | null;
  /** `hox app run`: one-off commands to run with the app's environment, while listed (unlisted: stopped). */
  runs?: RunRequest[];
}

export interface RestartRequest {
  id: string;
  /** A process type (`web`, a worker type), or null for every process. */
  process: string | null;
}

export interface RunRequest {
  id: string;
  /** The command as an argument vector (never a shell string): run as is, without a shell. */
  argv: string[];
  /** Stopped (SIGTERM, then SIGKILL) after this long. */
  timeout_s: number;
}

/** One process the runner runs for the serving release (`hox app ps`). */
export interface ProcessStatus {
  /** `web`, `ticker.1`. */
  name: string;
  /** The process type: `web`, `ticker`. */
  type: string;
  release: number;
  /**
   * running: started (and, for web, healthy since its last start); crashed: exited on its own and not
   * started again; restarting: exited on its own, a new one started and not healthy yet.
   */
  state: 'running' | 'crashed' | 'restarting';
  pid: number | null;
  started_at: string;
  /** Times it was started again after exiting on its own. */
  restarts: number;
}

/** A one-off command's state (`hox app run`): its exit is what the CLI exits with. */
export interface RunStatus {
  id: string;
  state: 'running' | 'exited';
  release: number | null;
  pid: number | null;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  /** Why it did not run, or was stopped (nothing serves here, its time limit). */
  error: string | null;
}

export type ReplicaState = 'idle' | 'deploying' | 'running' | 'failed';

/** The replica's runtime publication (merged into its connection parameters). */
export interface ReplicaStatus {
  upstream: string;
  state: ReplicaState;
  /** The release id this replica serves, or null. */
  serving: number | null;
  serving_since: string | null;
  /** A deploy in progress: which release and which step. */
  deploying: { release: number; step: string } | null;
  /** The last deploy that failed (and was rolled back, when something was serving). */
  failed: { release: number; reason: string; at: string } | null;
  /**
   * The serving version's `web` process exited on its own and is not healthy again yet (the runner restarts
   * it with a growing delay): why it exited, since when, how many restarts so far. Null once it answers its
   * health check again.
   */
  web_down: { reason: string; since: string; restarts: number } | null;
  /** The processes of the serving release. */
  processes: ProcessStatus[];
  /** The last restart applied (`hox app restart`): its id, when, what was restarted, or why it failed. */
  restart: { id: string; at: string; restarted: string[]; error: string | null } | null;
  /** The one-off commands runner.json lists. */
  runs: RunStatus[];
}

/** `endpoint.json`, written by the app root's profile (re-read by the endpoint program on change). */
export interface EndpointConfig {
  app: string;
  /** `host:port` the public Caddy listens on. */
  listen: string;
  adminSocket: string;
  storageDir: string;
  /** The local proxies of the replicas that serve. */
  upstreams: string[];
}

/** The app root's runtime publication: what its public endpoint routes to, once Caddy has loaded it. */
export interface EndpointStatus {
  routed: string[];
  routed_at: string;
}
