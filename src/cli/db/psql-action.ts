/**
 * `hox db psql CLUSTER [DBNAME] [-- PSQL-ARGS]`: psql on one of your databases of a hyper_db cluster,
 * through its read-write endpoint (or the read-only one), as the database's own role, with the server
 * verified against the cluster's CA. Nothing secret goes on a command line: the password reaches psql
 * in a pgpass file and the CA in a file, both in a private temporary directory removed afterwards.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { HoxError } from '../../shared/errors.js';
import type { DbContext } from './cluster-actions.js';
import { HYPER_DB_RELEASE, rootOf, type Tree } from './cluster-client.js';
import { databaseTitle } from './database-action.js';

export interface PsqlOptions {
  readOnly: boolean;
  /** Arguments for psql itself (after `--`). */
  args: string[];
  /** Where to clean up if hox is stopped while psql runs. */
  onStop: (stop: () => Promise<void>, kind: 'cleanup') => void;
  /** Where hox says what it connects to (stderr: stdout is psql's). */
  notice: (line: string) => void;
}

/** psql on PATH, else Debian's PostgreSQL 15 (the version hyper_db runs). */
export function findPsql(path = process.env.PATH ?? ''): string | null {
  for (const dir of [...path.split(delimiter).filter(Boolean), '/usr/lib/postgresql/15/bin'])
    if (existsSync(join(dir, 'psql'))) return join(dir, 'psql');
  return null;
}

/** A .pgpass field: `:` and `\` escaped. */
const pgpassField = (value: string): string => value.replace(/[\\:]/g, (c) => `\\${c}`);

/** The caller's databases of `cluster` (trees `CLUSTER.DBNAME` whose root is a hyper_db shared instance). */
export function databasesOf(trees: readonly Tree[], cluster: string): { dbname: string; tree: Tree }[] {
  return trees
    .filter((t) => t.title.startsWith(`${cluster}.`))
    .filter((t) => {
      const root = rootOf(t);
      return root !== undefined && root.shared && root.software_release_uri === HYPER_DB_RELEASE;
    })
    .map((tree) => ({ dbname: tree.title.slice(cluster.length + 1), tree }))
    .sort((a, b) => a.dbname.localeCompare(b.dbname));
}

export async function runPsql(
  ctx: DbContext,
  cluster: string,
  dbname: string | undefined,
  options: PsqlOptions,
): Promise<void> {
  const psql = findPsql();
  if (psql === null)
    throw new HoxError(
      'HOX_NOT_FOUND',
      'psql is not installed on this machine (Debian: apt-get install postgresql-client)',
    );
  const trees = (await ctx.client.call('listTreeStatus', {})).result_list;
  const mine = databasesOf(trees, cluster);
  let chosen: { dbname: string; tree: Tree } | undefined;
  if (dbname === undefined) {
    if (mine.length !== 1)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        mine.length === 0
          ? `you have no database on cluster '${cluster}' (hox db database ${cluster} NAME)`
          : `cluster '${cluster}' has ${mine.length} of your databases: name one (${mine.map((d) => d.dbname).join(', ')})`,
        { field: 'dbname' },
      );
    chosen = mine[0];
  } else {
    chosen = mine.find((d) => d.dbname === dbname);
    if (chosen === undefined)
      throw new HoxError(
        'HOX_INSTANCE_TREE_NOT_FOUND',
        `you have no database '${dbname}' on cluster '${cluster}' (tree '${databaseTitle(cluster, dbname)}'${mine.length > 0 ? `; yours there: ${mine.map((d) => d.dbname).join(', ')}` : ''})`,
      );
  }
  const p = rootOf(chosen!.tree)!.connection_parameters;
  if (typeof p.error === 'string')
    throw new HoxError('HOX_CONFLICT', `database '${chosen!.dbname}' of cluster '${cluster}': ${p.error}`);
  const str = (key: string): string => {
    const v = p[key];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
    throw new HoxError(
      'HOX_CONFLICT',
      `database '${chosen!.dbname}' of cluster '${cluster}' is not published yet (no ${key}): try again shortly`,
    );
  };
  const host = str('host');
  const port = options.readOnly ? str('ro_port') : str('port');
  const [user, password, db, ca] = [str('user'), str('password'), str('dbname'), str('ca_cert')];

  const dir = mkdtempSync(join(tmpdir(), 'hox-psql-'));
  const cleanUp = (): void => rmSync(dir, { recursive: true, force: true });
  options.onStop(() => Promise.resolve(cleanUp()), 'cleanup');
  try {
    writeFileSync(join(dir, 'pgpass'), `${[host, port, db, user, password].map(pgpassField).join(':')}\n`, {
      mode: 0o600,
    });
    writeFileSync(join(dir, 'ca.pem'), ca, { mode: 0o600 });
    options.notice(
      `psql: ${db} as ${user} on ${host}:${port} (${options.readOnly ? 'read-only' : 'read-write'} endpoint of ${cluster})`,
    );
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(psql, options.args, {
        stdio: 'inherit',
        env: {
          ...process.env,
          PGHOST: host,
          PGPORT: port,
          PGDATABASE: db,
          PGUSER: user,
          PGPASSFILE: join(dir, 'pgpass'),
          PGSSLMODE: 'verify-full',
          PGSSLROOTCERT: join(dir, 'ca.pem'),
          PGAPPNAME: 'hox db psql',
          PGCONNECT_TIMEOUT: '10',
        },
      });
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(c ?? (signal === null ? 1 : 128)));
    });
    // psql said why; hox exits 1 (its code for a failure) with the status.
    if (code !== 0) throw new Error(`psql exited with status ${code}`);
  } finally {
    cleanUp();
  }
}
