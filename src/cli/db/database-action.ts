/**
 * `hox db database CLUSTER DBNAME`: a database of a hyper_db cluster is a
 * shared instance hosted by the cluster's root (SLA `instance_guid`), with
 * parameters `{database, password_rotation}`; its connection parameters are
 * the database's URLs and credentials.
 *
 * A shared instance requested by a person is the root of its own instance
 * tree, and tree titles are unique per owner, not per cluster: the tree is
 * titled `CLUSTER.DBNAME` so that two clusters may each have a database
 * `app`, and the database name is given by the `database` parameter.
 */
import { HoxError } from '../../shared/errors.js';
import { formatValue, maskSecrets } from '../output.js';
import type { DbContext } from './cluster-actions.js';
import {
  CLUSTER_TYPE,
  HYPER_DB_RELEASE,
  findTreeRoot,
  followTree,
  loadCluster,
  rootOf,
  slaOf,
} from './cluster-client.js';
import { assertDatabaseName, withPasswordRotation } from './cluster-parameters.js';
import { databaseReadiness, readClusterView } from './cluster-view.js';

export function databaseTitle(cluster: string, dbname: string): string {
  return `${cluster}.${dbname}`;
}

export interface DatabaseOptions {
  rotatePassword: boolean;
  destroy: boolean;
  /** With `destroy`: asked once the database is found; throws to keep it. */
  confirmDestroy?: () => Promise<void>;
  reveal: boolean;
  timeoutMs: number;
}

