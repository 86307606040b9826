/**
 * What a software release's instance profile receives and returns. A profile
 * is a pure function: parameters in, desired partition content out. The node
 * agent does all the I/O (files, processes, promises, requests, publication).
 */

/** A service the agent supervises in the partition. */
export interface ServiceSpec {
  /** Unique within the partition: [a-z0-9][a-z0-9_-]*. Also the log file name. */
  name: string;
  /** argv; the first element is resolved on PATH. */
  command: string[];
  /** Extra environment (the agent adds HOME, PATH, and HOX_* variables). */
  env?: Record<string, string>;
  /** Working directory, relative to the partition directory. @default '.' */
  cwd?: string;
  /** Grace period between SIGTERM and SIGKILL when stopping. @default 10000 */
  stopTimeoutMs?: number;
}

/** A health check. A failing promise sets the instance's error status and makes the agent reprocess. */
export type PromiseSpec =
  | (PromiseCommon & { kind: 'tcp'; host: string; port: number })
  | (PromiseCommon & { kind: 'http'; url: string; status?: number; bodyContains?: string })
  | (PromiseCommon & { kind: 'command'; command: string[] });

export interface PromiseCommon {
  /** Unique within the partition. */
  name: string;
  /** How often it runs. @default 10000 */
  periodMs?: number;
  /** How long one check may take. @default 5000 */
  timeoutMs?: number;
}

/** A file the agent renders into the partition (written atomically, owned by the partition user). */
export interface FileSpec {
  /** Relative to the partition directory; no `..`. */
  path: string;
  content: string;
  /** @default 0o640 */
  mode?: number;
  /**
   * The services read this file again by themselves when it changes (they watch it), so a change
   * does NOT restart them. By default a change of any rendered file restarts the partition's services.
   * @default false
   */
  reload?: boolean;
}

/**
 * An artifact uploaded to the master (`PUT /hox/v1/artifacts/<sha256>`) that the agent copies into
 * the partition, read-only, before the services start. The agent fetches it as the instance: only
 * artifacts uploaded by the instance tree's owner (or the admin) are delivered; any other is the
 * instance's error. A file already at `path` is left alone, so give each content its own path, but
 * not the hash itself (a path can end up on a command line, which every user can read): e.g.
 * `sources/release-<number>.tar.gz`.
 */
export interface ArtifactSpec {
  sha256: string;
  /** Relative to the partition directory; no `..`. */
  path: string;
}

/** An instance (child or shared) the partition requests as itself. */
export interface InstanceRequestSpec {
  title: string;
  softwareReleaseUrl: string;
  softwareType: string;
  parameters?: Record<string, unknown>;
  sla?: Record<string, string | number>;
  shared?: boolean;
  state?: 'started' | 'stopped' | 'destroyed';
}

/** What the profile returns. */
export interface PartitionPlan {
  files?: FileSpec[];
  artifacts?: ArtifactSpec[];
  services?: ServiceSpec[];
  promises?: PromiseSpec[];
  /** Connection parameters of this instance. */
  publish?: Record<string, unknown>;
  /** Connection parameters per shared instance this partition hosts, by instance_guid. */
  publishShared?: Record<string, Record<string, unknown>>;
  requests?: InstanceRequestSpec[];
  /** What the partition may use; each limit left out is the node's default. */
  limits?: PartitionLimits;
  /** Server certificates for the web sites this instance serves, from the master's sites CA. */
  certificates?: SiteCertificateSpec[];
  /**
   * The partition's programs call the master as this instance: the agent writes, before the services start and
   * as reload files, `master/url` (the master's URL), `master/ca.pem` (its roots), `master/instance` (this
   * instance's id), `master/token` (this instance's own token, mode 0600; rewritten when the agent has to replace
   * it) and `master/targets.json` (the master as a Prometheus file service discovery target). The token can do
   * what the instance may do, nothing more (src/master/principal.ts); ask for it only when a program needs it.
   */
  masterAccess?: boolean;
}

/**
 * A server certificate the agent obtains from the master's sites CA for the instance, keeps renewed (at two thirds
 * of its life, checked at each convergence) and writes in the partition before the services start:
 * `certificates/<name>.crt` (the chain), `certificates/<name>.key`, `certificates/ca.crt` (the sites CA's roots,
 * what clients of the sites trust) and `certificates/status.json` (`{ <name>: { ok, not_after } | { ok: false,
 * error } }`). The files are re-read by the services (they never restart them). The master gives only names that
 * a shared instance hosted in the instance's tree declares in its `domains` parameter (and declared first,
 * platform-wide), and only the partition's own IP addresses (`src/master/pki/site-certificates.ts`); a refused or
 * failed certificate is said in `status.json`, and a held one keeps serving until it expires.
 */
export interface SiteCertificateSpec {
  /** Its files' name under `certificates/`: letters, digits, '.', '-', '_' (not `ca` nor `status`). */
  name: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Lifetime in days (1 to 90). @default 30 */
  days?: number;
}

/**
 * A partition's limits, enforced by the node (when it runs as root) for all
 * its processes together. Defaults are the node's (`hox node`): 2 GiB of
 * memory, every core, 1024 processes, 10 GiB of disk, 64 MiB of log per service.
 */
