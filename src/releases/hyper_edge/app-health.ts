/**
 * An app's health (pure): is its public endpoint sending traffic to healthy replicas of its current
 * release? Used by the root's profile (its `serving` promise, so `hox list` and the tree's health see it)
 * and by the CLI (`hox app status` / `hox app list`, which also know what the endpoint routes).
 *
 * - `ok`: every replica the app should have serves the current release, is healthy and (when known)
 *   routed to; the addon, if any, is ready.
 * - `deploying`: on the way there, nothing wrong reported (a deploy, a scale-up, a replica joining).
 * - `degraded`: something serves, but something is wrong (a replica failed, its web process is down, an
 *   instance error, the addon is broken).
 * - `down`: no replica serves anything and something is wrong: the URL answers 503.
 * - `idle`: nothing deployed.
 */

export type AppHealth = 'ok' | 'deploying' | 'degraded' | 'down' | 'idle';

export interface ReplicaHealthInput {
  name: string;
  upstream: string | null;
  state: string;
  serving: number | null;
  deploying: { release: number; step: string } | null;
  failed: { release: number; reason: string } | null;
  /** The replica instance's error (allocation refused, its node reporting one). */
  error: string | null;
  web_down: { reason: string; restarts: number } | null;
}

export interface AppHealthInput {
  release: number | null;
  /** How many replicas the app should have. */
  expected: number;
  replicas: readonly ReplicaHealthInput[];
  /** `problem`: what its host or the master said is wrong (null: not ready yet, nothing wrong said). */
  addon: { name: string; ready: boolean; problem: string | null } | null;
  /** The upstreams the public endpoint routes to, or null when unknown (the profile does not know). */
  routed: readonly string[] | null;
}

export interface AppHealthVerdict {
  health: AppHealth;
  /** What is wrong or in progress, for a person (null when ok). */
  message: string | null;
}

/** The first words of a verdict, as `hox app status` and `hox app list` show it: `degraded: replica-2 …`. */
export function describeAppHealth(verdict: AppHealthVerdict): string {
  return verdict.message === null ? verdict.health : `${verdict.health}: ${verdict.message}`;
}

export function appHealth(input: AppHealthInput): AppHealthVerdict {
  const id = input.release;
  if (id === null) return { health: 'idle', message: 'nothing deployed' };
  const broken: string[] = [];
  const progress: string[] = [];
  let current = 0;
  let serving = 0;
  for (let i = 1; i <= input.expected; i++) {
    const name = `replica-${i}`;
    const r = input.replicas.find((x) => x.name === name);
    if (r === undefined) {
      progress.push(`${name} not allocated yet`);
      continue;
    }
    const routed = input.routed === null || (r.upstream !== null && input.routed.includes(r.upstream));
    const up = r.serving !== null && r.web_down === null && r.error === null;
    if (up && routed) serving += 1;
    if (r.error !== null) broken.push(`${name} error: ${r.error}`);
    if (r.web_down !== null)
      broken.push(`${name}: ${r.web_down.reason} (restarting, ${r.web_down.restarts} restart(s) so far)`);
    if (r.failed !== null && r.failed.release === id && r.serving !== id)
      broken.push(
        `${name}: v${id} failed: ${r.failed.reason}${r.serving === null ? '' : ` (it still serves v${r.serving})`}`,
      );
    if (r.serving === id && up && routed) {
      current += 1;
      continue;
    }
    if (r.error !== null || r.web_down !== null || (r.failed !== null && r.failed.release === id)) continue;
    if (r.deploying?.release === id) progress.push(`${name} deploying v${id} (${r.deploying.step})`);
    else if (r.serving === id) progress.push(`${name} serves v${id}, joining the public endpoint`);
    else if (r.serving !== null) progress.push(`${name} serves v${r.serving}, not yet v${id}`);
    else progress.push(`${name} ${r.state}`);
  }
  if (input.addon !== null && !input.addon.ready) {
    if (input.addon.problem === null) progress.push(`postgres addon '${input.addon.name}' not ready yet`);
    else broken.push(`postgres addon '${input.addon.name}': ${input.addon.problem}`);
  }
  if (broken.length === 0 && progress.length === 0 && current === input.expected)
    return { health: 'ok', message: null };
  const detail = [...broken, ...progress].join('; ');
  if (serving === 0)
    return broken.length === 0
      ? { health: 'deploying', message: `no replica serves yet (${detail})` }
      : { health: 'down', message: `no replica serves (${detail})` };
  return { health: broken.length === 0 ? 'deploying' : 'degraded', message: detail };
}
