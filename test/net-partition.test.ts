import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupStaleTables,
  createNetPartition,
  findNft,
  netPartitionUnavailableReason,
} from '../src/testing/net-partition.js';

const A = '127.0.0.31';
const B = '127.0.0.32';
const C = '127.0.0.33';
/** A dropped SYN is retried for much longer than this: a connect that has not succeeded by then counts as cut. */
const CONNECT_WAIT_MS = 500;

const unavailable = netPartitionUnavailableReason();

function tables(): string[] {
  return execFileSync(findNft()!, ['list', 'tables'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().replace(/^table inet /, ''));
}

/** Echo servers on each address; resolves with their ports. */
async function echoServers(addresses: string[]): Promise<{ ports: Map<string, number>; close(): Promise<void> }> {
  const servers: net.Server[] = [];
  const ports = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  for (const address of addresses) {
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    servers.push(server);
    ports.set(address, (server.address() as net.AddressInfo).port);
  }
  return {
    ports,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}

/** Opens a connection from `from` and echoes one message within {@link CONNECT_WAIT_MS}: 'ok', 'timeout' or the error. */
async function reaches(from: string, to: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: to, port, localAddress: from });
    const timer = setTimeout(() => finish('timeout'), CONNECT_WAIT_MS);
    function finish(result: string): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    }
    socket.on('error', (error) => finish(`error: ${error.message}`));
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (data) => finish(data.toString() === 'ping' ? 'ok' : `unexpected ${data.toString()}`));
  });
}

/** Sends on an open connection and waits for the echo. */
async function echoes(socket: net.Socket, text: string): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), CONNECT_WAIT_MS);
    const onData = (data: Buffer): void => done(data.toString() === text);
    function done(ok: boolean): void {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(ok);
    }
    socket.on('data', onData);
    socket.write(text);
  });
}

describe.skipIf(unavailable !== undefined)(`net-partition${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let servers: Awaited<ReturnType<typeof echoServers>>;
  const port = (address: string): number => servers.ports.get(address)!;

  beforeAll(async () => {
    servers = await echoServers([A, B, C]);
  });
  afterAll(async () => {
    await servers?.close();
  });

  it('cuts two addresses both ways, heals, and deletes its table on dispose', async () => {
    const partition = await createNetPartition();
    try {
      expect(partition.table).toMatch(new RegExp(`^hox_test_${process.pid}_\\d+$`));
      expect(tables()).toContain(partition.table);
      expect(await reaches(A, B, port(B))).toBe('ok');
      const open = net.connect({ host: B, port: port(B), localAddress: A });
      open.on('error', () => {});
      await new Promise((resolve) => open.once('connect', resolve));
      expect(await echoes(open, 'before')).toBe(true);

      await partition.cut(A, B);
      expect(await reaches(A, B, port(B))).toBe('timeout');
      expect(await reaches(B, A, port(A))).toBe('timeout');
      expect(await echoes(open, 'during')).toBe(false);
      expect(await reaches(A, C, port(C))).toBe('ok');
      expect(await reaches(C, B, port(B))).toBe('ok');

      await partition.heal();
      expect(await reaches(A, B, port(B))).toBe('ok');
      expect(await reaches(B, A, port(A))).toBe('ok');
      open.destroy();
    } finally {
      await partition.dispose();
    }
    expect(tables()).not.toContain(partition.table);
    await partition.dispose(); // idempotent
    await expect(partition.cut(A, B)).rejects.toThrow(/disposed/);
  });

  it('isolates one address from the others only', async () => {
    const partition = await createNetPartition();
    try {
      await partition.isolate(A, [B, C]);
      expect(await reaches(A, B, port(B))).toBe('timeout');
      expect(await reaches(C, A, port(A))).toBe('timeout');
      expect(await reaches(B, C, port(C))).toBe('ok');
      await expect(partition.cut(A, '127.0.0.1; flush ruleset')).rejects.toThrow(/not an IPv4 address/);
    } finally {
      await partition.dispose();
    }
    expect(await reaches(A, B, port(B))).toBe('ok');
  });

  it("cuts what one user's processes send to an address, whatever their source address", async () => {
    const partition = await createNetPartition();
    try {
      // Another user's rule leaves this process (root) alone.
      await partition.cutUser(65534, B);
      expect(await reaches(A, B, port(B))).toBe('ok');
      await partition.cutUser(process.getuid!(), B, port(B));
      expect(await reaches(A, B, port(B))).toBe('timeout');
      expect(await reaches(C, B, port(B))).toBe('timeout');
      expect(await reaches(A, C, port(C))).toBe('ok');
      expect(await reaches(B, A, port(A))).toBe('ok');
      await expect(partition.cutUser(-1, B)).rejects.toThrow(/not a user id/);
      await partition.heal();
      expect(await reaches(A, B, port(B))).toBe('ok');
    } finally {
      await partition.dispose();
    }
  });

  it('removes tables left by dead processes, not live ones', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => child.once('exit', () => resolve(child.pid!)));
    const stale = `hox_test_${deadPid}_1`;
    execFileSync(findNft()!, ['add', 'table', 'inet', stale]);
    const live = await createNetPartition();
    try {
      expect(await cleanupStaleTables()).toContain(stale);
      const left = tables();
      expect(left).not.toContain(stale);
      expect(left).toContain(live.table);
    } finally {
      await live.dispose();
    }
  });
});
