/**
 * `hox app` actions. An app is an instance tree (release hyper_edge, type
 * app) whose root's parameters hold the current release (source artifact,
 * config vars) and the previous ones. Every change — deploy, config,
 * rollback — is a new release number; the CLI requests the root again and
 * follows the replicas until they serve it, or one reports why it failed
 * (the replicas then keep serving the previous release, and the root's
 * parameters are put back to it).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionContext } from '../action-context.js';
import type { MasterClient } from '../../client/master-client.js';
import { HoxError } from '../../shared/errors.js';
// The manifest reader (smol-toml) and the source packer are deploy's alone: imported by deployApp, so that read
// commands (`hox app status`, `list`, `ps`) start without them.
import type { AppManifest } from '../../releases/hyper_edge/manifest/app-manifest.js';
import { findTreeRoot, followTree, rootOf, treeProblems } from '../db/cluster-client.js';
import { describeAppHealth } from '../../releases/hyper_edge/app-health.js';
import { knownAppFailure } from './known-failures.js';
import {
  APP_TYPE,
  HISTORY_LENGTH,
  HYPER_EDGE_RELEASE,
  expectedReplicas,
  nextRelease,
  requestApp,
  type AppParameters,
  type AppRelease,
  type FailedRelease,
  loadApp,
  requireApp,
  type App,
} from './app-parameters.js';
import { deployOutcome, formatAppView, maskValue, readAppView, viewHealth, type AppView } from './app-view.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const RESERVED_ENV = /^(PORT|HOST|DATABASE_URL|PG[A-Z]+|HOX_.*)$/;

/** What `hox app` actions get (src/cli/action-context.ts). */
export type AppContext = ActionContext;

export { APP_TYPE, HYPER_EDGE_RELEASE, type AppRelease, type FailedRelease } from './app-parameters.js';

const MAX_FAILURE_REASON = 4000;

function manifestParameters(m: AppManifest): AppParameters['manifest'] {
  const pg = m.addons.find((a) => a.kind === 'postgres');
  return {
    web_scale: m.scale.web,
    secrets: m.secrets,
    ...(pg === undefined ? {} : { postgres: { name: pg.name } }),
    ...(m.cdn === null ? {} : { cdn: { domains: m.cdn.domains } }),
  };
}

async function resolveCluster(
  client: MasterClient,
  manifest: AppManifest,
  option: string | undefined,
  previous: AppParameters['db_cluster'],
): Promise<AppParameters['db_cluster']> {
  const pg = manifest.addons.find((a) => a.kind === 'postgres');
  if (pg === undefined) return undefined;
  const title = option ?? pg.cluster ?? previous?.title ?? 'db';
  const root = await findTreeRoot(client, title);
  if (root === undefined || root.state === 'destroyed')
    throw new HoxError(
      'HOX_INSTANCE_TREE_NOT_FOUND',
      `the postgres addon '${pg.name}' needs the hyper_db cluster '${title}', which does not exist: create it with hox db create ${title} --wait, or pick another with --db-cluster`,
    );
  if (root.software_release_uri !== 'hyper_db' || root.software_type !== 'cluster')
    throw new HoxError('HOX_CONFLICT', `'${title}' is not a hyper_db cluster (release '${root.software_release_uri}')`);
  return { title, instance_guid: root.instance_guid };
}

type ReleaseResult = { ok: true; view: AppView } | { ok: false; view: AppView; replica: string; reason: string };

/**
 * Follows the replicas until they all serve release `id`, or one reports that it failed, or the root publishes,
 * for the request made at `notBeforeMs` (master time), a failure waiting will not fix.
 */
async function followRelease(
  ctx: AppContext,
  name: string,
  id: number,
  replicas: number,
  timeoutMs: number,
  notBeforeMs = 0,
): Promise<ReleaseResult> {
  return followTree<ReleaseResult>(ctx.client, name, {
    timeoutMs,
    waitingFor: `app '${name}' to serve v${id}`,
    progress: ctx.progress,
    check: (tree) => {
      const root = tree === undefined ? undefined : rootOf(tree);
      if (tree === undefined || root === undefined)
        throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `app '${name}' is gone`);
      const view = readAppView(root.connection_parameters);
      const outcome = deployOutcome(view, id, replicas);
      if (outcome.kind === 'serving') return { done: { ok: true, view } };
      if (outcome.kind === 'failed')
        return { done: { ok: false, view, replica: outcome.replica, reason: outcome.reason } };
      const known = knownAppFailure(tree, view, replicas, notBeforeMs);
      if (known !== undefined) return { done: { ok: false, view, replica: known.where, reason: known.reason } };
      const problems = treeProblems(tree);
      // The root refusing its parameters will not change by waiting.
      const refused = problems.find((p) => p.startsWith(`${name}: parameters`));
      if (refused !== undefined) throw new HoxError('HOX_BAD_REQUEST', `app '${name}' refused v${id}: ${refused}`);
      return { progress: problems.length === 0 ? outcome.line : `${outcome.line} — ${problems.join('; ')}` };
    },
  });
}

