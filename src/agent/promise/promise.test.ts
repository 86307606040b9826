import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PromiseSpec } from '../../release-kit/types.js';
import { checkPromise, type PromiseResult } from './check-promise.js';
import { PromiseRunner, type PromiseRunnerOptions } from './promise-runner.js';

const node = process.execPath;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function listening(server: NetServer | HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: NetServer | HttpServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A TCP server counting the connections it accepted. */
async function startTcpServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  const port = await listening(server);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    closed ??= closeServer(server);
    return closed;
  };
  cleanups.push(close);
  return { port, connections: () => connections, close };
}

/** /ok answers 200 'all ok', /fail 500, /redirect 302, /slow after slowMs; counts requests in flight. */
async function startHttpServer(
  slowMs = 60_000,
): Promise<{ url: string; maxInFlight: () => number; inFlight: () => number; slowAnswered: () => number }> {
  let inFlight = 0;
  let maxInFlight = 0;
  let slowAnswered = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = createHttpServer((request, response) => {
    switch (request.url ?? '') {
      case '/ok':
        response.end('all ok');
        return;
      case '/fail':
        response.writeHead(500).end('broken');
        return;
      case '/redirect':
        response.writeHead(302, { location: '/ok' }).end();
        return;
      case '/slow': {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const timer = setTimeout(() => {
          timers.delete(timer);
          inFlight--;
          slowAnswered++;
          response.end('late ok');
        }, slowMs);
        timers.add(timer);
        response.on('close', () => {
          if (timers.delete(timer)) inFlight--;
          clearTimeout(timer);
        });
        return;
      }
      default:
        response.writeHead(404).end();
    }
  });
  const port = await listening(server);
  cleanups.push(() => {
    for (const timer of timers) clearTimeout(timer);
    return closeServer(server);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    maxInFlight: () => maxInFlight,
    inFlight: () => inFlight,
    slowAnswered: () => slowAnswered,
  };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  const port = await listening(server);
  await closeServer(server);
  return port;
}

function temporaryDirectory(): string {
  const directory = realpathSync(mkdtempSync(join(tmpdir(), 'hox-promise-')));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true, maxRetries: 3 }));
  return directory;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('checkPromise', () => {
  it('passes a tcp promise when the port accepts a connection', async () => {
    const { port } = await startTcpServer();
    const before = Date.now();
    const result = await checkPromise({ name: 'db', kind: 'tcp', host: '127.0.0.1', port });
    expect(result).toMatchObject({ name: 'db', ok: true, message: `tcp 127.0.0.1:${port}: connected` });
    expect(result.checkedAtMs).toBeGreaterThanOrEqual(before);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(result.durationMs)).toBe(true);
  });

  it('fails a tcp promise on a closed port, saying the connection was refused', async () => {
    const port = await closedPort();
    const result = await checkPromise({ name: 'db', kind: 'tcp', host: '127.0.0.1', port });
    expect(result).toMatchObject({ ok: false, message: `tcp 127.0.0.1:${port}: connection refused` });
  });

  it('passes an http promise on a 2xx or 3xx status, and checks the body when asked', async () => {
    const { url } = await startHttpServer();
    await expect(checkPromise({ name: 'web', kind: 'http', url: `${url}/ok` })).resolves.toMatchObject({
      ok: true,
      message: `http ${url}/ok: status 200`,
    });
    await expect(
      checkPromise({ name: 'web', kind: 'http', url: `${url}/ok`, status: 200, bodyContains: 'ok' }),
    ).resolves.toMatchObject({ ok: true, message: `http ${url}/ok: status 200, body contains 'ok'` });
    // Redirects are answers, not followed.
    await expect(checkPromise({ name: 'web', kind: 'http', url: `${url}/redirect` })).resolves.toMatchObject({
      ok: true,
      message: `http ${url}/redirect: status 302`,
    });
  });

  it('fails an http promise on an unexpected status or body', async () => {
    const { url } = await startHttpServer();
    await expect(checkPromise({ name: 'web', kind: 'http', url: `${url}/fail`, status: 200 })).resolves.toMatchObject({
      ok: false,
      message: `http ${url}/fail: status 500, expected 200`,
    });
    await expect(checkPromise({ name: 'web', kind: 'http', url: `${url}/fail` })).resolves.toMatchObject({
      ok: false,
      message: `http ${url}/fail: status 500, expected 2xx or 3xx`,
    });
    await expect(checkPromise({ name: 'web', kind: 'http', url: `${url}/ok`, status: 201 })).resolves.toMatchObject({
      ok: false,
      message: `http ${url}/ok: status 200, expected 201`,
    });
    await expect(
      checkPromise({ name: 'web', kind: 'http', url: `${url}/ok`, bodyContains: 'ready' }),
    ).resolves.toMatchObject({ ok: false, message: `http ${url}/ok: body does not contain 'ready'` });
  });

  it('fails an http promise that answers after its timeout, within the timeout', async () => {
    const server = await startHttpServer();
    const { url } = server;
    const result = await checkPromise({ name: 'web', kind: 'http', url: `${url}/slow`, timeoutMs: 200 });
    expect(result).toMatchObject({ ok: false, message: `http ${url}/slow: timed out after 200 ms` });
    // Not before its timeout; and it gave up (closed the request) instead of waiting for the answer.
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    await waitFor('the server to see the request closed', () => (server.inFlight() === 0 ? true : undefined));
    expect(server.slowAnswered()).toBe(0);
    console.log(`http promise with a 200 ms timeout gave up after ${result.durationMs} ms`);
  });

  it('fails an http promise on a closed port or a malformed URL', async () => {
    const port = await closedPort();
    await expect(checkPromise({ name: 'web', kind: 'http', url: `http://127.0.0.1:${port}/` })).resolves.toMatchObject({
      ok: false,
      message: `http http://127.0.0.1:${port}/: connection refused`,
    });
    await expect(checkPromise({ name: 'web', kind: 'http', url: 'not a url' })).resolves.toMatchObject({
      ok: false,
      message: 'http not a url: invalid URL',
    });
  });

  it('passes a command promise that exits 0', async () => {
    const result = await checkPromise({ name: 'cmd', kind: 'command', command: [node, '-e', 'process.exit(0)'] });
    expect(result).toMatchObject({
      name: 'cmd',
      ok: true,
      message: `command ['${node}', '-e', 'process.exit(0)']: exit 0`,
    });
  });

  it('fails a command promise with its exit code and last stderr line, else last stdout line', async () => {
    const script = "console.error('starting'); console.error('disk almost full\\n\\n'); process.exit(3)";
    const result = await checkPromise({ name: 'cmd', kind: 'command', command: [node, '-e', script] });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^command \['.+', '-e', '.+'\]: exit 3: disk almost full$/);

    const quiet = await checkPromise({
      name: 'cmd',
      kind: 'command',
      command: [node, '-e', "console.log('only on stdout'); process.exit(2)"],
    });
    expect(quiet.message).toMatch(/: exit 2: only on stdout$/);

    const long = await checkPromise({
      name: 'cmd',
      kind: 'command',
      command: [node, '-e', "console.error('x'.repeat(5000)); process.exit(1)"],
    });
    const line = /: exit 1: (x+…)$/.exec(long.message)?.[1];
    expect(line).toHaveLength(300);
  });

  it('runs a command in the given directory with the given environment', async () => {
    const directory = temporaryDirectory();
    const script = `process.exit(process.cwd() === ${JSON.stringify(directory)} && process.env.HOX_TEST === 'yes' ? 0 : 4)`;
    const spec: PromiseSpec = { name: 'cmd', kind: 'command', command: [node, '-e', script] };
    await expect(checkPromise(spec, { cwd: directory, env: { HOX_TEST: 'yes' } })).resolves.toMatchObject({ ok: true });
    await expect(checkPromise(spec, { cwd: directory, env: { HOX_TEST: 'no' } })).resolves.toMatchObject({
      ok: false,
      message: expect.stringMatching(/: exit 4$/) as unknown,
    });
    await expect(checkPromise(spec, { cwd: join(directory, 'missing') })).resolves.toMatchObject({
      ok: false,
      message: expect.stringMatching(/: working directory '.+missing' does not exist$/) as unknown,
    });
  });

  it('fails a command that cannot start, naming it', async () => {
    const result = await checkPromise({ name: 'cmd', kind: 'command', command: ['/nonexistent/check'] });
    expect(result).toMatchObject({
      ok: false,
      message: "command ['/nonexistent/check']: cannot start: '/nonexistent/check' not found",
    });
  });

  it('kills a command that outlives its timeout, with its children', async () => {
    // The command starts a child, prints both pids, then hangs. A shell, not Node.js: it prints the pids
    // long before the timeout even on a loaded machine (a Node.js script once took longer to start).
    const script = [": 'hang'", 'sleep 600 & echo $$ $!', 'wait'].join('\n');
    const result = await checkPromise({
      name: 'cmd',
      kind: 'command',
      command: ['/bin/sh', '-c', script],
      timeoutMs: 500,
    });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/: timed out after 500 ms: \d+ \d+$/);
    expect(result.message).toMatch(
      /^command \['\/bin\/sh', '-c', ': \\'hang\\'\\nsleep 600 & echo \$\$ \$!\\nwait'\]: /,
    );
    expect(result.message).not.toContain('\n');
    console.log(`command promise with a 500 ms timeout was killed after ${result.durationMs} ms`);
    const pids = /(\d+) (\d+)$/.exec(result.message)!.slice(1).map(Number);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
      } catch {
        return false;
      }
      // A killed orphan stays a zombie until init reaps it, which some container inits do late.
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
      } catch {
        return false;
      }
    };
    await waitFor('the command and its child to be gone', () => (pids.some(alive) ? undefined : true));
  });
});

