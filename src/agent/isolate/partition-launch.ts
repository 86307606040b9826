/**
 * How a process of a partition is started when the agent is root: in its own
 * mount namespace with the partition's private /tmp and /dev/shm, inside the
 * partition's cgroups, then as the partition's user — in that order, and all
 * of it before anything of the tenant runs. Pure: it only builds the argv.
 *
 * The chain is exec after exec, never a fork, so the pid the agent spawned is
 * the pid of the service (its pid record, its process group and its session):
 *
 *   unshare --mount --propagation private      (root, new mount namespace)
 *   → sh: joins each cgroup (writes its own pid to cgroup.procs), bind-mounts
 *     the private directories, and the paths kept visible through the private
 *     /tmp recursively (a filesystem mounted under the data directory, e.g. a
 *     volume for a member's pg_wal, stays visible), cd   (root)
 *   → setpriv --reuid --regid --clear-groups    (drops to the partition user)
 *   → perl: sets the environment, execs the command (as the partition user)
 *
 * Why joining before exec rather than the agent moving the child after spawn:
 * a child moved afterwards may already have forked, and its children would
 * stay outside the limits (a fork bomb escapes in its first microseconds).
 *
 * Why the tenant's environment travels hex-encoded in one variable and is set
 * only after the drop: the root steps (unshare, sh, mount, setpriv) are
 * dynamically linked, and the loader honours LD_PRELOAD, LD_LIBRARY_PATH,
 * GCONV_PATH… for root too. A release that put a parameter into a service's
 * environment would otherwise give the tenant code running as root. And not
 * in argv: every user can read every process's command line.
 */

/** What isolates one partition's processes (see `formatPartitions`). */
export interface PartitionIsolation {
  uid: number;
  gid: number;
  /** `cgroup.procs` files the process joins, v1 controllers and the cgroup2 group. */
  cgroupProcs: string[];
  /** Mounted on /tmp: root-owned, mode 1777, one per partition, outside the partition. */
  tmpDir: string;
  /** Mounted on /dev/shm: on the machine's /dev/shm (tmpfs), one per partition. */
  shmDir: string;
  /**
   * Directories under /tmp the partition's processes must still see at their path (a data dir in
   * /tmp, as in tests): each is bind-mounted on `target`, a root-owned directory prepared inside
   * `tmpDir` at format, before `tmpDir` covers /tmp.
   */
  keep: ReadonlyArray<{ source: string; target: string }>;
}

export const UNSHARE = '/usr/bin/unshare';
const SH = '/bin/sh';
const SETPRIV = '/usr/bin/setpriv';
const PERL = '/usr/bin/perl';
const MOUNT = '/usr/bin/mount';

/** The variable carrying the tenant's environment through the root steps. */
const ENV_VARIABLE = 'HOX_LAUNCH_ENV';

const LAUNCHER = `set -eu
uid=$1 gid=$2 loader=$3; shift 3
while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift
tmp=$1 shm=$2 cwd=$3; shift 3
${MOUNT} --bind "$shm" /dev/shm
while [ "$1" != -- ]; do ${MOUNT} --rbind "$1" "$2"; shift 2; done; shift
${MOUNT} --rbind "$tmp" /tmp
cd "$cwd"
exec ${SETPRIV} --reuid="$uid" --regid="$gid" --clear-groups -- ${PERL} -e "$loader" -- "$@"`;

// As the partition user: the environment, exactly (nothing of the launcher's), then the command.
const LOADER = `my $h = delete $ENV{${ENV_VARIABLE}} // ''; %ENV = ();
for (split /\\0/, pack('H*', $h)) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
exec { $ARGV[0] } @ARGV or do { print STDERR "hox: cannot run '$ARGV[0]': $!\\n"; exit 127 };`;

/** Encodes an environment for the loader: NUL-separated `K=V`, hex. Names with `=` or NUL are refused. */
function encodeEnv(env: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(env).map(([key, value]) => {
    if (key === '' || key.includes('=') || key.includes('\0') || value.includes('\0'))
      throw new Error(`environment variable '${key}' cannot be passed to a process`);
    return `${key}=${value}`;
  });
  return Buffer.from(pairs.join('\0')).toString('hex');
}

/**
 * The argv and environment that run `file args` as described above, to be
 * spawned by root (no uid/gid of its own) with `cwd` anywhere root may go.
 */
export function isolatedCommand(
  isolation: PartitionIsolation,
  command: { file: string; args: readonly string[]; cwd: string; env: Readonly<Record<string, string>> },
): { file: string; args: string[]; env: Record<string, string> } {
  const binds = isolation.keep.flatMap(({ source, target }) => [source, target]);
  return {
    file: UNSHARE,
    args: [
      '--mount',
      '--propagation',
      'private',
      '--',
      SH,
      '-c',
      LAUNCHER,
      'hox-launch',
      String(isolation.uid),
      String(isolation.gid),
      LOADER,
      ...isolation.cgroupProcs,
      '--',
      isolation.tmpDir,
      isolation.shmDir,
      command.cwd,
      ...binds,
      '--',
      command.file,
      ...command.args,
    ],
    env: { PATH: '/usr/bin:/bin', [ENV_VARIABLE]: encodeEnv(command.env) },
  };
}
