/**
 * `hox cdn`: the actions. A CDN is an instance tree of hyper_cdn (root `cdn`, its edges); a site is a shared
 * instance of it, the caller's own tree. Purges and statistics go straight to every edge's control API (HTTPS,
 * the sites CA, the site's purge token), in parallel: a purge returns once every edge confirmed it.
 */
import { readFile } from 'node:fs/promises';
import { exchange } from '../../client/http-transport.js';
import { isNotReady } from '../../client/master-client.js';
import {
  histogramPercentile,
  TTFB_BUCKETS_MS,
  type PurgeAnswer,
  type PurgeKind,
  type SiteStats,
} from '../../releases/hyper_cdn/protocol.js';
import { HoxError } from '../../shared/errors.js';
import type { ActionContext } from '../action-context.js';
import { findTreeRoot, followTree, treeProblems, type Tree, type TreeInstance } from '../db/cluster-client.js';
import { CommandExit } from '../exit-codes.js';

const RELEASE = 'hyper_cdn';
const CDN_TYPE = 'cdn';
const CONTROL_TIMEOUT_MS = 10_000;

interface SiteView {
  state: string | null;
  error: string | null;
  site_id: string | null;
  domains: string[];
  origin: string | null;
  live_edges: number;
  edge_count: number;
  edges: { name: string; url: string; control_url: string }[];
  /** `sites-ca` (the platform's, `ca_cert`) or `acme` (the CDN's ACME CA, trusted as browsers trust it). */
  certificates: string | null;
  ca_cert: string | null;
  purge_token: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function siteView(root: TreeInstance | undefined): SiteView {
  const c = root?.connection_parameters ?? {};
  const edges = Array.isArray(c.edges) ? (c.edges as Record<string, unknown>[]) : [];
  return {
    state: str(c.state),
    error: str(c.error),
    site_id: str(c.site_id),
    domains: Array.isArray(c.domains) ? c.domains.filter((d): d is string => typeof d === 'string') : [],
    origin: str(c.origin),
    live_edges: typeof c.live_edges === 'number' ? c.live_edges : 0,
    edge_count: typeof c.edge_count === 'number' ? c.edge_count : 0,
    edges: edges.flatMap((e) =>
      typeof e.name === 'string' && typeof e.url === 'string' && typeof e.control_url === 'string'
        ? [{ name: e.name, url: e.url, control_url: e.control_url }]
        : [],
    ),
    certificates: str(c.certificates),
    ca_cert: str(c.ca_cert),
    purge_token: str(c.purge_token),
  };
}

/** What is printed of a site: not its purge token (a secret) nor its CA (hox cdn ca prints it). */
function shown(v: SiteView): Omit<SiteView, 'purge_token' | 'ca_cert'> {
  const copy: Partial<SiteView> = { ...v };
  delete copy.purge_token;
  delete copy.ca_cert;
  return copy as Omit<SiteView, 'purge_token' | 'ca_cert'>;
}

const rootOf = (tree: Tree | undefined): TreeInstance | undefined =>
  tree?.instance_list.find((i) => i.requester_guid === null);

const isSiteInstance = (i: TreeInstance): boolean => i.shared && i.software_release_uri === RELEASE;

/**
 * The caller's sites: trees whose root is a site (`hox cdn site add`), and sites an instance requested in its
 * tree (an app's `cdn-<app>`, from `[cdn]` in its hox.toml), named by their title.
 */
function sitesOf(trees: Tree[]): { tree: Tree; instance: TreeInstance }[] {
  return trees.flatMap((tree) =>
    tree.instance_list
      .filter((i) => isSiteInstance(i) && i.state !== 'destroyed')
      .map((instance) => ({ tree, instance })),
  );
}

async function readSite(
  ctx: ActionContext,
  name: string,
): Promise<{ tree: Tree; instance: TreeInstance; view: SiteView }> {
  const found = sitesOf((await ctx.client.call('listTreeStatus', {})).result_list).find(
    (s) => s.instance.title === name,
  );
  if (found === undefined)
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `no CDN site '${name}' (hox cdn site list shows yours)`);
  return { ...found, view: siteView(found.instance) };
}

