/**
 * The database access of the CRM: a pg Pool and the retry policy that lets the
 * app ride out a failover.
 *
 * On hyper_edge, DATABASE_URL points at a router that follows the primary of a
 * hyper_db cluster and cuts every session when the primary changes. So:
 *
 * - a **read** that fails because its connection was cut is retried a few
 *   times with a short, jittered backoff;
 * - a **write** is retried only when the failure proves the statement never
 *   took effect (the connection could not be opened, the client was already
 *   known dead, or a read-only standby refused it) — otherwise the write may
 *   or may not have committed, and repeating it could create a duplicate;
 * - when retrying is not allowed or does not help, {@link DatabaseUnavailableError}
 *   tells the HTTP layer to answer 503.
 *
 * Any other error (a constraint violation, a bug in a query) is passed through
 * unchanged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** The database cannot be reached right now; the request may be tried again later. */
export class DatabaseUnavailableError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/** Node socket errors that mean the connection is gone or cannot be made. */
const SOCKET_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** SQLSTATEs of a server going away or not ready: admin/crash shutdown, starting up, read-only standby. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '25006']);
/** SQLSTATEs raised before the statement ran: starting up (refused at connect), read-only standby (refused). */
const NOT_EXECUTED_SQLSTATES = new Set(['57P03', '25006']);
/** pg's own messages for a connection that was cut or could not be made. */
const CONNECTION_MESSAGE =
  /connection terminated|not queryable|timeout exceeded when trying to connect|terminating connection/i;
/** pg refuses to send on a client it already knows is dead: the statement never left. */
const NOT_SENT_MESSAGE = /not queryable/i;

/** @default delays before each retry, in milliseconds (4 retries, under 2 s in all) */
const DEFAULT_RETRY_DELAYS_MS = [100, 250, 500, 1000];

/**
 * Whether `error` means the database is unreachable, went away or is a read-only standby for now — as opposed to
 * a query that fails on its own merits.
 */
export function isTransientError(error) {
  if (!(error instanceof Error)) return false;
  const code = /** @type {{ code?: unknown }} */ (error).code;
  if (typeof code === 'string' && (SOCKET_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code))) return true;
  if (typeof code === 'string' && code.startsWith('08')) return true; // SQLSTATE class 08: connection exception
  return CONNECTION_MESSAGE.test(error.message);
}

/**
 * Opens the pool. Nothing connects until the first query.
 *
 * @param {object} options
 * @param {string} [options.connectionString] e.g. DATABASE_URL; without it pg reads PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD
 * @param {number[]} [options.retryDelaysMs] delays before each retry @default [100, 250, 500, 1000]
 * @param {(message: string) => void} [options.log] receives one line per lost connection and per retry
 * @param {number} [options.maxConnections] @default 10
 */
export function createDb(options = {}) {
  const retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const log = options.log ?? (() => {});
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    // A statement stuck behind a lock must not hold a request (and a pool slot) forever.
    statement_timeout: 15_000,
    application_name: 'hox-example-crm',
  });
  // Without this handler, a cut idle connection would crash the process.
  pool.on('error', (error) => log(`idle database connection lost: ${error.message}`));

  /** Errors raised before the statement was sent (connect failures). */
  const beforeSend = new WeakSet();

  /** Runs `work` on a freshly checked-out client; a client whose connection failed is destroyed, not reused. */
  async function onClient(work) {
    let client;
    try {
      client = await pool.connect();
    } catch (error) {
      if (error instanceof Error) beforeSend.add(error);
      throw error;
    }
    // pg-pool listens for errors only while a client is idle; a cut between two statements of a checked-out client
    // would otherwise be an unhandled 'error' event. The failing statement reports the error itself.
    const ignore = () => {};
    client.on('error', ignore);
    try {
      const result = await work(client);
      client.removeListener('error', ignore);
      client.release();
      return result;
    } catch (error) {
      client.removeListener('error', ignore);
      client.release(isTransientError(error) ? error : undefined);
      throw error;
    }
  }

  function safeToRepeat(kind, error) {
    if (kind === 'read') return true;
    const code = /** @type {{ code?: unknown }} */ (error).code;
    return beforeSend.has(error) || NOT_SENT_MESSAGE.test(error.message) || NOT_EXECUTED_SQLSTATES.has(code);
  }

  async function withRetry(kind, work) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await onClient(work);
      } catch (error) {
        if (!isTransientError(error)) throw error;
        const delayMs = retryDelaysMs[attempt];
        if (delayMs === undefined || !safeToRepeat(kind, error)) {
          throw new DatabaseUnavailableError(`database unavailable: ${error.message}`, { cause: error });
        }
        log(`database ${kind} failed (${error.code ?? error.message}), retry ${attempt + 1} in ~${delayMs} ms`);
        // Jitter spreads the retries of many requests cut at the same moment.
        await sleep(delayMs / 2 + Math.random() * delayMs);
      }
    }
  }

  return {
    /** An idempotent query (SELECT): retried after a cut connection. Resolves to pg's result. */
    read(text, values = []) {
      return withRetry('read', (client) => client.query(text, values));
    },
    /** A statement that changes data: retried only when it certainly did not run. */
    write(text, values = []) {
      return withRetry('write', (client) => client.query(text, values));
    },
    /**
     * Runs `fn(client)` inside BEGIN … COMMIT (ROLLBACK when it throws), with the write retry policy.
     * `fn` may be called again when a connection could not be made, so it must only use the database.
     */
    transaction(fn) {
      return withRetry('write', async (client) => {
        await client.query('BEGIN');
        try {
          const result = await fn(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          if (!isTransientError(error)) await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      });
    },
    /** `SELECT 1`: resolves when the database answers, rejects otherwise. */
    async ping() {
      await withRetry('read', (client) => client.query('SELECT 1'));
    },
    /** Closes every connection; waits for checked-out clients to be released. */
    close() {
      return pool.end();
    },
  };
}