/** Requests a new release and waits for it; on failure puts the previous release back and throws. */
async function rollOut(
  ctx: AppContext,
  app: { name: string; previous: AppParameters | undefined },
  next: AppParameters,
  options: { wait: boolean; timeoutMs: number; verb: string },
): Promise<void> {
  const release = next.release!;
  const requested = await requestApp(ctx.client, app.name, next);
  ctx.progress(`${app.name}: v${release.id} requested (${release.description})`);
  if (!options.wait) {
    if (ctx.json) ctx.print(JSON.stringify({ app: app.name, release: release.id, state: 'requested' }));
    else ctx.print(`${app.name}: v${release.id} requested; follow it with hox app status ${app.name}`);
    return;
  }
  const replicas = next.scale ?? next.manifest?.web_scale ?? 1;
  const result = await followRelease(
    ctx,
    app.name,
    release.id,
    replicas,
    options.timeoutMs,
    requested.processing_timestamp / 1000,
  );
  if (result.ok) {
    if (ctx.json)
      return ctx.print(JSON.stringify({ app: app.name, release: release.id, state: 'serving', url: result.view.url }));
    return ctx.print(`${app.name}: v${release.id} ${options.verb} and serving at ${result.view.url ?? '(no url yet)'}`);
  }
  const failure: FailedRelease = {
    id: release.id,
    description: release.description,
    created_at: release.created_at,
    failed_at: new Date().toISOString(),
    replica: result.replica,
    reason: result.reason.slice(0, MAX_FAILURE_REASON),
  };
  const said = `${app.name}: v${release.id} failed on ${result.replica}: ${result.reason}`;
  const previous = app.previous?.release;
  if (app.previous === undefined || previous === undefined) {
    // Nothing to roll back to: the failed release stays the current one, listed as failed.
    await requestApp(ctx.client, app.name, { ...next, failed_releases: failedList(next, failure) });
    throw new HoxError('HOX_CONFLICT', `${said} — nothing serves (there is no earlier release to roll back to)`);
  }
  await requestApp(ctx.client, app.name, {
    ...app.previous,
    last_release_id: release.id,
    failed_releases: failedList(app.previous, failure),
  });
  // Say what is true once the replicas are back on the previous release, not what is hoped.
  ctx.progress(`${app.name}: v${release.id} failed; rolling back to v${previous.id}`);
  const back = await followRelease(ctx, app.name, previous.id, expectedReplicas(app.previous), ROLLBACK_WAIT_MS).catch(
    (error: unknown) => error as Error,
  );
  if (back instanceof Error)
    throw new HoxError(
      'HOX_CONFLICT',
      `${said} — rolled back to v${previous.id}, which does not serve yet: ${back.message.replace(/^timed out after \d+ s waiting for /, '')}`,
    );
  if (!back.ok)
    throw new HoxError(
      'HOX_CONFLICT',
      `${said} — rolled back to v${previous.id}, which failed too (${back.replica}: ${back.reason}): nothing serves`,
    );
  throw new HoxError('HOX_CONFLICT', `${said} — rolled back: v${previous.id} keeps serving`);
}

/** How long a failed release's CLI waits for the replicas to serve the previous one again before saying so. */
const ROLLBACK_WAIT_MS = 120_000;

function failedList(parameters: AppParameters, failure: FailedRelease): FailedRelease[] {
  return [failure, ...(parameters.failed_releases ?? []).filter((f) => f.id !== failure.id)].slice(0, HISTORY_LENGTH);
}

/** Throws HOX_BAD_REQUEST unless every name can be a config var. */
export function checkConfigNames(names: string[], field: string): void {
  for (const key of names) {
    if (!ENV_NAME.test(key))
      throw new HoxError('HOX_BAD_REQUEST', `'${key}' is not a valid environment variable name`, { field });
    if (RESERVED_ENV.test(key))
      throw new HoxError('HOX_BAD_REQUEST', `'${key}' is set by the platform and cannot be configured`, { field });
  }
}

