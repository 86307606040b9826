/**
 * Network partitions between loopback addresses, for fault tests: nftables
 * rules that drop every packet between two IPv4 addresses, in both directions,
 * or every packet a user's processes send to an address ({@link
 * NetPartition.cutUser}: for programs that cannot choose their source
 * address — libpq binds none, so on one machine a PostgreSQL standby's
 * connections to its primary all leave from 127.0.0.1).
 *
 * Each {@link createNetPartition} makes a table of its own,
 * `inet hox_test_<pid>_<n>`, with a filter chain on the `input` and on the
 * `output` hook (a loopback packet crosses both); rules go into both chains.
 * Dropping (not rejecting) makes a cut look like a dead network: connects and
 * sends hang until their own timeouts.
 *
 * Needs root and the `nft` command (Debian package `nftables`). Tables are
 * removed by `dispose()`, and also when the process exits or gets SIGINT or
 * SIGTERM; a process killed with SIGKILL leaves its tables behind, which
 * {@link cleanupStaleTables} removes once their pid is dead.
 */
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A set of drop rules in a table of its own. */
export interface NetPartition {
  /** The nftables table name (family `inet`). */
  readonly table: string;
  /** Drops every packet between `a` and `b`, both ways. Adds to the rules already there. */
  cut(a: string, b: string): Promise<void>;
  /** Cuts `addr` from each of `others`. */
  isolate(addr: string, others: readonly string[]): Promise<void>;
  /**
   * Drops every packet that sockets of user `uid` send to `addr` (to `port` only, when given), whatever
   * their source address: connections they open to it cannot be established, and those already open
   * stall (their acknowledgements are dropped). Matched on the `output` hook (`meta skuid`).
   */
  cutUser(uid: number, addr: string, port?: number): Promise<void>;
  /** Removes every rule; the table stays, empty. */
  heal(): Promise<void>;
  /** Deletes the table. Idempotent; the partition cannot be used afterwards. */
  dispose(): Promise<void>;
}

const TABLE_PREFIX = 'hox_test_';
const NFT_TIMEOUT_MS = 10_000;
const CHAINS = [
  ['hox_input', 'input'],
  ['hox_output', 'output'],
] as const;
/** Where `nft` lives on Debian, in case PATH lacks the sbin directories. */
const SBIN_DIRS = ['/usr/sbin', '/sbin'];

/**
 * The tables this process still has to delete at exit, and the exit/signal
 * handlers installed for them. Module state on purpose: process exit is
 * process-wide, and a handler per partition would pile up listeners.
 */
const liveTables = new Set<string>();
let tableCounter = 0;
let handlersInstalled = false;

/** The `nft` executable, or `undefined` when it is not installed. */
export function findNft(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), ...SBIN_DIRS];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = path.join(dir, 'nft');
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Why partitions cannot be made here (not root, no `nft`), or `undefined` when they can. */
export function netPartitionUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'network partitions need root (nftables)';
  if (findNft() === undefined) return "network partitions need the 'nft' command (Debian package nftables)";
  return undefined;
}

function nftPath(): string {
  const nft = findNft();
  if (nft === undefined) throw new Error("'nft' not found: install the Debian package nftables");
  return nft;
}

/** Runs an nft script through stdin (`nft -f -`). */
async function runNft(script: string): Promise<string> {
  const nft = nftPath();
  return new Promise<string>((resolve, reject) => {
    const child = execFile(nft, ['-f', '-'], { timeout: NFT_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`nft failed: ${stderr.trim() || error.message}\n--- script ---\n${script}`, { cause: error }));
      } else {
        resolve(stdout);
      }
    });
    child.stdin?.end(script);
  });
}

async function listTables(): Promise<string[]> {
  const output = await runNft('list tables\n');
  const names: string[] = [];
  for (const line of output.split('\n')) {
    const match = /^table inet (\S+)$/.exec(line.trim());
    if (match?.[1] !== undefined) names.push(match[1]);
  }
  return names;
}