export async function requestDatabase(
  ctx: DbContext,
  name: string,
  dbname: string,
  options: DatabaseOptions,
): Promise<void> {
  assertDatabaseName(dbname);
  if (options.rotatePassword && options.destroy)
    throw new HoxError('HOX_BAD_REQUEST', '--rotate-password and --destroy cannot be used together', {
      field: '--destroy',
    });
  const deadline = Date.now() + options.timeoutMs;
  const cluster = await loadCluster(ctx.client, name);
  const title = databaseTitle(name, dbname);
  const existing = await findTreeRoot(ctx.client, title);
  const what = `database '${dbname}' of cluster '${name}'`;
  if (existing !== undefined) {
    const host = existing.sla_parameters.instance_guid;
    if (!existing.shared || existing.software_release_uri !== HYPER_DB_RELEASE || host !== cluster.root.instance_guid)
      throw new HoxError(
        'HOX_TITLE_CONFLICT',
        `instance tree '${title}' exists and is not ${what} (release '${existing.software_release_uri}', ${existing.shared ? `hosted by '${String(host)}'` : 'not shared'})`,
      );
  }
  if (options.destroy) {
    if (existing === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `${what} not found`);
    await options.confirmDestroy?.();
    await ctx.client.call('requestInstance', {
      title,
      software_release_uri: existing.software_release_uri,
      software_type: existing.software_type,
      sla_parameters: slaOf(existing),
      shared: true,
      state: 'destroyed',
    });
    ctx.progress(`${what}: destruction requested`);
    await followTree<true>(ctx.client, title, {
      timeoutMs: options.timeoutMs,
      waitingFor: `${what} to be destroyed`,
      progress: ctx.progress,
      check: (tree) =>
        tree === undefined ? { done: true } : { progress: `'${title}' is being destroyed (${tree.health})` },
    });
    // Gone from the master; then gone from the databases the router says exist.
    await followTree<true>(ctx.client, name, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      waitingFor: `cluster '${name}' to drop database '${dbname}' (its shared instance is gone)`,
      progress: ctx.progress,
      check: (tree) => {
        const root = tree === undefined ? undefined : rootOf(tree);
        if (root === undefined) return { done: true };
        const view = readClusterView(root.connection_parameters);
        if (view.databases === null || !view.databases.includes(dbname)) return { done: true };
        return { progress: `the cluster still lists database '${dbname}'` };
      },
    });
    if (ctx.json) return ctx.print(JSON.stringify({ cluster: name, database: dbname, title, state: 'destroyed' }));
    return ctx.print(`${title}: destroyed; cluster '${name}' no longer lists database '${dbname}'`);
  }
  if (options.rotatePassword && existing === undefined)
    throw new HoxError(
      'HOX_INSTANCE_TREE_NOT_FOUND',
      `${what} not found: create it first with hox db database ${name} ${dbname}`,
    );
  if (existing?.state === 'destroyed')
    throw new HoxError('HOX_CONFLICT', `${what} is being destroyed; request it again once it is gone`);
  const current = { ...existing?.parameters, database: dbname };
  const parameters = options.rotatePassword ? withPasswordRotation(current) : current;
  const previousPassword = existing?.connection_parameters.password;
  const answer = await ctx.client.call('requestInstance', {
    title,
    software_release_uri: HYPER_DB_RELEASE,
    software_type: CLUSTER_TYPE,
    parameters,
    sla_parameters: { instance_guid: cluster.root.instance_guid },
    shared: true,
    state: 'started',
  });
  if ('status' in answer) throw new HoxError('HOX_CONFLICT', `${what}: ${answer.message}`);

  let published: Record<string, unknown>;
  try {
    published = await followTree<Record<string, unknown>>(ctx.client, title, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      waitingFor: `cluster '${name}' to publish ${what}${options.rotatePassword ? ' with its new password' : ''}`,
      progress: ctx.progress,
      check: (tree) => {
        const root = tree === undefined ? undefined : rootOf(tree);
        if (root === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `${what} is gone`);
        const p = root.connection_parameters;
        // The cluster refuses a name that is taken or reserved: bad input, said at once.
        if (typeof p.error === 'string')
          throw new HoxError('HOX_BAD_REQUEST', `cluster '${name}' refused database '${dbname}': ${p.error}`, {
            field: 'dbname',
          });
        if (typeof p.dbname !== 'string') return { progress: `waiting for cluster '${name}' to publish it` };
        if (options.rotatePassword && p.password === previousPassword)
          return { progress: 'waiting for the new password to be published' };
        return { done: p };
      },
    });
  } catch (error) {
    // A refused new request is withdrawn: left queued, it would take the name the day its owner goes.
    if (existing === undefined && error instanceof HoxError && error.code === 'HOX_BAD_REQUEST')
      await withdraw(ctx, title).catch(() => {});
    throw error;
  }
  // The router creates the database (and sets passwords) on the primary: wait until it says so.
  await followTree<true>(ctx.client, name, {
    timeoutMs: Math.max(1, deadline - Date.now()),
    waitingFor: `cluster '${name}' to create ${what}`,
    progress: ctx.progress,
    check: (tree) => {
      const root = tree === undefined ? undefined : rootOf(tree);
      if (root === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `cluster '${name}' not found`);
      const view = readClusterView(root.connection_parameters);
      const { ready, line, error } = databaseReadiness(view, dbname, answer.instance_guid);
      if (error !== undefined)
        throw new HoxError('HOX_CONFLICT', `cluster '${name}' could not set up ${what}: ${error}`);
      return ready ? { done: true } : { progress: line };
    },
  });
  const shown = maskSecrets(published, options.reveal);
  if (ctx.json)
    return ctx.print(
      JSON.stringify({
        cluster: name,
        database: dbname,
        title,
        instance_guid: answer.instance_guid,
        connection_parameters: shown,
      }),
    );
  const change = options.rotatePassword ? 'password rotated' : existing === undefined ? 'created' : 'ready';
  ctx.print(`${title}: ${change}`);
  for (const [k, v] of Object.entries(shown)) ctx.print(`  ${k} = ${formatValue(v)}`);
  if (!options.reveal) ctx.print('  (secrets masked: --reveal shows them)');
}

/** Requests the destruction of the shared instance `title` (a database request that was refused). */
async function withdraw(ctx: DbContext, title: string): Promise<void> {
  await ctx.client.call('requestInstance', {
    title,
    software_release_uri: HYPER_DB_RELEASE,
    software_type: CLUSTER_TYPE,
    shared: true,
    state: 'destroyed',
  });
}
