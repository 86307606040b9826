/**
 * Makes sure Patroni (Debian 12: 3.0.2) and its built-in Raft (python3-pysyncobj)
 * are installed, installing them with apt-get when running as root.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PACKAGES = ['patroni', 'python3-pysyncobj'];
const APT_TIMEOUT_MS = 600_000;

async function works(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args, { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The Python that runs `patroni`, from its `#!` line: another `python3` may
 * come first on PATH (pyenv) and not see Debian's python3-pysyncobj.
 */
function patroniPython(): string {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    try {
      const firstLine = readFileSync(path.join(dir, 'patroni'), 'utf8').split('\n', 1)[0] ?? '';
      const interpreter = /^#!\s*(\S+)/.exec(firstLine)?.[1];
      if (interpreter !== undefined && !interpreter.endsWith('/env')) return interpreter;
    } catch {
      // Not in this directory.
    }
  }
  return 'python3';
}

async function installed(): Promise<boolean> {
  return (await works('patroni', ['--version'])) && (await works(patroniPython(), ['-c', 'import pysyncobj']));
}

async function aptInstall(): Promise<void> {
  await run('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES], {
    timeout: APT_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/**
 * Installs `patroni` and `python3-pysyncobj` when missing (root only; runs
 * `apt-get update` once if the first install attempt fails).
 *
 * @returns Patroni's version line, e.g. `patroni 3.0.2`.
 */
export async function ensurePatroni(log: (line: string) => void): Promise<string> {
  if (!(await installed())) {
    if (process.getuid?.() !== 0) {
      throw new Error(`Patroni is missing; as root run: apt-get install -y ${PACKAGES.join(' ')}`);
    }
    log(`installing ${PACKAGES.join(' ')} with apt-get…`);
    try {
      await aptInstall();
    } catch {
      await run('apt-get', ['update'], { timeout: APT_TIMEOUT_MS });
      await aptInstall();
    }
    if (!(await installed())) throw new Error(`apt-get installed ${PACKAGES.join(' ')} but patroni still does not run`);
  }
  const { stdout } = await run('patroni', ['--version'], { timeout: 30_000 });
  return stdout.trim();
}
