import { connect, type Socket } from 'node:net';
import type { CheckOutcome } from './check-outcome.js';
import { describeError } from './describe-error.js';

/** Passes when a TCP connection to host:port is established within timeoutMs; the socket is closed at once. */
export function checkTcp(host: string, port: number, timeoutMs: number): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    let socket: Socket | undefined;
    let settled = false;
    const finish = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket?.destroy();
      resolve(outcome);
    };
    const deadline = setTimeout(() => finish({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
    try {
      socket = connect({ host, port });
    } catch (error) {
      // A bad port throws synchronously (ERR_SOCKET_BAD_PORT).
      finish({ ok: false, detail: describeError(error) });
      return;
    }
    socket.once('connect', () => finish({ ok: true, detail: 'connected' }));
    // `on`, not `once`: a late second error must not become an uncaught exception.
    socket.on('error', (error) => finish({ ok: false, detail: describeError(error) }));
  });
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
