/**
 * A deterministic simulation of hyper_db's election protocol (issue 12, "Also"): N members
 * (election-sim-member.ts: the keeper's loop over a model of PostgreSQL, election-sim-postgres.ts,
 * deciding with election-rules.ts) in a world (election-sim-world.ts) with a virtual clock, a seeded
 * generator and a simulated network that loses, delays, reorders and partitions messages (both ways or
 * one way), with faults injected per scenario (this file): a frozen keeper, a hung PostgreSQL (SIGSTOP)
 * under a live keeper, a full disk, crashes and restarts of a member (term and vote survive) or of its
 * keeper alone, a PostgreSQL that crashes again and again. A client writes through every
 * member that runs as a primary, every `WRITE_INTERVAL_MS`; a commit is acknowledged once k = N −
 * majority standbys stream it (`ANY k`).
 *
 * Invariants, checked after every event:
 * - one-primary: at most one member believes it is the primary with a valid lease;
 * - one-writer: at most one member acknowledges writes, and never one its keeper fenced;
 * - durability: every acknowledged commit is on every later primary (checked at each promotion and
 *   each acknowledgement);
 * - liveness: while a majority of members are healthy and connected, some member acknowledges writes
 *   within `livenessBoundMs` of the last time one did (or of the moment that majority formed).
 *
 * One run is one seed: `runSimulation({ seed, scenario, rules })` gives the same events, the same
 * verdict and the same trace every time. `npx tsx bench/hyperdb/election-sim.ts --replay SEED
 * --scenario NAME [--rules before-issue-12]` replays one.
 */
import { ElectionSim, type SimOptions, type SimResult } from './election-sim-world.js';
import type { SimMember } from './election-sim-member.js';

export type { SafetyFix, SimRules, SimTiming } from './election-sim-member.js';
export { SAFETY_FIXES } from './election-sim-member.js';
export {
  DEFAULT_TIMING,
  ElectionSim,
  livenessBoundMs,
  mulberry32,
  type Invariant,
  type SimOptions,
  type SimResult,
} from './election-sim-world.js';

// ─────────────────────────────── scenarios ───────────────────────────────

export type ScenarioName = 'hung-primary' | 'disk-full-primary' | 'crash-loop-primary' | 'chaos-3' | 'chaos-5';

interface Scenario {
  members: number;
  durationMs: number;
  /** Schedules the scenario's faults (with `world.later`). */
  faults: (world: ElectionSim) => void;
}

const WARMUP_MS = 6000;
const FAULT_HOLD_MS = 40_000;

/** One fault held on the primary of the moment for 40 s (longer than the liveness bound), then undone. */
function onPrimary(start: (m: SimMember, w: ElectionSim) => void, end: (m: SimMember, w: ElectionSim) => void) {
  return (w: ElectionSim): void =>
    w.later(WARMUP_MS + Math.floor(w.random() * 2000), () => {
      const m = w.primaryOrAny();
      w.note(`FAULT on ${m.name}`);
      start(m, w);
      w.later(FAULT_HOLD_MS, () => end(m, w));
    });
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'hung-primary': {
    members: 3,
    durationMs: 60_000,
    faults: onPrimary(
      (m, w) => w.hangPg(m, true),
      (m, w) => w.hangPg(m, false),
    ),
  },
  'disk-full-primary': {
    members: 3,
    durationMs: 60_000,
    faults: onPrimary(
      (m, w) => w.fillDisk(m, true),
      (m, w) => w.fillDisk(m, false),
    ),
  },
  'crash-loop-primary': {
    members: 3,
    durationMs: 60_000,
    faults: onPrimary(
      (m, w) => w.crashLoop(m, 300 + Math.floor(w.random() * 1500)),
      (m, w) => w.crashLoop(m, null),
    ),
  },
  'chaos-3': { members: 3, durationMs: 50_000, faults: (w) => chaos(w, 3) },
  'chaos-5': { members: 5, durationMs: 50_000, faults: (w) => chaos(w, 5) },
};

const CHAOS_FROM_MS = 4000;
const CHAOS_UNTIL_MS = 30_000;

/** Random faults on random members (the primary half of the time) until CHAOS_UNTIL_MS, all undone by then. */
function chaos(w: ElectionSim, n: number): void {
  const kinds = [
    'partition',
    'one-way',
    'loss',
    'slow',
    'pause',
    'hang',
    'disk',
    'crash',
    'keeper-crash',
    'crash-loop',
  ] as const;
  let t = CHAOS_FROM_MS;
  for (;;) {
    t += 300 + Math.floor(w.random() * 3000);
    if (t >= CHAOS_UNTIL_MS) break;
    const kind = kinds[Math.floor(w.random() * kinds.length)] ?? 'loss';
    const onPrimaryToo = w.random() < 0.5;
    const pick = Math.floor(w.random() * n);
    const other = Math.floor(w.random() * n);
    const holdMs = Math.min(300 + Math.floor(w.random() * 8000), CHAOS_UNTIL_MS - t);
    w.later(t - w.now, () => {
      const m = onPrimaryToo ? w.primaryOrAny() : w.members[pick];
      const o = w.members[other];
      if (m === undefined || o === undefined) return;
      const undo = w.inject(kind, m, o);
      if (undo !== null) w.later(holdMs, undo);
    });
  }
}

/** One seeded run of a scenario. */
export function runSimulation(options: SimOptions): SimResult {
  const scenario = SCENARIOS[options.scenario];
  return new ElectionSim(options, scenario.members).run(scenario.durationMs, scenario.faults);
}

/** A failure as a person reads it: what broke, when, how to replay, and the last events. */
export function formatFailure(r: SimResult): string {
  const v = r.violation;
  if (v === null) return `seed ${r.seed} (${r.scenario}, ${r.rules}): no violation`;
  return [
    `seed ${r.seed} (${r.scenario}, rules ${r.rules}${r.without.length > 0 ? ` without ${r.without.join(', ')}` : ''}): ${v.invariant} violated at ${v.atMs} ms: ${v.detail}`,
    `replay: npx tsx bench/hyperdb/election-sim.ts --replay ${r.seed} --scenario ${r.scenario}${r.rules === 'issue-12' ? '' : ` --rules ${r.rules}`}${r.without.length > 0 ? ` --without ${r.without.join(',')}` : ''}`,
    ...r.trace.map((l) => `  ${l}`),
  ].join('\n');
}