/** The origin of an app: its public endpoint. */
async function appOrigin(ctx: ActionContext, app: string): Promise<string> {
  const root = await findTreeRoot(ctx.client, app);
  if (root === undefined || root.software_release_uri !== 'hyper_edge')
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `no app '${app}' (hox app list shows yours)`, { field: '--app' });
  const url = str(root.connection_parameters.url);
  if (url === null) throw new HoxError('HOX_CONFLICT', `app '${app}' has no public URL yet (hox app status ${app})`);
  return url.replace(/\/$/, '');
}

export async function createCdn(
  ctx: ActionContext,
  name: string,
  options: {
    edges?: number;
    cacheMiB?: number;
    acme?: { directory: string; email?: string; caFile?: string };
    wait: boolean;
    timeoutMs: number;
  },
): Promise<void> {
  const acme = options.acme;
  if (acme !== undefined && !acme.directory.startsWith('https://'))
    throw new HoxError('HOX_BAD_REQUEST', `--acme-directory: '${acme.directory}' is not an https:// URL`, {
      field: '--acme-directory',
    });
  let caPem: string | undefined;
  if (acme?.caFile !== undefined) {
    try {
      caPem = await readFile(acme.caFile, 'utf8');
    } catch (error) {
      throw new HoxError('HOX_BAD_REQUEST', `--acme-ca-file: ${(error as Error).message}`, { field: '--acme-ca-file' });
    }
    if (!caPem.includes('-----BEGIN CERTIFICATE-----'))
      throw new HoxError('HOX_BAD_REQUEST', `--acme-ca-file: ${acme.caFile} holds no PEM certificate`, {
        field: '--acme-ca-file',
      });
  }
  const parameters = {
    ...(options.edges === undefined ? {} : { edges: options.edges }),
    ...(options.cacheMiB === undefined ? {} : { cache_mib: options.cacheMiB }),
    ...(acme === undefined
      ? {}
      : {
          acme: {
            directory: acme.directory,
            ...(acme.email === undefined ? {} : { email: acme.email }),
            ...(caPem === undefined ? {} : { ca_pem: caPem }),
          },
        }),
  };
  await ctx.client.call('requestInstance', {
    title: name,
    software_release_uri: RELEASE,
    software_type: CDN_TYPE,
    parameters,
  });
  if (!options.wait) {
    if (ctx.json) ctx.print(JSON.stringify({ cdn: name, state: 'requested' }));
    else ctx.print(`${name}: requested (hox show ${name} follows it)`);
    return;
  }
  const edges = await followTree<{ name: string; url: string | null }[]>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `CDN '${name}' to have its edges`,
    progress: ctx.progress,
    check: (tree) => {
      const root = rootOf(tree);
      const c = root?.connection_parameters ?? {};
      const list = Array.isArray(c.edges) ? (c.edges as { name: string; url: string | null }[]) : [];
      const count = typeof c.edge_count === 'number' ? c.edge_count : (options.edges ?? 3);
      const up = list.filter((e) => typeof e.url === 'string');
      if (count > 0 && up.length === count) return { done: up };
      const problems = tree === undefined ? [] : treeProblems(tree);
      return { progress: `${up.length}/${count} edges up${problems.length > 0 ? ` (${problems.join('; ')})` : ''}` };
    },
  });
  if (ctx.json) ctx.print(JSON.stringify({ cdn: name, edges }));
  else {
    ctx.print(`${name}: ${edges.length} edge(s) up`);
    for (const e of edges) ctx.print(`  ${e.name}  ${e.url ?? ''}`);
  }
}

