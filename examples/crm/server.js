/**
 * The web process (`web: node server.js`).
 *
 * Environment (set by hyper_edge):
 * - `HOST`, `PORT`: where to listen (default 127.0.0.1:3000);
 * - `DATABASE_URL` (or `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`): the postgres addon;
 * - `HOX_APP_VERSION`: shown in the footer (default "dev").
 *
 * SIGTERM (or SIGINT) shuts down gracefully: stop accepting connections,
 * finish the requests in flight, close the database pool, exit 0. Requests
 * still running after 8 s are cut so that the process is gone well within the
 * platform's 10 s.
 */
import http from 'node:http';
import { createApp } from './app.js';
import { createDb } from './db.js';

const GRACE_MS = 8_000;
const HARD_EXIT_MS = 9_500;

function log(line) {
  console.log(line);
}

function resolveConfig(env) {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a TCP port, got '${env.PORT}'`);
  return Object.freeze({
    host: env.HOST || '127.0.0.1',
    port,
    version: env.HOX_APP_VERSION || 'dev',
    databaseUrl: env.DATABASE_URL || undefined,
  });
}

const config = resolveConfig(process.env);
const db = createDb({ connectionString: config.databaseUrl, log });
const handle = createApp({ db, version: config.version, log });
let stopping = false;
/** Responses not sent yet: on shutdown they say `connection: close`, so no keep-alive connection outlives them. */
const inFlight = new Set();

const server = http.createServer((req, res) => {
  const startedAt = performance.now();
  inFlight.add(res);
  res.on('close', () => inFlight.delete(res));
  res.on('finish', () => {
    const ms = Math.round(performance.now() - startedAt);
    log(`${req.method} ${req.url} ${res.statusCode} ${ms}ms`);
  });
  if (stopping) res.setHeader('connection', 'close');
  void handle(req, res);
});
server.requestTimeout = 30_000;

server.listen(config.port, config.host, () => {
  const address = server.address();
  log(`crm ${config.version} listening on http://${config.host}:${address.port}`);
});

function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: no new connections; finishing ${inFlight.size} requests in flight`);
  for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
  const cut = setTimeout(() => {
    log(`requests still running after ${GRACE_MS} ms: closing their connections`);
    server.closeAllConnections();
  }, GRACE_MS);
  setTimeout(() => process.exit(1), HARD_EXIT_MS).unref();
  // close() stops listening and closes idle keep-alive connections; its callback runs once the last one is gone.
  server.close(() => {
    clearTimeout(cut);
    db.close().then(
      () => log('stopped'),
      (error) => log(`closing the database pool failed: ${error.message}`),
    );
  });
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