function checkAddress(addr: string): string {
  if (!net.isIPv4(addr)) throw new Error(`'${addr}' is not an IPv4 address`);
  return addr;
}

/** Synchronous, for the exit handler: deletes what is left, ignoring errors. */
function deleteLiveTablesSync(): void {
  if (liveTables.size === 0) return;
  const script = [...liveTables].map((table) => `delete table inet ${table}\n`).join('');
  liveTables.clear();
  try {
    execFileSync(nftPath(), ['-f', '-'], {
      input: script,
      timeout: NFT_TIMEOUT_MS,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch {
    // Exiting anyway; cleanupStaleTables() catches what is left.
  }
}

function onSignal(signal: NodeJS.Signals): void {
  deleteLiveTablesSync();
  uninstallHandlers();
  // Keep the default behaviour (terminate) unless someone else handles the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', deleteLiveTablesSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', deleteLiveTablesSync);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/**
 * Creates an empty partition table (no rule yet: nothing is dropped).
 *
 * @example
 * const partition = await createNetPartition();
 * try {
 *   await partition.isolate('127.0.0.11', ['127.0.0.12', '127.0.0.13']);
 *   // ... the primary on 127.0.0.11 is cut off
 *   await partition.heal();
 * } finally {
 *   await partition.dispose();
 * }
 */
export async function createNetPartition(): Promise<NetPartition> {
  tableCounter += 1;
  const table = `${TABLE_PREFIX}${process.pid}_${tableCounter}`;
  const chains = CHAINS.map(
    ([name, hook]) => `  chain ${name} {\n    type filter hook ${hook} priority filter; policy accept;\n  }\n`,
  ).join('');
  await runNft(`table inet ${table} {\n${chains}}\n`);
  liveTables.add(table);
  installHandlers();
  let disposed = false;

  const usable = (): void => {
    if (disposed) throw new Error(`partition table ${table} is disposed`);
  };
  const cut = async (a: string, b: string): Promise<void> => {
    usable();
    const [x, y] = [checkAddress(a), checkAddress(b)];
    const rules: string[] = [];
    for (const [chain] of CHAINS) {
      rules.push(`add rule inet ${table} ${chain} ip saddr ${x} ip daddr ${y} drop\n`);
      rules.push(`add rule inet ${table} ${chain} ip saddr ${y} ip daddr ${x} drop\n`);
    }
    await runNft(rules.join(''));
  };

  return {
    table,
    cut,
    async isolate(addr: string, others: readonly string[]): Promise<void> {
      for (const other of others) await cut(addr, other);
    },
    async cutUser(uid: number, addr: string, port?: number): Promise<void> {
      usable();
      if (!Number.isInteger(uid) || uid < 0) throw new Error(`'${uid}' is not a user id`);
      if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65535))
        throw new Error(`'${port}' is not a port`);
      const to = `ip daddr ${checkAddress(addr)}${port === undefined ? '' : ` tcp dport ${port}`}`;
      await runNft(`add rule inet ${table} hox_output meta skuid ${uid} ${to} drop\n`);
    },
    async heal(): Promise<void> {
      usable();
      await runNft(CHAINS.map(([chain]) => `flush chain inet ${table} ${chain}\n`).join(''));
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      try {
        await runNft(`delete table inet ${table}\n`);
      } finally {
        liveTables.delete(table);
        if (liveTables.size === 0) uninstallHandlers();
      }
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the `inet hox_test_<pid>_<n>` tables whose process is gone (left by
 * a test process killed with SIGKILL).
 *
 * @returns the names of the deleted tables.
 */
export async function cleanupStaleTables(): Promise<string[]> {
  const stale = (await listTables()).filter((table) => {
    const match = /^hox_test_(\d+)_\d+$/.exec(table);
    return match?.[1] !== undefined && !isAlive(Number(match[1]));
  });
  if (stale.length > 0) await runNft(stale.map((table) => `delete table inet ${table}\n`).join(''));
  return stale;
}
