/**
 * Machines on one host, for tests that need separate machines: each is a network namespace (`ip
 * netns`) with its own loopback and one interface `eth0`, plugged into a bridge that lives in a
 * namespace of its own (the switch). Addresses are the caller's choice, all in one /16, so every machine
 * reaches every other directly; nothing is routed to or from the host's own network.
 *
 * Processes run in a machine with `ip netns exec` ({@link NetnsLab.spawn}, {@link NetnsLab.exec}); files
 * are shared (a namespace separates the network only), so a machine's data directory is an ordinary
 * temporary directory. {@link NetnsLab.unplug} takes a machine off the switch (its link down: packets
 * to and from it are lost, as with a pulled cable) and {@link NetnsLab.plug} puts it back.
 *
 * Needs root and the `ip` command (Debian package `iproute2`). `destroy()` deletes the namespaces,
 * which kills no process: the caller stops its own first.
 */
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';

export interface LabMachine {
  /** Short name (letters and digits, up to 8): the namespace is `<lab>-<name>`. */
  name: string;
  /** The machine's main address (on eth0). */
  ip: string;
  /** More addresses on eth0 (a node's partition addresses). */
  extra?: readonly string[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NetnsLab {
  /** The namespace of a machine, for `ip netns exec`. */
  namespace(machine: string): string;
  /** Runs a command in a machine; resolves with its exit code and output, never rejects. */
  exec(
    machine: string,
    argv: readonly string[],
    options?: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string },
  ): Promise<ExecResult>;
  /** Starts a long-running command in a machine (stdin ignored, stdout and stderr piped). */
  spawn(
    machine: string,
    argv: readonly string[],
    options?: { env?: NodeJS.ProcessEnv; cwd?: string },
  ): ChildProcessByStdio<null, Readable, Readable>;
  /** Takes a machine off the switch (its link goes down). */
  unplug(machine: string): Promise<void>;
  /** Puts it back. */
  plug(machine: string): Promise<void>;
  /** Deletes every namespace of the lab (idempotent). */
  destroy(): Promise<void>;
}

const IP_TIMEOUT_MS = 10_000;
const PREFIX_LENGTH = 16;

/** Why this process cannot build a lab (not root, no `ip`), or null when it can. */
export function netnsLabUnavailableReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'network namespaces need root';
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin'])
    try {
      accessSync(`${dir}/ip`, fsConstants.X_OK);
      return null;
    } catch {
      // next
    }
  return 'the ip command is missing (Debian package iproute2)';
}

function run(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    const child = execFile(
      file!,
      args,
      { timeout: options.timeoutMs ?? IP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function ip(...args: string[]): Promise<void> {
  const result = await run(['ip', ...args]);
  if (result.code !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.code}`}`);
}

/**
 * Builds the lab `name` (letters and digits, up to 6) with its machines. A lab of the same name left by a
 * killed run is deleted first.
 */
export async function createNetnsLab(name: string, machines: readonly LabMachine[]): Promise<NetnsLab> {
  if (!/^[a-z][a-z0-9]{0,5}$/.test(name)) throw new Error(`lab name '${name}': letters and digits, up to 6`);
  const switchNs = `${name}-sw`;
  const namespaces = [switchNs, ...machines.map((m) => `${name}-${m.name}`)];
  const destroy = async (): Promise<void> => {
    for (const ns of namespaces) await run(['ip', 'netns', 'delete', ns]);
  };
  await destroy();
  try {
    await ip('netns', 'add', switchNs);
    await ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', switchNs, 'link', 'set', 'br0', 'up');
    for (const [index, machine] of machines.entries()) {
      if (!/^[a-z][a-z0-9]{0,7}$/.test(machine.name)) throw new Error(`machine name '${machine.name}'`);
      const ns = `${name}-${machine.name}`;
      // Interface names are at most 15 bytes: numbered, created in the switch and moved.
      const outside = `p${index}`;
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', switchNs, 'link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', switchNs, 'link', 'set', outside, 'master', 'br0');
      await ip('-n', switchNs, 'link', 'set', outside, 'up');
      for (const address of [machine.ip, ...(machine.extra ?? [])])
        await ip('-n', ns, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  const namespace = (machine: string): string => {
    if (!machines.some((m) => m.name === machine)) throw new Error(`no machine '${machine}' in lab ${name}`);
    return `${name}-${machine}`;
  };
  return {
    namespace,
    exec: (machine, argv, options = {}) =>
      new Promise((resolve) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', namespace(machine), ...argv],
          {
            env: options.env ?? process.env,
            timeout: options.timeoutMs ?? 180_000,
            maxBuffer: 16 * 1024 * 1024,
            ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
          },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
        );
        if (options.input !== undefined) child.stdin?.end(options.input);
        else child.stdin?.end();
      }),
    spawn: (machine, argv, options = {}) =>
      spawn('ip', ['netns', 'exec', namespace(machine), ...argv], {
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      }),
    unplug: (machine) => ip('-n', namespace(machine), 'link', 'set', 'eth0', 'down'),
    plug: (machine) => ip('-n', namespace(machine), 'link', 'set', 'eth0', 'up'),
    destroy,
  };
}
