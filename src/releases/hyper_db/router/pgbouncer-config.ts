/**
 * PgBouncer's configuration for the router's read-write endpoint, rendered as data (no I/O): the ini
 * file and the auth file. Values that cannot be written safely are refused, never passed through:
 * a newline or a control character would start a new ini line (a new setting, a new user), so every
 * name, password and path is checked here; a double quote in the auth file is doubled, as PgBouncer
 * reads it.
 */

export interface PgBouncerUser {
  name: string;
  /** Plain text: PgBouncer runs SCRAM with the client from it, and logs in to PostgreSQL with it. */
  password: string;
}

export interface PgBouncerSettings {
  /** The router's address and the read-write port the cluster publishes. */
  listenHost: string;
  listenPort: number;
  /** Directory of the ini, auth and TLS files, the pidfile and the unix socket (the admin console's way in). */
  dir: string;
  /** Unix socket directory, or null when its path would be too long for a socket (admin then over TCP). */
  socketDir: string | null;
  /** The primary the databases point at (only a placeholder while none is known: the pooler is paused then). */
  server: { host: string; port: number };
  /** Databases listed by name; any other name falls back to the `*` entry (same server). */
  databases: readonly string[];
  users: readonly PgBouncerUser[];
  /** The admin console's user (also in `users`). */
  adminUser: string;
  /** Client and server TLS (null: none at all). */
  tls: {
    /** `require`: plain client connections are refused; `allow`: accepted. */
    clientSslmode: 'require' | 'allow';
    keyFile: string;
    certFile: string;
    /** The cluster CA: the members' server certificates are verified against it (verify-full). */
    caFile: string;
  } | null;
  /** Seconds a query may wait for a server (paused, or none free) before its client is disconnected. */
  queryWaitTimeoutS: number;
  poolSize: number;
  maxClientConnections: number;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
const HOST = /^(?:\d{1,3}\.){3}\d{1,3}$/;
const UNSAFE = /[\u0000-\u001f\u007f]/;

export class PgBouncerConfigError extends Error {}

function checkName(what: string, name: string): string {
  if (!NAME.test(name))
    throw new PgBouncerConfigError(`pgbouncer: ${what} '${name.slice(0, 80)}' is not a plain identifier`);
  return name;
}

function checkPath(what: string, path: string): string {
  if (UNSAFE.test(path) || !path.startsWith('/') || /^\s|\s$/.test(path) || /[;#]/.test(path))
    throw new PgBouncerConfigError(
      `pgbouncer: ${what} path ${JSON.stringify(path.slice(0, 200))} cannot be written to the ini file`,
    );
  return path;
}

function checkPort(what: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new PgBouncerConfigError(`pgbouncer: ${what} port ${port} is invalid`);
  return port;
}

/** One auth file field: between double quotes, a double quote doubled; control characters refused. */
export function authField(what: string, value: string): string {
  if (value === '' || UNSAFE.test(value))
    throw new PgBouncerConfigError(`pgbouncer: ${what} is empty or holds a newline or control character`);
  return `"${value.replace(/"/g, '""')}"`;
}

/** `"user" "password"` lines; a user named twice is refused (PgBouncer would keep one silently). */
export function renderAuthFile(users: readonly PgBouncerUser[]): string {
  const seen = new Set<string>();
  const lines = users.map((u) => {
    checkName('user name', u.name);
    if (seen.has(u.name)) throw new PgBouncerConfigError(`pgbouncer: user '${u.name}' is listed twice`);
    seen.add(u.name);
    return `${authField(`user name of ${u.name}`, u.name)} ${authField(`password of ${u.name}`, u.password)}`;
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function renderPgBouncerIni(s: PgBouncerSettings): string {
  if (!HOST.test(s.listenHost))
    throw new PgBouncerConfigError(`pgbouncer: listen address '${s.listenHost}' is not IPv4`);
  if (!HOST.test(s.server.host))
    throw new PgBouncerConfigError(`pgbouncer: server address '${s.server.host}' is not IPv4`);
  checkPort('listen', s.listenPort);
  checkPort('server', s.server.port);
  const dir = checkPath('configuration directory', s.dir);
  const server = `host=${s.server.host} port=${s.server.port}`;
  const databases = [...new Set(s.databases)].map((d) => {
    if (checkName('database', d) === 'pgbouncer')
      throw new PgBouncerConfigError("pgbouncer: database name 'pgbouncer' is the admin console's");
    return `${d} = ${server} dbname=${d}`;
  });
  const settings: [string, string | number][] = [
    ['listen_addr', s.listenHost],
    ['listen_port', s.listenPort],
    ['unix_socket_dir', s.socketDir === null ? '' : checkPath('socket', s.socketDir)],
    ['unix_socket_mode', '0700'],
    ['pidfile', `${dir}/pgbouncer.pid`],
    ['auth_type', 'scram-sha-256'],
    ['auth_file', `${dir}/users.txt`],
    ['admin_users', checkName('admin user', s.adminUser)],
    ['pool_mode', 'transaction'],
    ['default_pool_size', s.poolSize],
    ['max_client_conn', s.maxClientConnections],
    ['query_wait_timeout', s.queryWaitTimeoutS],
    // Every server connection is reset once a transaction ends (DISCARD ALL): session state cannot leak
    // from one client to the next, and a session advisory lock (pg_advisory_lock) ends with the
    // transaction that took it instead of staying held forever on a pooled connection nobody owns
    // (the CRM's migration lock did: its next deploy waited for it without end).
    ['server_reset_query', 'DISCARD ALL'],
    ['server_reset_query_always', 1],
    ['server_check_delay', 0],
    ['server_login_retry', 1],
    ['server_connect_timeout', 5],
    // Startup parameters PgBouncer cannot carry from one server connection to the next: accepted and
    // dropped rather than refusing the client (JDBC sends extra_float_digits; node-postgres users set the
    // timeouts). The server's defaults apply; a transaction sets its own with SET LOCAL (docs/hyper-db.md).
    [
      'ignore_startup_parameters',
      'extra_float_digits,statement_timeout,lock_timeout,idle_in_transaction_session_timeout',
    ],
    ['application_name_add_host', 0],
    ['log_connections', 0],
    ['log_disconnections', 0],
    ['log_pooler_errors', 1],
  ];
  if (s.tls === null) settings.push(['client_tls_sslmode', 'disable'], ['server_tls_sslmode', 'disable']);
  else
    settings.push(
      ['client_tls_sslmode', s.tls.clientSslmode],
      ['client_tls_key_file', checkPath('TLS key', s.tls.keyFile)],
      ['client_tls_cert_file', checkPath('TLS certificate', s.tls.certFile)],
      ['server_tls_sslmode', 'verify-full'],
      ['server_tls_ca_file', checkPath('CA', s.tls.caFile)],
    );
  return [
    '; written by the hyper_db router: do not edit',
    '[databases]',
    ...databases,
    `* = ${server}`,
    '',
    '[pgbouncer]',
    ...settings.map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
}
