/**
 * The master under test, in its own process so that the load generator does
 * not share an event loop (or a core) with it. Forked by `run.ts` over IPC:
 *
 * - on start: `startTestMaster({ databaseUrl, tls })`, then sends `{ type: 'ready', url, adminToken, ca? }`;
 * - `{ cmd: 'cpu' }` → `{ type: 'cpu', userUs, systemUs, rssBytes }` (this process only);
 * - `{ cmd: 'stop' }` or a closed IPC channel → stops the master and exits.
 *
 * `HOX_BENCH_DATABASE_URL` selects PostgreSQL; SQLite in a temp dir when unset. `HOX_BENCH_TLS=1`: HTTPS
 * with a certificate of the platform CA (its roots sent as `ca`), as `hox master` speaks; plain HTTP otherwise.
 */
import { startTestMaster, type TestMaster } from '../../src/testing/test-master.js';

type Command = { cmd: 'cpu' } | { cmd: 'stop' };

function send(message: Record<string, unknown>): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('master-process.ts must be forked with an IPC channel (by run.ts)');
  const databaseUrl = process.env['HOX_BENCH_DATABASE_URL'];
  let master: TestMaster | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        await master?.stop();
      } finally {
        process.disconnect?.();
        // Exit explicitly: a pool or timer left behind must not keep the process alive.
        setTimeout(() => process.exit(0), 100).unref();
      }
    })();
    return stopping;
  };
  process.on('disconnect', () => void stop());
  process.on('message', (message: Command) => {
    if (message.cmd === 'cpu') {
      const cpu = process.cpuUsage();
      send({ type: 'cpu', userUs: cpu.user, systemUs: cpu.system, rssBytes: process.memoryUsage().rss });
    } else if (message.cmd === 'stop') {
      void stop();
    }
  });
  try {
    master = await startTestMaster({
      ...(databaseUrl === undefined || databaseUrl === '' ? {} : { databaseUrl }),
      tls: process.env['HOX_BENCH_TLS'] === '1',
    });
  } catch (error) {
    send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  if (stopping !== undefined) {
    // Told to stop while starting: stop what was just started.
    await master.stop();
    return;
  }
  send({
    type: 'ready',
    url: master.url,
    adminToken: master.adminToken,
    ...(master.ca === undefined ? {} : { ca: master.ca }),
  });
}

void main();
