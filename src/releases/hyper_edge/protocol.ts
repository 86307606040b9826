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