export interface PartitionLimits {
  /** Memory: resident memory, page cache and /dev/shm together; over it the kernel kills inside the partition. */
  memoryBytes?: number;
  /** CPU time in cores, fractions allowed (0.5: half a core). */
  cpus?: number;
  /** Processes and threads. A fork past it fails (EAGAIN). */
  pids?: number;
  /** Disk used by the partition directory and its /tmp; over it the services are stopped and an error reported. */
  diskBytes?: number;
  /** A service's log, current and rotated file together (rotated at half of it). */
  logBytes?: number;
}

/** A shared instance hosted by this partition (SlapOS's slave_instance_list entry). */
export interface SharedInstanceEntry {
  slave_reference: string;
  slave_title: string;
  slap_software_type: string;
  parameters: Record<string, unknown>;
  state: 'started' | 'stopped' | 'destroyed';
}

/** What a requested instance answered last time (children not ready yet have `ready: false`). */
export interface RequestedInstanceResult {
  ready: boolean;
  instanceGuid: string | null;
  connectionParameters: Record<string, unknown>;
  /** Why it is not ready: the master's refusal, or what it waits for ("waiting for a partition: no free partition…"). */
  error?: string;
}

/** What the profile receives: SlapOS's parameter dict plus the partition's resources. */
export interface ProfileInput {
  /** User parameters as requested. */
  parameters: Record<string, unknown>;
  instance_title: string;
  root_instance_title: string;
  slap_computer_id: string;
  slap_computer_partition_id: string;
  slap_software_type: string;
  slap_software_release_url: string;
  /**
   * The shared instances this partition hosts, in the order they were first requested (oldest first; the
   * master keeps it stable): "first come, first served" decisions, such as who gets a name, rest on it.
   */
  slave_instance_list: SharedInstanceEntry[];
  ip_list: string[][];
  timestamp: number;
  /** The requested state: the profile may plan fewer services when stopped. */
  state: 'started' | 'stopped';
  partition: {
    /** Absolute path of the partition directory. */
    path: string;
    /** Primary IPv4 address of the partition. */
    ip: string;
    /** First port of the partition's range, and how many. */
    portBase: number;
    portCount: number;
    user: string;
  };
  /** Absolute path where the release is installed (its files, built assets). */
  softwarePath: string;
  /** Programs the agent provides: `node` is the Node.js running the agent. */
  tools: { node: string };
  /** Results of the requests the previous plan made, by title. */
  requested: Record<string, RequestedInstanceResult>;
  /**
   * A stable, unguessable string for this instance's tenancy of the partition (passwords, keys):
   * base64url(HMAC-SHA256(partition secret, name)), 43 characters. The same name gives the same
   * value at every convergence and after agent restarts; another name, partition or tenant (after a
   * destroy) gives another. The partition secret is 32 random bytes the agent keeps out of the
   * partition's reach. Throws for a name not matching /^[A-Za-z0-9_.:-]{1,128}$/.
   *
   * @example
   * const password = input.secret('postgres-password');
   */
  secret(name: string): string;
  /**
   * A certificate authority of this instance's tenancy, declared by the software type
   * (`certificateAuthorities`): generated once by the agent (ECDSA P-256, a maintained X.509 library),
   * then the same at every convergence and after agent restarts; another tenant gets another. Its
   * private key is the agent's to keep: hand it only to the partition's own services. Throws for a
   * name the software type does not declare.
   *
   * @example
   * const ca = input.certificateAuthority('cluster-ca'); // { certificatePem, privateKeyPem }
   */
  certificateAuthority(name: string): { certificatePem: string; privateKeyPem: string };
}

/** A certificate authority a software type needs (see {@link ProfileInput.certificateAuthority}). */
export interface CertificateAuthoritySpec {
  /** Its subject's common name; a short id of its key is appended (two generations stay apart). */
  commonName: string;
  /** Its subject's organization, also given to the certificates it signs. */
  organization: string;
}

/** One software type of a release. */
export interface SoftwareTypeDefinition {
  /** JSON Schema of the parameters (validated by the agent before the profile runs). */
  parameters: Record<string, unknown>;
  /** JSON Schema of the published connection parameters (checked before publishing). */
  connection: Record<string, unknown>;
  /** Certificate authorities its profile uses, by name (names as for `secret`). */
  certificateAuthorities?: Record<string, CertificateAuthoritySpec>;
  profile(input: ProfileInput): PartitionPlan;
  /**
   * What of the partition outlives the instance: when the instance is destroyed, the node agent moves these
   * paths out of the partition (before wiping it) into its retained store, keeps them for the node's
   * retention period and reports them to the master, where the owner lists them (`hox db backups` of a
   * destroyed cluster). Static, so that it needs no profile run at destroy time.
   */
  retain?: readonly RetainSpec[];
}

/** A path of a partition kept after its instance is destroyed. */
export interface RetainSpec {
  /** Relative to the partition directory, without `..`; a missing path is skipped. */
  path: string;
  /** What it holds, for whoever reads the retained set (e.g. `hyper_db-backups`). */
  kind: string;
  /**
   * The set's small index, reported to the master: the file `file` (JSON, at most 4 KiB) of each directory
   * under `dir` (relative to `path`), at most 100 of them, newest names last.
   */
  catalog?: { dir: string; file: string };
}

/** A release module's default export. */
export interface ReleaseDefinition {
  softwareTypes: Record<string, SoftwareTypeDefinition>;
  /** Pure: what to run before the partition is wiped (e.g. a final dump). */
  destroy?(input: ProfileInput): { command: string[] }[];
}

/** Identity helper giving release authors type checking. */
export function defineRelease(definition: ReleaseDefinition): ReleaseDefinition {
  return definition;
}
