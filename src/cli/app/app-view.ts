/** What an app's root publishes (src/releases/hyper_edge/release.ts), read defensively, and how to show it. */

export interface ReplicaView {
  name: string;
  /** The replica's local proxy (what the public endpoint routes to). */
  upstream: string | null;
  state: string;
  serving: number | null;
  deploying: { release: number; step: string } | null;
  failed: { release: number; reason: string; at: string } | null;
  error: string | null;
}

export interface AppView {
  url: string | null;
  release: number | null;
  replicas: ReplicaView[];
  addon: { kind: string; name: string; ready: boolean } | null;
  problems: string[];
  /** What the public endpoint routes to (its Caddy loaded it), or null when not published. */
  routed: string[] | null;
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
      };
    }),
    addon:
      str(addon.name) === null
        ? null
        : { kind: str(addon.kind) ?? 'postgres', name: str(addon.name)!, ready: addon.ready === true },
    problems: Array.isArray(published.problems)
      ? published.problems.filter((p): p is string => typeof p === 'string')
      : [],
    routed: Array.isArray(published.routed) ? published.routed.filter((u): u is string => typeof u === 'string') : null,
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

export function formatAppView(name: string, view: AppView, health: string): string[] {
  const lines = [
    `${name}: ${view.release === null ? 'nothing deployed' : `release v${view.release}`} (${health})`,
    `  url: ${view.url ?? '(not published yet)'}`,
  ];
  if (view.addon !== null)
    lines.push(`  addon: ${view.addon.kind} '${view.addon.name}' ${view.addon.ready ? 'ready' : 'not ready'}`);
  for (const r of view.replicas) {
    let line = `  ${r.name}: ${r.state}${r.serving === null ? '' : `, serving v${r.serving}`}`;
    if (r.deploying !== null) line += `, deploying v${r.deploying.release} (${r.deploying.step})`;
    if (r.failed !== null) line += `, v${r.failed.release} failed: ${r.failed.reason}`;
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
