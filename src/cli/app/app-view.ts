/** What an app's root publishes (src/releases/hyper_edge/release.ts), read defensively, and how to show it. */
import {
  appHealth,
  describeAppHealth,
  type AppHealth,
  type AppHealthVerdict,
} from '../../releases/hyper_edge/app-health.js';

export interface ReplicaView {
  name: string;
  /** The replica's local proxy (what the public endpoint routes to). */
  upstream: string | null;
  state: string;
  serving: number | null;
  deploying: { release: number; step: string } | null;
  failed: { release: number; reason: string; at: string } | null;
  error: string | null;
  /** Its web process exited on its own and is being restarted. */
  web_down: { reason: string; since: string; restarts: number } | null;
}

export interface AppView {
  url: string | null;
  release: number | null;
  replicas: ReplicaView[];
  addon: { kind: string; name: string; ready: boolean; problem: string | null } | null;
  problems: string[];
  /** What the public endpoint routes to (its Caddy loaded it), or null when not published. */
  routed: string[] | null;
  /** The app's site on the CDN (`[cdn]` in hox.toml), or null. */
  cdn: { domains: string[]; state: string; live_edges: number; edge_count: number; error: string | null } | null;
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function readAppView(published: Record<string, unknown>): AppView {
  const replicas = Array.isArray(published.replicas) ? published.replicas.map(obj) : [];
  const addon = obj(published.addon);
  return {
    url: str(published.url),
    release: num(published.release),
    replicas: replicas.map((r) => {
      const d = obj(r.deploying);
      const f = obj(r.failed);
      const w = obj(r.web_down);
      return {
        name: str(r.name) ?? '?',
        upstream: str(r.upstream),
        state: str(r.state) ?? 'pending',
        serving: num(r.serving),
        deploying: num(d.release) === null ? null : { release: num(d.release)!, step: str(d.step) ?? '' },
        failed:
          num(f.release) === null
            ? null
            : { release: num(f.release)!, reason: str(f.reason) ?? 'unknown', at: str(f.at) ?? '' },
        error: str(r.error),
        web_down:
          str(w.reason) === null
            ? null
            : { reason: str(w.reason)!, since: str(w.since) ?? '', restarts: num(w.restarts) ?? 0 },
      };
    }),
    addon:
      str(addon.name) === null
        ? null
        : {
            kind: str(addon.kind) ?? 'postgres',
            name: str(addon.name)!,
            ready: addon.ready === true,
            problem: str(addon.problem),
          },
    problems: Array.isArray(published.problems)
      ? published.problems.filter((p): p is string => typeof p === 'string')
      : [],
    routed: Array.isArray(published.routed) ? published.routed.filter((u): u is string => typeof u === 'string') : null,
    cdn: readCdn(published.cdn),
  };
}

function readCdn(value: unknown): AppView['cdn'] {
  if (typeof value !== 'object' || value === null) return null;
  const c = obj(value);
  return {
    domains: Array.isArray(c.domains) ? c.domains.filter((d): d is string => typeof d === 'string') : [],
    state: str(c.state) ?? 'pending',
    live_edges: num(c.live_edges) ?? 0,
    edge_count: num(c.edge_count) ?? 0,
    error: str(c.error),
  };
}

/** Where a deploy of release `id` stands on the replicas. */
export type DeployOutcome =
  { kind: 'serving' } | { kind: 'failed'; replica: string; reason: string } | { kind: 'waiting'; line: string };

export function deployOutcome(view: AppView, id: number, replicas: number): DeployOutcome {
  if (view.release !== id) return { kind: 'waiting', line: 'waiting for the app to take the new release' };
  const failed = view.replicas.find((r) => r.failed?.release === id);
  if (failed !== undefined) return { kind: 'failed', replica: failed.name, reason: failed.failed!.reason };
  const listed = view.replicas.slice(0, replicas);
  const routed = (r: ReplicaView) => view.routed === null || (r.upstream !== null && view.routed.includes(r.upstream));
  if (listed.length === replicas && listed.every((r) => r.serving === id && routed(r))) return { kind: 'serving' };
  const parts = listed.map((r) => {
    if (r.serving === id) return routed(r) ? `${r.name} serving` : `${r.name} serving, joining the public endpoint`;
    if (r.deploying?.release === id) return `${r.name} ${r.deploying.step}`;
    if (r.serving !== null) return `${r.name} serving v${r.serving}`;
    if (r.error !== null) return `${r.name} ${r.error}`;
    return `${r.name} ${r.state}`;
  });
  const missing = replicas - listed.length;
  if (missing > 0) parts.push(`${missing} replica(s) being allocated`);
  const problems = view.problems.length === 0 ? '' : ` — ${view.problems.join('; ')}`;
  return { kind: 'waiting', line: `v${id}: ${parts.join(', ') || 'starting'}${problems}` };
}

/** What a tree's health (src/master/tree-health.ts) says, as `hox app` needs it. */
export interface TreeHealthView {
  health: string;
  health_message: string | null;
}

/**
 * The app's health as its users see it: the replicas' truth (app-health.ts, with what the public endpoint
 * routes), and what the master knows beyond it (an instance's error, a silent node) when that is worse.
 */
export function viewHealth(view: AppView, expected: number, tree: TreeHealthView | undefined): AppHealthVerdict {
  const verdict = appHealth({
    release: view.release,
    expected,
    replicas: view.replicas,
    addon: view.addon,
    routed: view.routed,
  });
  if (tree === undefined) return { health: 'down', message: 'the app has no instance tree' };
  if (tree.health === 'destroying') return { health: 'down', message: 'being destroyed' };
  // The root's own `serving` promise (when it is the error shown) repeats what the replicas say: not news.
  const mirror = /^[^:]+: promise serving: /.test(tree.health_message ?? '');
  if (tree.health === 'ok' || tree.health === 'pending' || mirror) return verdict;
  const health: AppHealth = verdict.health === 'down' ? 'down' : verdict.health === 'idle' ? 'idle' : 'degraded';
  const beyond = `${tree.health}: ${tree.health_message ?? 'no detail'}`;
  return { health, message: verdict.message === null ? beyond : `${verdict.message}; ${beyond}` };
}

export function formatAppView(name: string, view: AppView, health: AppHealthVerdict): string[] {
  const lines = [
    `${name}: ${view.release === null ? 'nothing deployed' : `release v${view.release}`} (${describeAppHealth(health)})`,
    `  url: ${view.url ?? '(not published yet)'}`,
  ];
  if (view.addon !== null)
    lines.push(
      `  addon: ${view.addon.kind} '${view.addon.name}' ${view.addon.ready ? 'ready' : `not ready${view.addon.problem === null ? '' : `: ${view.addon.problem}`}`}`,
    );
  if (view.cdn !== null)
    lines.push(
      `  cdn: ${view.cdn.domains.join(', ')} ${view.cdn.state}${view.cdn.edge_count === 0 ? '' : ` on ${view.cdn.live_edges}/${view.cdn.edge_count} edges`}${view.cdn.error === null ? '' : `: ${view.cdn.error}`}`,
    );
  for (const r of view.replicas) {
    let line = `  ${r.name}: ${r.state}${r.serving === null ? '' : `, serving v${r.serving}`}`;
    if (r.deploying !== null) line += `, deploying v${r.deploying.release} (${r.deploying.step})`;
    if (r.failed !== null) line += `, v${r.failed.release} failed: ${r.failed.reason}`;
    if (r.web_down !== null) line += `, ${r.web_down.reason} (restarting, ${r.web_down.restarts} restart(s))`;
    if (r.error !== null) line += `, error: ${r.error}`;
    lines.push(line);
  }
  for (const p of view.problems) lines.push(`  problem: ${p}`);
  return lines;
}

/** Config values are secrets until shown with --reveal. */
export function maskValue(value: string): string {
  return value === '' ? '(empty)' : '********';
}