/** The config vars a new app starts with. */
function initialConfig(app: App | undefined): Record<string, string> {
  return app?.parameters.release?.env ?? app?.parameters.env ?? {};
}

/**
 * Throws before anything is uploaded when a node app's web command is `npm start` (named, or the default) and
 * it can only fail: package.json has no "start" script and there is no server.js (what `npm start` runs
 * without one).
 */
async function checkStartable(dir: string, source: string, manifest: AppManifest): Promise<void> {
  const { NODE_DEFAULT_WEB } = await import('../../releases/hyper_edge/manifest/app-manifest.js');
  if (manifest.runtime !== 'node' || manifest.web !== NODE_DEFAULT_WEB || existsSync(join(dir, 'server.js'))) return;
  let scripts: unknown;
  try {
    scripts = (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { scripts?: unknown }).scripts;
  } catch {
    return; // npm says what is wrong with it, in the build
  }
  if (typeof scripts === 'object' && scripts !== null && 'start' in scripts) return;
  throw new HoxError(
    'HOX_BAD_REQUEST',
    `${source}: nothing to start: the web command is \`${NODE_DEFAULT_WEB}\` (the default without a Procfile web ` +
      'line), but package.json has no "start" script and there is no server.js: add a "start" script, or a ' +
      "Procfile line that starts the server on $HOST:$PORT, e.g. 'web: node index.js'",
    { field: 'source' },
  );
}

export interface DeployOptions {
  ref?: string;
  /** Config vars set by this deploy (`--env K=V`), over the app's current ones. */
  env?: Record<string, string>;
  dbCluster?: string;
  scale?: number;
  wait: boolean;
  timeoutMs: number;
}

export async function deployApp(ctx: AppContext, name: string, source: string, options: DeployOptions): Promise<void> {
  const set = options.env ?? {};
  checkConfigNames(Object.keys(set), '--env');
  const existing = await loadApp(ctx.client, name);
  if (existing?.root.state === 'destroyed') throw new HoxError('HOX_CONFLICT', `app '${name}' is being destroyed`);
  ctx.progress(`reading ${source}`);
  const [{ packSource }, { AppManifestError, readAppManifest }] = await Promise.all([
    import('./app-source.js'),
    import('../../releases/hyper_edge/manifest/app-manifest.js'),
  ]);
  const packed = await packSource(source, options.ref);
  try {
    let manifest: AppManifest;
    try {
      manifest = await readAppManifest(packed.dir);
    } catch (error) {
      if (error instanceof AppManifestError)
        throw new HoxError(
          'HOX_BAD_REQUEST',
          `${source}: the app's manifest is not valid:\n  ${error.problems.join('\n  ')}`,
          {
            field: 'source',
            cause: error,
          },
        );
      throw error;
    }
    await checkStartable(packed.dir, source, manifest);
    ctx.progress(
      `${manifest.runtime} app (${manifest.sources.join(', ') || 'detected'}), ${Math.ceil(packed.archive.length / 1024)} KiB packed`,
    );
    const replicas = options.scale ?? existing?.parameters.scale ?? manifest.scale.web;
    if (manifest.storage.length > 0 && replicas > 1)
      ctx.progress(
        `warning: storage (${manifest.storage.join(', ')}) is per replica: each of the ${replicas} replicas ` +
          'keeps its own files, not shared with the others (docs/app-manifest.md#storage)',
      );
    const dbCluster = await resolveCluster(ctx.client, manifest, options.dbCluster, existing?.parameters.db_cluster);
    if (await ctx.client.hasArtifact(packed.sha256)) ctx.progress('source already on the master');
    else {
      ctx.progress('uploading the source');
      await ctx.client.putArtifact(packed.sha256, packed.archive);
    }
    const current = existing?.parameters;
    const setNames = Object.keys(set);
    const { release, history, last_release_id } = nextRelease(current, {
      artifact: packed.sha256,
      env: { ...initialConfig(existing), ...set },
      description: `deploy ${packed.description}${setNames.length === 0 ? '' : `, set ${setNames.join(', ')}`}`,
    });
    const scale = options.scale ?? current?.scale;
    const next: AppParameters = {
      release,
      manifest: manifestParameters(manifest),
      ...(scale === undefined ? {} : { scale }),
      ...(dbCluster === undefined ? {} : { db_cluster: dbCluster }),
      history,
      // The release list keeps showing earlier failures after a good deploy.
      ...(current?.failed_releases === undefined ? {} : { failed_releases: current.failed_releases }),
      last_release_id,
    };
    await rollOut(ctx, { name, previous: current }, next, { ...options, verb: 'deployed' });
  } finally {
    await packed.cleanup();
  }
}