export async function addSite(
  ctx: ActionContext,
  name: string,
  options: { origin?: string; app?: string; domains: string[]; cdn?: string; wait: boolean; timeoutMs: number },
): Promise<void> {
  if ((options.origin === undefined) === (options.app === undefined))
    throw new HoxError('HOX_BAD_REQUEST', 'give the origin: --origin URL or --app APP (one of them)', {
      field: '--origin',
    });
  if (options.domains.length === 0)
    throw new HoxError('HOX_BAD_REQUEST', 'give the host name(s) the site answers: --domain NAME', {
      field: '--domain',
    });
  const origin = options.origin ?? (await appOrigin(ctx, options.app!));
  let sla: Record<string, string> = {};
  if (options.cdn !== undefined) {
    const root = await findTreeRoot(ctx.client, options.cdn);
    if (root === undefined)
      throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `no CDN '${options.cdn}'`, { field: '--cdn' });
    sla = { instance_guid: root.instance_guid };
  }
  const answer = await ctx.client.call('requestInstance', {
    title: name,
    software_release_uri: RELEASE,
    software_type: CDN_TYPE,
    shared: true,
    parameters: { domains: options.domains.map((d) => d.toLowerCase()), origin },
    ...(Object.keys(sla).length === 0 ? {} : { sla_parameters: sla }),
  });
  if (!options.wait) {
    const state = isNotReady(answer) ? 'requested' : (str(answer.connection_parameters.state) ?? 'requested');
    if (ctx.json) ctx.print(JSON.stringify({ site: name, state }));
    else ctx.print(`${name}: ${state} (hox cdn status ${name})`);
    return;
  }
  const started = Date.now();
  const view = await followTree<SiteView>(ctx.client, name, {
    timeoutMs: options.timeoutMs,
    waitingFor: `site '${name}' to be live on every edge`,
    progress: ctx.progress,
    check: (tree) => {
      const v = siteView(rootOf(tree));
      if (v.state === 'refused') throw new HoxError('HOX_BAD_REQUEST', `site '${name}' refused: ${v.error ?? '?'}`);
      if (v.state === 'live') return { done: v };
      if (v.state === null) return { progress: 'waiting for the CDN to take the site' };
      return { progress: `live on ${v.live_edges}/${v.edge_count} edges` };
    },
  });
  printSite(ctx, name, view, Date.now() - started);
}

function printSite(ctx: ActionContext, name: string, v: SiteView, ms?: number): void {
  if (ctx.json) {
    ctx.print(JSON.stringify({ site: name, ...shown(v), ...(ms === undefined ? {} : { live_after_ms: ms }) }));
    return;
  }
  ctx.print(
    `${name}: ${v.state ?? 'pending'} on ${v.live_edges}/${v.edge_count} edges${ms === undefined ? '' : ` (${(ms / 1000).toFixed(1)} s)`}`,
  );
  if (v.error !== null) ctx.print(`  error:   ${v.error}`);
  ctx.print(`  domains: ${v.domains.join(', ')}`);
  ctx.print(`  origin:  ${v.origin ?? '-'}`);
  for (const e of v.edges) ctx.print(`  edge:    ${e.name}  ${e.url}`);
  const first = v.edges[0];
  const domain = v.domains[0];
  if (first !== undefined && domain !== undefined) {
    const { hostname, port } = new URL(first.url);
    if (v.certificates === 'acme') {
      ctx.print(
        `  try:     curl --connect-to ${domain}:443:${hostname}:${port} https://${domain}/   # an ACME CA's certificate`,
      );
    } else {
      ctx.print(`  try:     hox cdn ca ${name} > cdn-ca.pem`);
      ctx.print(
        `           curl --cacert cdn-ca.pem --connect-to ${domain}:443:${hostname}:${port} https://${domain}/`,
      );
    }
  }
}

