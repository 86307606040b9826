/**
 * Loading an edge's Caddy configuration, so that HTTP/3 keeps up with it. Caddy 2.6 (Debian's) reuses its QUIC
 * listener across configuration loads, and that listener keeps the TLS configuration of the load that created it:
 * a certificate added later is never presented over HTTP/3, and the handshake fails (caddyserver/caddy#4849, fixed
 * in 2.7 by #5517). So when the certificates change, the configuration is loaded twice: first without HTTP/3
 * (the QUIC listener closes; TCP keeps serving HTTP/1.1 and 2), then with it (a new listener, with the new
 * certificates). HTTP/3 is down between the two loads, a few milliseconds; browsers fall back to HTTP/2.
 */
import { loadConfig } from '../../hyper_edge/caddy-admin.js';
import { edgeCaddyConfig, type EdgeCaddyOptions } from './caddy.js';

export async function loadEdgeConfig(options: EdgeCaddyOptions, certificatesChanged: boolean): Promise<void> {
  if (certificatesChanged) await loadConfig(options.adminSocket, edgeCaddyConfig({ ...options, http3: false }));
  await loadConfig(options.adminSocket, edgeCaddyConfig({ ...options, http3: true }));
}