/** A new release with the same code and another environment (config set/unset). */
export async function changeConfig(
  ctx: AppContext,
  name: string,
  change: { set?: Record<string, string>; unset?: string[] },
  options: { wait: boolean; timeoutMs: number },
): Promise<void> {
  checkConfigNames([...Object.keys(change.set ?? {}), ...(change.unset ?? [])], 'key');
  const app = await requireApp(ctx.client, name);
  const current = app.parameters.release;
  const env = { ...initialConfig(app), ...change.set };
  for (const key of change.unset ?? []) {
    if (!(key in env)) throw new HoxError('HOX_BAD_REQUEST', `'${key}' is not set on app '${name}'`, { field: 'key' });
    delete env[key];
  }
  const what = [
    ...Object.keys(change.set ?? {}).map((k) => `set ${k}`),
    ...(change.unset ?? []).map((k) => `unset ${k}`),
  ].join(', ');
  if (current === undefined) {
    // Nothing runs yet: the config waits for the first deploy, with no release of its own.
    await requestApp(ctx.client, name, { ...app.parameters, env });
    if (ctx.json) return ctx.print(JSON.stringify({ app: name, release: null, state: 'configured' }));
    return ctx.print(`${name}: ${what} (the first deploy takes it: hox app deploy ${name} DIR)`);
  }
  const { release, history, last_release_id } = nextRelease(app.parameters, {
    artifact: current.artifact,
    env,
    description: `config: ${what}`,
  });
  await rollOut(
    ctx,
    { name, previous: app.parameters },
    { ...app.parameters, release, history, last_release_id },
    {
      ...options,
      verb: 'configured',
    },
  );
}

/**
 * Config vars, then the secrets the platform generated (`[secrets] generate`), which the app's root publishes
 * to its owner: values masked unless `reveal`, and printed nowhere else (never to the progress stream).
 */
export async function listConfig(ctx: AppContext, name: string, reveal: boolean): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const env = initialConfig(app);
  const [tree] = (await ctx.client.call('listTreeStatus', { title: name })).result_list;
  const published = (tree === undefined ? undefined : rootOf(tree))?.connection_parameters.secrets;
  const generated: Record<string, string> = {};
  for (const [k, v] of Object.entries(typeof published === 'object' && published !== null ? published : {}))
    // A config var of the same name replaces the generated value: the app sees the config var.
    if (typeof v === 'string' && !(k in env)) generated[k] = v;
  const show = (vars: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(vars)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, reveal ? v : maskValue(v)]),
    );
  if (ctx.json)
    return ctx.print(JSON.stringify({ app: name, env: show(env), generated: show(generated), masked: !reveal }));
  if (Object.keys(env).length + Object.keys(generated).length === 0) return ctx.print(`${name}: no config vars`);
  for (const [k, v] of Object.entries(show(env))) ctx.print(`${k}=${v}`);
  for (const [k, v] of Object.entries(show(generated))) ctx.print(`${k}=${v}  (generated)`);
  if (app.parameters.release === undefined) ctx.progress('not deployed yet: the first deploy takes these');
  if (!reveal) ctx.progress('values are masked: add --reveal to show them');
}

/**
 * Creates an app with no release yet: its public endpoint (and so its URL, `APP_URL` in its environment) and
 * config vars exist before the first deploy.
 */
export async function createApp(
  ctx: AppContext,
  name: string,
  options: { env: Record<string, string>; wait: boolean; timeoutMs: number },
): Promise<void> {
  checkConfigNames(Object.keys(options.env), '--env');
  const existing = await loadApp(ctx.client, name);
  if (existing !== undefined)
    throw new HoxError(
      'HOX_TITLE_CONFLICT',
      `app '${name}' already exists: change its config with hox app config set ${name} KEY=VALUE`,
    );
  await requestApp(ctx.client, name, Object.keys(options.env).length === 0 ? {} : { env: options.env });
  if (!options.wait) return ctx.print(`${name}: created; deploy it with hox app deploy ${name} DIR`);
  const url = await followTree<string>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `app '${name}' to get its URL`,
    progress: ctx.progress,
    check: (tree) => {
      const root = tree === undefined ? undefined : rootOf(tree);
      if (tree === undefined || root === undefined)
        throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `app '${name}' is gone`);
      const view = readAppView(root.connection_parameters);
      if (view.url !== null) return { done: view.url };
      const problems = treeProblems(tree);
      return {
        progress: `${name}: allocating its endpoint${problems.length === 0 ? '' : ` — ${problems.join('; ')}`}`,
      };
    },
  });
  if (ctx.json) return ctx.print(JSON.stringify({ app: name, state: 'created', url }));
  ctx.print(`${name}: created, url ${url} (APP_URL in its environment); deploy it with hox app deploy ${name} DIR`);
}

