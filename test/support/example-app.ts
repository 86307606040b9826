/**
 * Runs an example app of `examples/` the way hyper_edge does: the `web` and
 * `release` commands of its manifest through `sh -c`, with `HOST`, `PORT`, `DATABASE_URL`, the `PG*`
 * variables and `HOX_APP_VERSION` in the environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { PostgresServer } from '../../src/testing/postgres-server.js';

/** A database and its owner, as the postgres addon provisions them. */
export interface AddonDatabase {
  name: string;
  user: string;
  password: string;
}

/** Creates the addon's role and database (owned by the role) on `server`; the role is not a superuser. */
export async function createAddonDatabase(server: PostgresServer, addon: AddonDatabase): Promise<void> {
  const admin = new pg.Client({ connectionString: server.connectionString });
  admin.on('error', () => {});
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE "${addon.user}" LOGIN PASSWORD '${addon.password.replaceAll("'", "''")}'`);
    await admin.query(`CREATE DATABASE "${addon.name}" OWNER "${addon.user}"`);
  } finally {
    await admin.end().catch(() => {});
  }
}

/** The environment an app gets from the platform: ours without `PG*` and DATABASE_URL, plus the addon's and `extra`. */
export function appEnv(
  port: number,
  addon: AddonDatabase,
  extra: Record<string, string> = {},
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) {
    if (!key.startsWith('PG') && key !== 'DATABASE_URL') env[key] = value;
  }
  const url = `postgresql://${addon.user}:${encodeURIComponent(addon.password)}@127.0.0.1:${port}/${addon.name}`;
  return {
    ...env,
    DATABASE_URL: url,
    PGHOST: '127.0.0.1',
    PGPORT: String(port),
    PGDATABASE: addon.name,
    PGUSER: addon.user,
    PGPASSWORD: addon.password,
    ...extra,
  };
}

/** The result of a command that ran to its end. */
export interface CommandResult {
  code: number | null;
  output: string;
}

/** Runs a shell command in `cwd` to its end (killed after `timeoutMs`), collecting stdout and stderr together. */
export async function runCommand(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): Promise<CommandResult> {
  const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  return { code, output };
}

export { freePort } from '../../src/testing/free-port.js';

/** A running web process. */
export interface AppProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT` */
  baseUrl: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Starts `command` (a Procfile `web:` line) with `exec`, so that signals reach the app itself, then waits until
 * `GET /healthz` answers 200 (at most `readyTimeoutMs`).
 */
export async function startApp(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  readyTimeoutMs = 30_000,
): Promise<AppProcess> {
  const port = Number(env['PORT']);
  const child = spawn('sh', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => resolve(`spawn error: ${error.message}`));
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const app: AppProcess = {
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`'${command}' exited before it was ready (${await exited}):\n${output}`);
    }
    const ready = await fetch(`${app.baseUrl}/healthz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return app;
    if (Date.now() > deadline) {
      await app.stop(2_000);
      throw new Error(`'${command}' did not answer /healthz with 200 within ${readyTimeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }
}

/** POSTs a form without following the redirect. */
export async function postForm(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
}
