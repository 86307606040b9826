/**
 * Secrets never on hox's command line (issue 11, finding 8): every user of a
 * machine reads every process's argv (`ps`, /proc/<pid>/cmdline). The built
 * CLI refuses a secret given in argv (exit 2, naming the safe form) and takes
 * it from a file, stdin or the environment; while `hox node` registers and
 * `hox master` connects to PostgreSQL, no command line on the machine shows
 * the token or the password.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/testing/free-port.js';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { cleanUpNodePartitions } from './support/agent-harness.js';

const ROOT = join(import.meta.dirname, '..');
const HOX = join(ROOT, 'dist', 'bin', 'hox.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every process's command line on this machine, as `ps` shows them to any user. */
function commandLines(): { pid: number; line: string }[] {
  const out: { pid: number; line: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      out.push({
        pid: Number(entry),
        line: readFileSync(`/proc/${entry}/cmdline`).toString('utf8').replaceAll('\0', ' '),
      });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** The parent pid of `pid` (field 4 of /proc/<pid>/stat, after the command name in parentheses). */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function commandLineOf(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`).toString('utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/**
 * Scans every command line (and the environment of every process but `exceptPid`) until `stop` resolves; returns
 * what showed `needle`.
 */
async function watchProcesses(
  needle: string,
  exceptPid: () => number | undefined,
  stop: Promise<unknown>,
): Promise<string[]> {
  const seen: string[] = [];
  let done = false;
  stop.then(
    () => (done = true),
    () => (done = true),
  );
  let scans = 0;
  while (!done) {
    scans += 1;
    for (const { pid, line } of commandLines()) {
      if (line.includes(needle)) seen.push(`argv of ${pid}: ${line}`);
      if (pid === exceptPid() || pid === process.pid) continue;
      // A child the excepted process is forking, caught between fork and exec, is still a copy of it
      // (same command line, same environment block): not a process the secret was handed to.
      if (parentOf(pid) === exceptPid() && line === commandLineOf(exceptPid())) continue;
      try {
        if (readFileSync(`/proc/${pid}/environ`).includes(needle)) seen.push(`environment of ${pid}: ${line}`);
      } catch {
        // ended, or a kernel thread
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await stop; // a process that failed fails the test
  expect(scans).toBeGreaterThan(1); // the scan ran while the process worked, not only after
  return seen;
}

function hox(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [HOX, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

/** Starts a long-running hox command; resolves its first stdout line that `ready` accepts, or rejects on exit. */
function startHox(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (line: string) => boolean,
): { child: ChildProcess; ready: Promise<string>; output: () => string } {
  const child = spawn(process.execPath, [HOX, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const readyLine = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find(ready);
      if (line !== undefined) resolve(line);
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`hox ${args[0]} exited ${code}: ${output}`)));
  });
  return { child, ready: readyLine, output: () => output };
}

async function stopHox(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('secrets on the command line', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let m: TestMaster;
  const children: ChildProcess[] = [];
  const nodes: { id: string; dataDir: string }[] = [];

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore' });
    home = mkdtempSync(join(tmpdir(), 'hox-argv-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    env = { ...process.env, HOX_CONFIG: join(home, 'config.json') };
    for (const name of ['HOX_MASTER_URL', 'HOX_TOKEN', 'HOX_ADMIN_TOKEN', 'HOX_REGISTER_TOKEN', 'HOX_DATABASE_URL'])
      delete env[name];
    m = await startTestMaster();
  });

  afterEach(async () => {
    while (children.length > 0) await stopHox(children.pop());
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      // Kills what is left in its partitions, removes their users and its nftables table.
      await cleanUpNodePartitions(node.id, node.dataDir, 1);
    }
  });

  afterAll(async () => {
    await m?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('refuses a token or password given in argv, with exit 2 and the safe form to use', async () => {
    const { token } = await m.admin.call('createRegistrationToken', {});
    const nodeDir = join(home, 'refused-node');
    const node = await hox(['node', '--master', m.url, '--data-dir', nodeDir, '--register-token', token], env);
    expect(node.code).toBe(2);
    expect(node.stderr).toContain('--register-token would put a secret on the command line');
    expect(node.stderr).toContain('use --register-token-file FILE or the environment variable HOX_REGISTER_TOKEN');
    expect(existsSync(nodeDir)).toBe(false);

    const masterDir = join(home, 'refused-master');
    for (const url of ['postgres://hox:s3cret@127.0.0.1:5432/hox', 'postgresql://hox@db.example/hox?password=s3cret']) {
      const master = await hox(['master', '--data-dir', masterDir, '--database', url], env);
      expect(master.code, master.stderr).toBe(2);
      expect(master.stderr).toContain('--database-file FILE or the environment variable HOX_DATABASE_URL');
      expect(master.stderr).toContain('PGPASSFILE');
    }
    expect(existsSync(masterDir)).toBe(false);

    const login = await hox(['login', '--url', m.url, '--with-token', m.adminToken], env);
    expect(login.code).toBe(2);
    expect(login.stderr).toContain('--with-token - and the token on stdin');
    expect(existsSync(env.HOX_CONFIG!)).toBe(false);

    const global = await hox(['--master', m.url, '--token', m.adminToken, 'list'], env);
    expect(global.code).toBe(2);
    expect(global.stderr).toContain('use the environment variable HOX_TOKEN, or hox login');
  });

  it('hox login --with-token - reads the token from stdin and keeps it in a 0600 file', async () => {
    const login = await hox(['login', '--url', m.url, '--with-token', '-'], env, `${m.adminToken}\n`);
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    expect(login.stdout).toContain(`logged in to ${m.url} as admin`);
    expect(statSync(env.HOX_CONFIG!).mode & 0o777).toBe(0o600);
    const list = await hox(['list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('no instance tree');
    const empty = await hox(['login', '--url', m.url, '--with-token', '-'], env, '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('no token on stdin');
  });

  for (const form of ['HOX_REGISTER_TOKEN', '--register-token-file'] as const) {
    it(`hox node registers with the token from ${form}; no command line or other process environment shows it`, async () => {
      const id = `argv-${form === 'HOX_REGISTER_TOKEN' ? 'env' : 'file'}-${randomBytes(3).toString('hex')}`;
      const dataDir = join(home, id);
      nodes.push({ id, dataDir });
      const { token } = await m.admin.call('createRegistrationToken', {});
      const args = ['node', '--master', m.url, '--data-dir', dataDir, '--node-id', id, '--partitions', '1'];
      let nodeEnv = env;
      if (form === 'HOX_REGISTER_TOKEN') nodeEnv = { ...env, HOX_REGISTER_TOKEN: token };
      else {
        const file = join(home, `${id}.token`);
        writeFileSync(file, `${token}\n`, { mode: 0o600 });
        args.push('--register-token-file', file);
      }
      const started = startHox(args, nodeEnv, (line) => line.includes('converging towards'));
      children.push(started.child);
      const seen = await watchProcesses(token, () => started.child.pid, started.ready);
      expect(seen).toEqual([]);
      expect((await m.admin.call('listNodes', {})).result_list.map((n) => n.computer_guid)).toContain(id);
      // The agent keeps its node token, not the registration token, in its data dir.
      expect(readFileSync(join(dataDir, 'node.json'), 'utf8')).not.toContain(token);
    });
  }

  it('a node not registered yet says which safe forms give it a token', async () => {
    const run = await hox(['node', '--master', m.url, '--data-dir', join(home, 'no-token'), '--partitions', '1'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--register-token-file FILE or HOX_REGISTER_TOKEN');
  });

  describe('hox master on PostgreSQL', () => {
    let pg: PostgresServer;
    beforeAll(async () => {
      pg = await startPostgres();
    });
    afterAll(async () => {
      await pg?.stop();
    });

    it('takes the URL with its password from --database-file or HOX_DATABASE_URL, shows it nowhere, shares one store key', async () => {
      const password = `pw-${randomBytes(12).toString('hex')}`;
      // The test server trusts local connections, so any password logs in: what matters is where it travels.
      const url = (await createDatabase(pg, `argv_${process.pid}`)).replace('://hox@', `://hox:${password}@`);
      expect(url).toContain(`:${password}@`);
      const urlFile = join(home, 'database-url');
      writeFileSync(urlFile, `${url}\n`, { mode: 0o600 });

      const firstDir = join(home, 'master-1');
      const first = startHox(
        ['master', '--data-dir', firstDir, '--listen', `127.0.0.1:${await freePort()}`, '--database-file', urlFile],
        env,
        (line) => line.includes('hox master listening on'),
      );
      children.push(first.child);
      expect(await watchProcesses(password, () => first.child.pid, first.ready)).toEqual([]);
      expect(statSync(join(firstDir, 'store.key')).mode & 0o777).toBe(0o600);

      // A second master with the URL from the environment but no key of its own: refused, saying what to do.
      const secondDir = join(home, 'master-2');
      const refused = await hox(['master', '--data-dir', secondDir, '--listen', '127.0.0.1:0'], {
        ...env,
        HOX_DATABASE_URL: url,
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /postgres store's secrets are sealed with store key k-[0-9a-f]+, but .*store\.key/,
      );
      expect(refused.stderr).toContain('--store-key-file or HOX_STORE_KEY_FILE');
      expect(existsSync(join(secondDir, 'store.key'))).toBe(false);

      // Given the first one's key, it starts.
      const second = startHox(
        ['master', '--data-dir', secondDir, '--listen', `127.0.0.1:${await freePort()}`],
        { ...env, HOX_DATABASE_URL: url, HOX_STORE_KEY_FILE: join(firstDir, 'store.key') },
        (line) => line.includes('hox master listening on'),
      );
      children.push(second.child);
      expect(await watchProcesses(password, () => second.child.pid, second.ready)).toEqual([]);
      expect(second.output()).toContain('(store: postgres)');
    });
  });
});