/** Back to an earlier release's code and config, as a new release. */
export async function rollbackApp(
  ctx: AppContext,
  name: string,
  to: number | undefined,
  options: { wait: boolean; timeoutMs: number },
): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const history = app.parameters.history ?? [];
  const target = to === undefined ? history[0] : history.find((r) => r.id === to);
  if (target === undefined)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      to === undefined
        ? `app '${name}' has no previous release to roll back to`
        : `app '${name}' has no release v${to} in its history (${history.map((r) => `v${r.id}`).join(', ') || 'empty'})`,
      { field: '--to' },
    );
  const {
    release,
    history: nextHistory,
    last_release_id,
  } = nextRelease(app.parameters, {
    artifact: target.artifact,
    env: target.env,
    description: `rollback to v${target.id}`,
  });
  await rollOut(
    ctx,
    { name, previous: app.parameters },
    { ...app.parameters, release, history: nextHistory, last_release_id },
    {
      ...options,
      verb: `rolled back to v${target.id}`,
    },
  );
}

export async function scaleApp(
  ctx: AppContext,
  name: string,
  replicas: number,
  options: { wait: boolean; timeoutMs: number; memoryMib?: number },
): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const next = {
    ...app.parameters,
    scale: replicas,
    ...(options.memoryMib === undefined ? {} : { memory_mib: options.memoryMib }),
  };
  const requested = await requestApp(ctx.client, name, next);
  const id = app.parameters.release?.id;
  if (!options.wait || id === undefined) return ctx.print(`${name}: scale ${replicas} requested`);
  const deadline = Date.now() + options.timeoutMs;
  const result = await followRelease(ctx, name, id, replicas, options.timeoutMs, requested.processing_timestamp / 1000);
  if (!result.ok) throw new HoxError('HOX_CONFLICT', `${name}: ${result.replica} failed: ${result.reason}`);
  // Scale-down: done once the replicas past the scale are gone (stopped, their partitions freed).
  const extra = (tree: { instance_list: { title: string }[] }) =>
    tree.instance_list
      .map((i) => i.title)
      .filter((t) => Number(/^replica-(\d+)$/.exec(t)?.[1] ?? 0) > replicas)
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const [before] = (await ctx.client.call('listTreeStatus', { title: name })).result_list;
  const removing = before === undefined ? [] : extra(before);
  if (removing.length > 0)
    await followTree<true>(ctx.client, name, {
      timeoutMs: Math.max(1000, deadline - Date.now()),
      waitingFor: `${removing.join(', ')} of app '${name}' to stop and free their partitions`,
      progress: ctx.progress,
      check: (tree) => {
        const left = tree === undefined ? [] : extra(tree);
        return left.length === 0 ? { done: true } : { progress: `${name}: stopping ${left.join(', ')}` };
      },
    });
  if (ctx.json)
    return ctx.print(JSON.stringify({ app: name, replicas, release: id, url: result.view.url, removed: removing }));
  ctx.print(
    `${name}: ${replicas} replica(s) serving v${id}${removing.length === 0 ? '' : `; ${removing.join(', ')} stopped, partition(s) freed`}`,
  );
}

export async function showApp(ctx: AppContext, name: string): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const [tree] = (await ctx.client.call('listTreeStatus', { title: name })).result_list;
  const root = tree === undefined ? undefined : rootOf(tree);
  const view = readAppView(root?.connection_parameters ?? {});
  const health = viewHealth(view, expectedReplicas(app.parameters), tree);
  const releases = releaseList(app.parameters);
  if (ctx.json)
    return ctx.print(
      JSON.stringify({
        app: name,
        health: health.health,
        health_message: health.message,
        tree_health: tree?.health ?? 'unknown',
        ...view,
        releases,
      }),
    );
  for (const line of formatAppView(name, view, health)) ctx.print(line);
  if (tree !== undefined) for (const p of treeProblems(tree)) ctx.print(`  error: ${p}`);
  if (releases.length > 0) {
    ctx.print('  releases:');
    for (const r of releases.slice(0, 8))
      ctx.print(
        `    v${r.id}  ${r.created_at}  ${r.description}${r.failed === undefined ? '' : `  FAILED on ${r.failed.replica}: ${r.failed.reason}`}`,
      );
  }
}