export async function listSites(ctx: ActionContext): Promise<void> {
  const sites = sitesOf((await ctx.client.call('listTreeStatus', {})).result_list);
  const rows = sites.map(({ tree, instance }) => {
    const v = siteView(instance);
    return {
      site: instance.title,
      ...(instance.requester_guid === null ? {} : { requested_by: tree.title }),
      state: v.state,
      domains: v.domains,
      origin: v.origin,
      live_edges: v.live_edges,
      edge_count: v.edge_count,
      error: v.error,
    };
  });
  if (ctx.json) return ctx.print(JSON.stringify(rows));
  if (rows.length === 0) return ctx.print('no CDN sites (add one with hox cdn site add NAME --origin URL --domain D)');
  for (const r of rows)
    ctx.print(
      `${r.site}  ${r.state ?? 'pending'}  ${r.live_edges}/${r.edge_count} edges  ${r.domains.join(',')}  → ${r.origin ?? '-'}${r.error === null ? '' : `  (${r.error})`}`,
    );
}

export async function printCa(ctx: ActionContext, name: string): Promise<void> {
  const { view } = await readSite(ctx, name);
  if (view.ca_cert === null) throw new HoxError('HOX_CONFLICT', `site '${name}' has no certificate yet`);
  ctx.print(view.ca_cert.trimEnd());
}

/** One control API call to every edge, in parallel; each answer or error with its latency. */
async function everyEdge<T>(
  view: SiteView,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ edge: string; ms: number; answer?: T; error?: string }[]> {
  if (view.ca_cert === null || view.purge_token === null || view.site_id === null || view.edges.length === 0)
    throw new HoxError('HOX_CONFLICT', `the site is not served by any edge yet (state: ${view.state ?? 'pending'})`);
  const ca = view.ca_cert;
  const token = view.purge_token;
  return Promise.all(
    view.edges.map(async (edge) => {
      const started = performance.now();
      try {
        const answer = await exchange({
          method,
          url: `${edge.control_url}${path}`,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
          ca,
          // The edge's certificate comes from the sites CA (the only CA trusted here), for its address.
          server: 'site',
        });
        const ms = performance.now() - started;
        const parsed = JSON.parse(answer.body.toString('utf8')) as T & { error?: string };
        if (answer.status !== 200) return { edge: edge.name, ms, error: parsed.error ?? `HTTP ${answer.status}` };
        return { edge: edge.name, ms, answer: parsed };
      } catch (error) {
        return { edge: edge.name, ms: performance.now() - started, error: (error as Error).message };
      }
    }),
  );
}

export async function purgeSite(
  ctx: ActionContext,
  name: string,
  options: { urls: string[]; prefixes: string[]; tags: string[] },
): Promise<void> {
  const asked: [PurgeKind, string[]][] = (
    [
      ['url', options.urls],
      ['prefix', options.prefixes],
      ['tag', options.tags],
    ] as [PurgeKind, string[]][]
  ).filter(([, values]) => values.length > 0);
  if (asked.length === 0)
    throw new HoxError('HOX_BAD_REQUEST', 'say what to purge: --url PATH, --prefix PATH or --tag TAG', {
      field: '--url',
    });
  for (const [kind, values] of asked)
    for (const v of values)
      if (kind !== 'tag' && !v.startsWith('/'))
        throw new HoxError('HOX_BAD_REQUEST', `--${kind} '${v}' is not a path: give it from the first /`, {
          field: `--${kind}`,
        });
  const { view } = await readSite(ctx, name);
  const started = performance.now();
  const results = [];
  for (const [kind, values] of asked) {
    const answers = await everyEdge<PurgeAnswer>(view, 'POST', '/purge', { site: view.site_id, kind, values });
    results.push({
      kind,
      values,
      edges: answers.map((a) => ({ edge: a.edge, ms: Math.round(a.ms), error: a.error ?? null })),
    });
  }
  const totalMs = Math.round(performance.now() - started);
  const failed = results.flatMap((r) => r.edges.filter((e) => e.error !== null).map((e) => ({ ...e, kind: r.kind })));
  if (ctx.json) ctx.print(JSON.stringify({ site: name, ms: totalMs, purges: results }));
  else {
    for (const r of results) {
      const ok = r.edges.filter((e) => e.error === null);
      ctx.print(
        `${name}: purged ${r.kind} ${r.values.join(' ')} on ${ok.length}/${r.edges.length} edges (slowest ${Math.max(...r.edges.map((e) => e.ms))} ms)`,
      );
    }
  }
  if (failed.length > 0)
    throw new CommandExit(
      `${name}: not purged on ${failed.map((f) => `${f.edge} (${f.kind}: ${f.error})`).join(', ')}: run the purge again`,
      1,
    );
}

