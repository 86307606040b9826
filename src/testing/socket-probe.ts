/**
 * Real listeners and clients for network isolation tests: a listener is a
 * separate `node` process, started inside a given cgroup2 group and as a given
 * user (the way the agent starts a partition's processes: it joins the group,
 * then drops to the user, then runs node), that answers every TCP connection
 * or UDP datagram with a fixed text. Clients resolve with the answer or with
 * why there was none; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { join } from 'node:path';

export interface ListenerOptions {
  protocol: 'tcp' | 'udp';
  host: string;
  port: number;
  /** What it answers. */
  answer: string;
  /** cgroup2 directory (absolute) the process joins before running node; none: the caller's. */
  cgroupDir?: string;
  /** Runs as this uid/gid (through setpriv, after joining the group). */
  uid?: number;
  gid?: number;
}

export interface Listener {
  pid: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

const LISTENER_SOURCE = `
const [protocol, host, port, answer] = process.argv.slice(1);
if (protocol === 'udp') {
  const socket = require('node:dgram').createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
  socket.on('message', (_m, from) => socket.send(answer, from.port, from.address));
  socket.bind(Number(port), host, () => console.log('ready'));
} else {
  const server = require('node:net').createServer((c) => { c.on('error', () => {}); c.end(answer); });
  server.listen({ port: Number(port), host, ipv6Only: false }, () => console.log('ready'));
}
`;

/** Starts a listener process; resolves once it is bound (or rejects with what it printed). */
export async function startListener(options: ListenerOptions): Promise<Listener> {
  const node = [
    process.execPath,
    '-e',
    LISTENER_SOURCE,
    options.protocol,
    options.host,
    String(options.port),
    options.answer,
  ];
  const drop =
    options.uid === undefined
      ? []
      : ['/usr/bin/setpriv', `--reuid=${options.uid}`, `--regid=${options.gid ?? options.uid}`, '--clear-groups', '--'];
  const join_ = options.cgroupDir === undefined ? '' : `echo $$ > "${join(options.cgroupDir, 'cgroup.procs')}" && `;
  const child = spawn('/bin/sh', ['-c', `${join_}exec "$@"`, 'sh', ...drop, ...node], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: '/',
  });
  await waitReady(child);
  return {
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`listener not ready after ${READY_TIMEOUT_MS} ms: ${output}`)),
      READY_TIMEOUT_MS,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => fail(new Error(`listener exited (${code}): ${output}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** What a TCP connection to `host:port` answered, or why it got nothing: `refused`, `reset`, `timeout`. */
export function tcpAnswer(
  host: string,
  port: number,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<{ answer: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({
      host,
      port,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    let data = '';
    const timer = setTimeout(() => finish({ error: 'timeout' }), options.timeoutMs ?? 2000);
    function finish(result: { answer: string } | { error: string }): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    }
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('end', () => finish({ answer: data }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish({
        error:
          error.code === 'ECONNREFUSED'
            ? 'refused'
            : error.code === 'ECONNRESET'
              ? 'reset'
              : String(error.code ?? error.message),
      }),
    );
  });
}

const CLIENT_SOURCE = `
const [host, port, localAddress, timeoutMs] = process.argv.slice(1);
const socket = require('node:net').connect({ host, port: Number(port), localAddress });
let data = '';
const finish = (result) => { console.log(JSON.stringify(result)); process.exit(0); };
setTimeout(() => finish({ error: 'timeout' }), Number(timeoutMs));
socket.on('data', (chunk) => (data += chunk));
socket.on('end', () => finish({ answer: data }));
socket.on('error', (e) => finish({ error: e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' ? 'reset' : String(e.code) }));
`;

/** {@link tcpAnswer} from a process in the cgroup2 directory `cgroupDir`, bound to `localAddress`. */
export async function tcpAnswerFromGroup(
  cgroupDir: string,
  host: string,
  port: number,
  localAddress: string,
  timeoutMs = 2000,
): Promise<{ answer: string } | { error: string }> {
  const argv = [process.execPath, '-e', CLIENT_SOURCE, host, String(port), localAddress, String(timeoutMs)];
  const child = spawn('/bin/sh', ['-c', `echo $$ > "${join(cgroupDir, 'cgroup.procs')}" && exec "$@"`, 'sh', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + READY_TIMEOUT_MS);
  await new Promise((resolve) => child.once('close', resolve));
  clearTimeout(killer);
  try {
    return JSON.parse(output) as { answer: string } | { error: string };
  } catch {
    return { error: `client failed: ${output}` };
  }
}

/** What a UDP datagram to `host:port` got back, or why not: `refused` (ICMP port unreachable), `timeout`. */
export function udpAnswer(
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<{ answer: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => finish({ error: 'timeout' }), timeoutMs);
    function finish(result: { answer: string } | { error: string }): void {
      clearTimeout(timer);
      socket.close();
      resolve(result);
    }
    socket.on('message', (message) => finish({ answer: message.toString() }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish({ error: error.code === 'ECONNREFUSED' ? 'refused' : String(error.code ?? error.message) }),
    );
    // Connected, so that an ICMP port unreachable is reported as ECONNREFUSED.
    socket.connect(port, host, () => socket.send('ping'));
  });
}