interface ListedRelease {
  id: number;
  artifact?: string;
  description: string;
  created_at: string;
  failed?: { replica: string; reason: string; at: string };
}

/** Every release the app remembers, newest first, failed ones with their failure (never their config). */
function releaseList(p: AppParameters): ListedRelease[] {
  const failures = new Map((p.failed_releases ?? []).map((f) => [f.id, f]));
  const failedOf = (f: FailedRelease) => ({ replica: f.replica, reason: f.reason, at: f.failed_at });
  const kept: ListedRelease[] = [p.release, ...(p.history ?? [])]
    .filter((r): r is AppRelease => r !== undefined)
    .map(({ env: _env, ...r }) => {
      const f = failures.get(r.id);
      return f === undefined ? r : { ...r, failed: failedOf(f) };
    });
  const ids = new Set(kept.map((r) => r.id));
  const failedOnly: ListedRelease[] = (p.failed_releases ?? [])
    .filter((f) => !ids.has(f.id))
    .map((f) => ({ id: f.id, description: f.description, created_at: f.created_at, failed: failedOf(f) }));
  return [...kept, ...failedOnly].sort((a, b) => b.id - a.id);
}

/** Waits until the app's replicas serve its current release (after a restart of the platform, say). */
export async function waitServing(ctx: AppContext, name: string, timeoutMs: number): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const id = app.parameters.release?.id;
  if (id === undefined) return;
  const result = await followRelease(ctx, name, id, expectedReplicas(app.parameters), timeoutMs);
  if (!result.ok) throw new HoxError('HOX_CONFLICT', `${name}: ${result.replica} failed: ${result.reason}`);
}

export async function listApps(ctx: AppContext): Promise<void> {
  const trees = (await ctx.client.call('listTreeStatus', {})).result_list;
  const apps = trees.filter((t) => {
    const root = rootOf(t);
    return root?.software_release_uri === HYPER_EDGE_RELEASE && root.software_type === APP_TYPE;
  });
  const rows = apps.map((t) => {
    const view = readAppView(rootOf(t)!.connection_parameters);
    const health = viewHealth(view, Math.max(1, view.replicas.length), t);
    return {
      app: t.title,
      release: view.release,
      health: health.health,
      health_message: health.message,
      url: view.url,
      replicas: view.replicas.length,
    };
  });
  if (ctx.json) return ctx.print(JSON.stringify(rows));
  if (rows.length === 0) return ctx.print('no apps (deploy one with hox app deploy NAME DIR)');
  for (const r of rows)
    ctx.print(
      `${r.app}  ${r.release === null ? '-' : `v${r.release}`}  ${describeAppHealth({ health: r.health, message: r.health_message })}  ${r.replicas} replica(s)  ${r.url ?? ''}`,
    );
}

export async function destroyApp(
  ctx: AppContext,
  name: string,
  options: {
    wait: boolean;
    timeoutMs: number;
    /** Asked once the app is found, told what goes with it; throws to keep the app. */
    confirm?: (consequence: string) => Promise<void>;
  },
): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const addon = app.parameters.manifest?.postgres;
  const replicas = app.parameters.scale ?? app.parameters.manifest?.web_scale ?? 1;
  await options.confirm?.(
    `${replicas} replica(s)${addon === undefined ? '' : `; its postgres addon's database '${addon.name}' on cluster '${app.parameters.db_cluster?.title ?? '?'}' is dropped`}`,
  );
  await requestApp(ctx.client, name, app.parameters, 'destroyed');
  if (!options.wait) return ctx.print(`${name}: destruction requested`);
  await followTree<true>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `app '${name}' to be destroyed`,
    progress: ctx.progress,
    check: (tree) => (tree === undefined ? { done: true } : { progress: `${name}: being destroyed (${tree.health})` }),
  });
  if (ctx.json) return ctx.print(JSON.stringify({ app: name, state: 'destroyed' }));
  ctx.print(`${name}: destroyed (its database addon, if any, was dropped with it)`);
}