describe('PromiseRunner', () => {
  let directory: string;
  const runners: PromiseRunner[] = [];

  beforeEach(() => {
    directory = temporaryDirectory();
  });

  // Runs before the outer afterEach closes servers and removes directories.
  afterEach(() => {
    for (const runner of runners.splice(0)) runner.stop();
  });

  function createRunner(options: Partial<PromiseRunnerOptions> = {}): {
    runner: PromiseRunner;
    changes: { partitionId: string; results: PromiseResult[]; failing: PromiseResult[] }[];
    errors: unknown[];
  } {
    const changes: { partitionId: string; results: PromiseResult[]; failing: PromiseResult[] }[] = [];
    const errors: unknown[] = [];
    const runner = new PromiseRunner({
      resultsFile: (partitionId) => join(directory, 'promises', `${partitionId}.json`),
      onChange: (partitionId, results, failing) => changes.push({ partitionId, results, failing }),
      onError: (_partitionId, error) => errors.push(error),
      ...options,
    });
    runners.push(runner);
    return { runner, changes, errors };
  }

  it('runs promises on their period and reports when one starts failing', async () => {
    const server = await startTcpServer();
    const { runner, changes, errors } = createRunner();
    runner.set('slappart0', [{ name: 'db', kind: 'tcp', host: '127.0.0.1', port: server.port, periodMs: 100 }]);

    const passing = await waitFor('a passing report', () => changes[0]);
    expect(passing).toMatchObject({ partitionId: 'slappart0', failing: [], results: [{ name: 'db', ok: true }] });

    await server.close();
    const failing = await waitFor('a failing report', () => changes[1]);
    expect(failing.failing).toEqual([
      expect.objectContaining({ name: 'db', ok: false, message: `tcp 127.0.0.1:${server.port}: connection refused` }),
    ]);
    expect(runner.results('slappart0')).toEqual(failing.results);
    await sleep(300);
    // Still failing: no new report for runs that change nothing.
    expect(changes).toHaveLength(2);
    expect(errors).toEqual([]);
  });

  it('checkNow runs every promise, writes the results file and reports only changes', async () => {
    const { url } = await startHttpServer();
    const port = await closedPort();
    const clock = { nowMs: () => 1_700_000_000_000 };
    const { runner, changes } = createRunner({ clock });
    const file = join(directory, 'promises', 'slappart1.json');
    runner.set('slappart1', [
      { name: 'web', kind: 'http', url: `${url}/ok`, bodyContains: 'ok', periodMs: 60_000 },
      { name: 'db', kind: 'tcp', host: '127.0.0.1', port, periodMs: 60_000 },
    ]);
    const results = await runner.checkNow('slappart1');
    expect(results.map((result) => [result.name, result.ok, result.checkedAtMs])).toEqual([
      ['web', true, clock.nowMs()],
      ['db', false, clock.nowMs()],
    ]);
    const content = JSON.parse(readFileSync(file, 'utf8')) as { partitionId: string; results: PromiseResult[] };
    expect(content.partitionId).toBe('slappart1');
    expect(content.results).toEqual(results);

    // Each promise's first result is a change; later runs with the same verdicts are not.
    const reported = changes.length;
    expect(reported).toBeGreaterThanOrEqual(1);
    expect(changes.at(-1)?.results).toEqual(results);
    expect(changes.at(-1)?.failing.map((result) => result.message)).toEqual([
      `tcp 127.0.0.1:${port}: connection refused`,
    ]);
    await runner.checkNow('slappart1');
    const latest = await runner.checkNow('slappart1');
    expect(changes).toHaveLength(reported);

    // A restarted agent knows the last state, and does not report it again.
    runner.stop();
    const restarted = createRunner();
    expect(restarted.runner.results('slappart1')).toEqual(latest);
    restarted.runner.set('slappart1', [
      { name: 'web', kind: 'http', url: `${url}/ok`, bodyContains: 'ok', periodMs: 60_000 },
      { name: 'db', kind: 'tcp', host: '127.0.0.1', port, periodMs: 60_000 },
    ]);
    await restarted.runner.checkNow('slappart1');
    expect(restarted.changes).toEqual([]);
  });

  it('planned() lists each promise with its latest result or none yet; onUpdate fires on every run and set change', async () => {
    const { url } = await startHttpServer();
    const updates: string[] = [];
    const { runner } = createRunner({ onUpdate: (partitionId) => updates.push(partitionId) });
    // Nothing set since the runner started: what the partition runs is not known, which is not "none".
    expect(runner.planned('slappart2')).toBeUndefined();
    runner.set('slappart2', [
      { name: 'web', kind: 'http', url: `${url}/ok`, periodMs: 60_000 },
      { name: 'later', kind: 'http', url: `${url}/ok`, periodMs: 60_000, timeoutMs: 60_000 },
    ]);
    expect(updates).toEqual(['slappart2']);
    await runner.checkNow('slappart2');
    expect(runner.planned('slappart2')?.map((p) => [p.name, p.result?.ok])).toEqual([
      ['web', true],
      ['later', true],
    ]);
    // Every recorded run is an update (the reporter decides what is news), not only a change of verdict.
    const before = updates.length;
    await runner.checkNow('slappart2');
    expect(updates.length).toBe(before + 2);
    // A new promise has no result until it runs; an emptied set is known to be empty.
    runner.set('slappart2', [
      { name: 'web', kind: 'http', url: `${url}/ok`, periodMs: 60_000 },
      { name: 'fresh', kind: 'http', url: `${url}/slow`, periodMs: 60_000, timeoutMs: 60_000 },
    ]);
    expect(runner.planned('slappart2')?.map((p) => [p.name, p.result?.ok])).toEqual([
      ['web', true],
      ['fresh', undefined],
    ]);
    expect(updates.at(-1)).toBe('slappart2');
    runner.set('slappart2', []);
    expect(runner.planned('slappart2')).toEqual([]);
  });

  it('replacing the set forgets removed promises; an unchanged set keeps its schedule', async () => {
    const kept = await startTcpServer();
    const removed = await startTcpServer();
    const { runner, changes } = createRunner();
    const keptSpec: PromiseSpec = { name: 'kept', kind: 'tcp', host: '127.0.0.1', port: kept.port, periodMs: 100 };
    runner.set('p', [keptSpec, { name: 'removed', kind: 'tcp', host: '127.0.0.1', port: removed.port, periodMs: 100 }]);
    await waitFor('both promises to pass', () => (runner.results('p').length === 2 ? true : undefined));

    // Same set, in a fresh object with keys in another order, every 20 ms: runs stay on the 100 ms period.
    const before = kept.connections();
    const startedAt = Date.now();
    while (Date.now() - startedAt < 500) {
      runner.set('p', [{ periodMs: 100, port: kept.port, host: '127.0.0.1', kind: 'tcp', name: 'kept' }]);
      await sleep(20);
    }
    const runs = kept.connections() - before;
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(runs).toBeLessThanOrEqual(8);

    expect(runner.results('p').map((result) => result.name)).toEqual(['kept']);
    expect(changes.at(-1)?.results.map((result) => result.name)).toEqual(['kept']);
    const removedRuns = removed.connections();
    await sleep(300);
    expect(removed.connections()).toBe(removedRuns);
  });

  it('never overlaps runs of one promise', async () => {
    const { url, maxInFlight } = await startHttpServer(300);
    const { runner } = createRunner();
    runner.set('p', [{ name: 'slow', kind: 'http', url: `${url}/slow`, periodMs: 50, timeoutMs: 2000 }]);
    const [first, second] = await Promise.all([runner.checkNow('p'), runner.checkNow('p')]);
    expect(first?.[0]?.ok).toBe(true);
    expect(second).toEqual(first);
    await sleep(700);
    expect(maxInFlight()).toBe(1);
  });

  it('clear() stops the partition and deletes its results file', async () => {
    const server = await startTcpServer();
    const { runner } = createRunner();
    const file = join(directory, 'promises', 'p.json');
    runner.set('p', [{ name: 'db', kind: 'tcp', host: '127.0.0.1', port: server.port, periodMs: 100 }]);
    await runner.checkNow('p');
    expect(existsSync(file)).toBe(true);

    runner.clear('p');
    expect(existsSync(file)).toBe(false);
    expect(runner.results('p')).toEqual([]);
    await expect(runner.checkNow('p')).resolves.toEqual([]);
    const runs = server.connections();
    await sleep(300);
    expect(server.connections()).toBe(runs);
    expect(existsSync(file)).toBe(false);
  });

  it('rejects a set with two promises of the same name, changing nothing', async () => {
    const server = await startTcpServer();
    const { runner } = createRunner();
    const spec: PromiseSpec = { name: 'db', kind: 'tcp', host: '127.0.0.1', port: server.port, periodMs: 60_000 };
    runner.set('p', [spec]);
    expect(() => runner.set('p', [spec, { ...spec, port: 1 }])).toThrow("partition 'p': duplicate promise name 'db'");
    await expect(runner.checkNow('p')).resolves.toEqual([expect.objectContaining({ name: 'db', ok: true })]);
  });
});