/** The site's figures over every edge, and each edge's. */
export async function siteStatus(ctx: ActionContext, name: string): Promise<void> {
  const { view } = await readSite(ctx, name);
  const answers =
    view.state === 'live' || view.live_edges > 0
      ? await everyEdge<SiteStats>(view, 'GET', `/stats?site=${view.site_id ?? ''}`)
      : [];
  const stats = answers.flatMap((a) => (a.answer === undefined ? [] : [a.answer]));
  const sum = (f: (s: SiteStats) => number) => stats.reduce((a, s) => a + f(s), 0);
  const buckets = TTFB_BUCKETS_MS.map((_, i) => sum((s) => s.ttfb_buckets[i] ?? 0));
  const requests = sum((s) => s.requests);
  const served = sum((s) => s.bytes_served);
  const fetched = sum((s) => s.bytes_from_origin);
  const totals = {
    requests,
    hits: sum((s) => s.hits),
    hit_ratio: requests === 0 ? null : sum((s) => s.hits) / requests,
    errors: sum((s) => s.errors),
    bytes_served: served,
    bytes_from_origin: fetched,
    // What the origin did not have to send: the CDN's saving in bytes moved (and their energy).
    origin_offload: served === 0 ? null : Math.max(0, 1 - fetched / served),
    ttfb_p50_ms: histogramPercentile(buckets, 50),
    ttfb_p99_ms: histogramPercentile(buckets, 99),
  };
  if (ctx.json) {
    ctx.print(
      JSON.stringify({
        site: name,
        ...shown(view),
        totals,
        edges: answers.map((a) => ({ edge: a.edge, error: a.error ?? null, stats: a.answer ?? null })),
      }),
    );
    return;
  }
  printSite(ctx, name, view);
  if (answers.length === 0) return;
  const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)} %`);
  const size = (b: number) =>
    b < 1024
      ? `${b} B`
      : b < 1048576
        ? `${(b / 1024).toFixed(1)} KiB`
        : b < 1073741824
          ? `${(b / 1048576).toFixed(1)} MiB`
          : `${(b / 1073741824).toFixed(2)} GiB`;
  const ms = (v: number | null) => (v === null ? '-' : `≤ ${v} ms`);
  ctx.print(
    `  traffic: ${requests} requests, hit ratio ${pct(totals.hit_ratio)}, ${size(served)} served, ${size(fetched)} from the origin (offload ${pct(totals.origin_offload)})`,
  );
  ctx.print(`  ttfb:    p50 ${ms(totals.ttfb_p50_ms)}, p99 ${ms(totals.ttfb_p99_ms)} (at the cache)`);
  for (const a of answers)
    ctx.print(
      a.answer === undefined
        ? `  ${a.edge}: not answering (${a.error ?? '?'})`
        : `  ${a.edge}: ${a.answer.requests} requests, ${a.answer.hits} hits, ${size(a.answer.bytes_served)} served`,
    );
}

export async function removeSite(
  ctx: ActionContext,
  name: string,
  options: { confirm?: (consequence: string) => Promise<void> },
): Promise<void> {
  const { tree, instance } = await readSite(ctx, name);
  if (instance.requester_guid !== null)
    throw new HoxError(
      'HOX_CONFLICT',
      `site '${name}' belongs to '${tree.title}', which requests it (an app's [cdn] in its hox.toml): remove it there, then deploy`,
    );
  await options.confirm?.('every edge stops serving it');
  await ctx.client.call('requestInstance', {
    title: name,
    software_release_uri: RELEASE,
    software_type: instance.software_type,
    shared: true,
    state: 'destroyed',
  });
  if (ctx.json) ctx.print(JSON.stringify({ site: name, state: 'destroyed' }));
  else ctx.print(`${name}: removed (its edges stop serving it)`);
}
