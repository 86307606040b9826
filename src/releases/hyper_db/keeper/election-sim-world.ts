/**
 * The world of the election simulation (election-sim.ts): virtual clock and event queue, seeded
 * generator, network, fault injection, the client's commits and the invariants, checked after every
 * event. Members (election-sim-member.ts) live in it through the SimWorld interface.
 */
import { STAND_JITTER_MS, TICK_MS, VOTE_TIMEOUT_MS, unresponsiveMsFor } from './election-rules.js';
import type { ScenarioName } from './election-sim.js';
import {
  SimMember,
  type HeartbeatReply,
  type PeerMessage,
  type SafetyFix,
  type SimPosition,
  type SimRules,
  type SimTiming,
  type SimWorld,
} from './election-sim-member.js';

export const DEFAULT_TIMING: SimTiming = {
  leaseMs: 2500,
  heartbeatMs: 250,
  unresponsiveMs: unresponsiveMsFor(2500),
  observeTimeoutMs: 2000,
  observeMs: 2,
  pgStartMs: [150, 400],
  pgStopMs: 100,
  promoteMs: [100, 300],
  promoteTimeoutMs: 5000,
  rewindMs: [500, 1500],
  cloneMs: [2000, 5000],
  sourceTimeoutMs: 3000,
  maxLagBytes: 16 * 2 ** 20,
  commitBytes: 8192,
};

const WRITE_INTERVAL_MS = 50;
const SAMPLE_MS = 50;
/** One-way network delay: 1 ms plus up to this much jitter (messages overtake each other). */
const JITTER_MS = 12;
/** A slow network adds up to this much. */
const SLOW_MS = 300;
const LOSS_RATE = 0.25;
const ELECTION_BACKOFF_MAX_MS = 800;
const LOST_ELECTION_ROUNDS = 3;

/**
 * How long, at most, the cluster may go without a healthy member acknowledging writes while a majority
 * is healthy and connected — each term is a step of the failover's critical path:
 * - the leader's promises run out: it heartbeats while its PostgreSQL answered within `unresponsiveMs`
 *   (a round every `heartbeatMs`), and the last promise it got lasts `leaseMs` (+ one network delay);
 * - a standby stands at its next tick (TICK_MS + STAND_JITTER_MS);
 * - up to LOST_ELECTION_ROUNDS lost rounds (split votes), each a pre-vote and a vote that may wait
 *   for an unanswered peer (VOTE_TIMEOUT_MS each) and a backoff of at most ELECTION_BACKOFF_MAX_MS;
 * - the promotion;
 * - k standbys stream: they hear the first heartbeat, follow at their next tick, and one that had WAL
 *   beyond the new primary's is rewound (stop, pg_rewind, start) — or, with no data left after a
 *   failed clone, cloned.
 */
export function livenessBoundMs(t: SimTiming): number {
  const delay = 1 + JITTER_MS;
  const leaseRunsOut = t.unresponsiveMs + t.heartbeatMs + t.leaseMs + delay;
  const stand = TICK_MS + STAND_JITTER_MS;
  const election = LOST_ELECTION_ROUNDS * (2 * VOTE_TIMEOUT_MS + ELECTION_BACKOFF_MAX_MS) + 2 * VOTE_TIMEOUT_MS;
  const promote = t.promoteMs[1];
  const follow = delay + TICK_MS + t.pgStopMs + Math.max(t.rewindMs[1], t.cloneMs[1]) + t.pgStartMs[1];
  return leaseRunsOut + stand + election + promote + follow;
}

// ─────────────────────────────── the world ───────────────────────────────

export interface SimOptions {
  seed: number;
  scenario: ScenarioName;
  rules?: SimRules;
  /** Safety fixes left out of the `issue-12` rules (to show each is needed). @default [] */
  without?: SafetyFix[];
  timing?: SimTiming;
  /** Lines of trace kept for a failure report. @default 80 */
  traceLines?: number;
}

export type Invariant = 'one-primary' | 'one-writer' | 'durability' | 'liveness';

export interface SimResult {
  seed: number;
  scenario: ScenarioName;
  rules: SimRules;
  /** Safety fixes left out. */
  without: SafetyFix[];
  violation: { invariant: Invariant; atMs: number; detail: string } | null;
  /** The last trace lines (kept for every run; print them for a failure). */
  trace: string[];
  /** Promotions by election after the first. */
  failovers: number;
  /** Each time a healthy member acknowledged writes again: how long the cluster had gone without (ms). */
  timeToPrimaryMs: number[];
  acknowledged: number;
  events: number;
}

interface QueuedEvent {
  t: number;
  seq: number;
  owner: SimMember | null;
  incarnation: number;
  fn: () => void;
}

/** mulberry32: a tiny seeded generator, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class SimulationFailure extends Error {}

export class ElectionSim implements SimWorld {
  now = 0;
  readonly members: SimMember[];
  private readonly byName: Map<string, SimMember>;
  readonly memberCount: number;
  readonly timing: SimTiming;
  readonly rules: SimRules;
  readonly healthRules: boolean;
  private readonly without: readonly SafetyFix[];
  private readonly rng: () => number;
  private readonly heap: QueuedEvent[] = [];
  private seq = 0;
  private readonly deferred = new Map<SimMember, QueuedEvent[]>();
  /** Faults holding each directed link down: [from * n + to]. */
  private readonly linkDown: Int32Array;
  private readonly index = new Map<string, number>();
  private lossWindows = 0;
  private slowWindows = 0;
  /** Timeline tree: timeline → (parent, the lsn it forked at). Timeline 1 is the root. */
  private readonly timelines: { parent: number; forkLsn: number }[] = [
    { parent: 0, forkLsn: 0 },
    { parent: 0, forkLsn: 0 },
  ];
  private lastAcked: SimPosition | null = null;
  private readonly pending = new Map<SimMember, { record: SimPosition; generation: number }>();
  private readonly traceLines: string[] = [];
  private readonly traceMax: number;
  private conditionSince: number | null = null;
  private lastWritableAt = 0;
  private wasWritable = false;
  private promotions = 0;
  readonly result: SimResult;
  private readonly bound: number;

  constructor(options: SimOptions, members: number) {
    this.rules = options.rules ?? 'issue-12';
    this.healthRules = this.rules === 'issue-12';
    this.without = options.without ?? [];
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.rng = mulberry32(options.seed);
    this.traceMax = options.traceLines ?? 80;
    this.memberCount = members;
    this.bound = livenessBoundMs(this.timing);
    const names = Array.from({ length: members }, (_, i) => `member-${i + 1}`);
    this.members = names.map(
      (name) =>
        new SimMember(
          name,
          names.filter((n) => n !== name),
          this,
        ),
    );
    this.byName = new Map(this.members.map((m) => [m.name, m]));
    names.forEach((name, i) => this.index.set(name, i));
    this.linkDown = new Int32Array(names.length * names.length);
    this.result = {
      seed: options.seed,
      scenario: options.scenario,
      rules: this.rules,
      without: [...this.without],
      violation: null,
      trace: this.traceLines,
      failovers: 0,
      timeToPrimaryMs: [],
      acknowledged: 0,
      events: 0,
    };
  }

  run(durationMs: number, faults: (w: ElectionSim) => void): SimResult {
    for (const m of this.members) this.later(Math.floor(this.random() * 300), () => m.start());
    this.later(WRITE_INTERVAL_MS, () => this.writeLoop());
    this.later(SAMPLE_MS, () => this.sampleLoop());
    faults(this);
    try {
      for (;;) {
        const ev = this.pop();
        if (ev === undefined || ev.t > durationMs) break;
        this.now = ev.t;
        this.result.events++;
        if (ev.owner !== null) {
          if (ev.owner.incarnation !== ev.incarnation) continue;
          if (ev.owner.faults.keeperPaused) {
            const waiting = this.deferred.get(ev.owner);
            if (waiting === undefined) this.deferred.set(ev.owner, [ev]);
            else waiting.push(ev);
            continue;
          }
        }
        ev.fn();
        this.checkSafety();
      }
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
    }
    return this.result;
  }

  // ── SimWorld ──

  random(): number {
    return this.rng();
  }

  fixed(fix: SafetyFix): boolean {
    return this.healthRules && !this.without.includes(fix);
  }

  after(member: SimMember, ms: number, fn: () => void): void {
    this.push(this.now + ms, member, fn);
  }

  later(ms: number, fn: () => void): void {
    this.push(this.now + ms, null, fn);
  }

  call(
    from: SimMember,
    to: string,
    message: PeerMessage,
    timeoutMs: number,
    onAnswer: (answer: unknown) => void,
  ): void {
    let settled = false;
    const finish = (answer: unknown): void => {
      if (settled) return;
      settled = true;
      onAnswer(answer);
    };
    this.after(from, timeoutMs, () => finish(null));
    const target = this.member(to);
    // A crashed member's address refuses connections at once.
    if (target.faults.crashed) return this.after(from, 1, () => finish(null));
    this.transmit(from.name, target, () => {
      const answer = (a: unknown): void => this.transmit(to, from, () => finish(a));
      switch (message.kind) {
        case 'heartbeat':
          return answer(target.onHeartbeat(message.body) satisfies HeartbeatReply);
        case 'vote':
          return target.onVote(message.body, answer);
        case 'release':
          return answer(target.onRelease(message.body));
      }
    });
  }

  member(name: string): SimMember {
    const m = this.byName.get(name);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m;
  }

  linked(a: string, b: string): boolean {
    return this.up(a, b) && this.up(b, a);
  }

  private up(from: string, to: string): boolean {
    const n = this.memberCount;
    return this.linkDown[(this.index.get(from) ?? 0) * n + (this.index.get(to) ?? 0)] === 0;
  }

  upstreamOf(s: SimMember): SimMember | null {
    const pg = s.pg;
    if (pg.proc !== 'running' || pg.hung || !pg.inRecovery || !pg.hasData || pg.conninfo === null) return null;
    if (s.faults.diskFull) return null;
    const u = this.member(pg.conninfo);
    if (u.pg.proc !== 'running' || u.pg.hung || u.pg.inRecovery || !u.pg.hasData) return null;
    if (!this.linked(s.name, u.name)) return null;
    if (pg.pos.timeline === u.pg.pos.timeline && pg.pos.lsn === u.pg.pos.lsn) return u;
    if (!this.contains(u.pg.pos, pg.pos)) return null;
    pg.pos = u.pg.pos;
    return u;
  }

  newTimeline(at: SimPosition): number {
    this.timelines.push({ parent: at.timeline, forkLsn: at.lsn });
    return this.timelines.length - 1;
  }

  forkPoint(pos: SimPosition, source: SimPosition): SimPosition {
    const sourceChain = new Map<number, number>();
    for (let t = source.timeline, limit = source.lsn; t !== 0;) {
      sourceChain.set(t, limit);
      const tl = this.timelines[t];
      if (tl === undefined) break;
      limit = Math.min(limit, tl.forkLsn);
      t = tl.parent;
    }
    for (let t = pos.timeline, limit = pos.lsn; t !== 0;) {
      const there = sourceChain.get(t);
      if (there !== undefined) return { timeline: t, lsn: Math.min(limit, there) };
      const tl = this.timelines[t];
      if (tl === undefined) break;
      limit = Math.min(limit, tl.forkLsn);
      t = tl.parent;
    }
    return { timeline: 1, lsn: 0 };
  }

  promoted(member: SimMember, timings: { detect: number; total: number }): void {
    if (this.promotions++ > 0) this.result.failovers++;
    this.trace(member, `promoted: detect ${timings.detect} ms, total ${timings.total} ms`);
    // A promotion that ends after the lease did (the keeper was frozen meanwhile) is fenced at the next
    // check and cannot acknowledge anything: the check at acknowledgement covers it.
    if (member.leaseValidNow() && this.lastAcked !== null && !this.contains(member.pg.pos, this.lastAcked))
      this.fail('durability', `${member.name} promoted without the acknowledged commit ${pos(this.lastAcked)}`);
  }

  trace(member: SimMember | null, text: string): void {
    this.traceLines.push(`${String(this.now).padStart(6)} ms ${member?.name ?? 'world'}: ${text}`);
    if (this.traceLines.length > this.traceMax) this.traceLines.shift();
  }

  note(text: string): void {
    this.trace(null, text);
  }

  // ── faults ──

  primaryOrAny(): SimMember {
    const primary = this.members.find((m) => m.role === 'primary' && m.leaseValidNow());
    return primary ?? this.members[Math.floor(this.random() * this.members.length)] ?? (this.members[0] as SimMember);
  }

  hangPg(m: SimMember, hung: boolean): void {
    this.note(`${hung ? 'SIGSTOP' : 'SIGCONT'} PostgreSQL of ${m.name}`);
    m.pg.setHung(hung);
  }

  fillDisk(m: SimMember, full: boolean): void {
    this.note(`disk of ${m.name} ${full ? 'full' : 'cleared'}`);
    m.faults.diskFull = full;
  }

  crashLoop(m: SimMember, ms: number | null): void {
    this.note(
      ms === null
        ? `PostgreSQL of ${m.name} stable again`
        : `PostgreSQL of ${m.name} crashes ${ms} ms after each start`,
    );
    m.faults.crashLoopMs = ms;
    if (ms !== null && m.pg.proc === 'running') this.later(ms, () => m.pg.crash());
  }

  /** Starts one fault; returns what undoes it (null when it does not apply now). */
  inject(kind: string, m: SimMember, o: SimMember): (() => void) | null {
    const f = m.faults;
    switch (kind) {
      case 'partition': {
        const cut = this.members.filter((x) => x === m || (x === o && this.random() < 0.5));
        const rest = this.members.filter((b) => !cut.includes(b));
        const links = cut.flatMap((a) =>
          rest.flatMap((b): [string, string][] => [
            [a.name, b.name],
            [b.name, a.name],
          ]),
        );
        return this.cut(links, `partition {${cut.map((x) => x.name).join(', ')}} | rest`);
      }
      case 'one-way':
        return m === o ? null : this.cut([[m.name, o.name]], `one-way ${m.name} → ${o.name} down`);
      case 'loss':
        this.lossWindows++;
        this.note('messages lost');
        return () => void this.lossWindows--;
      case 'slow':
        this.slowWindows++;
        this.note('network slow');
        return () => void this.slowWindows--;
      case 'pause':
        if (f.keeperPaused || f.crashed) return null;
        this.note(`keeper of ${m.name} frozen`);
        f.keeperPaused = true;
        return () => this.resumeKeeper(m);
      case 'hang':
        if (m.pg.proc !== 'running' || m.pg.hung) return null;
        this.hangPg(m, true);
        return () => this.hangPg(m, false);
      case 'disk':
        if (f.diskFull) return null;
        this.fillDisk(m, true);
        return () => this.fillDisk(m, false);
      case 'crash':
      case 'keeper-crash':
        if (f.crashed) return null;
        this.note(kind === 'crash' ? `${m.name} crashed` : `keeper of ${m.name} crashed (PostgreSQL runs on)`);
        m.crash({ keeperOnly: kind === 'keeper-crash' });
        this.deferred.delete(m);
        return () => {
          this.note(`${m.name} restarts`);
          f.crashed = false;
          m.start();
        };
      case 'crash-loop':
        if (f.crashLoopMs !== null) return null;
        this.crashLoop(m, 300 + Math.floor(this.random() * 1500));
        return () => this.crashLoop(m, null);
      default:
        return null;
    }
  }

  private cut(links: [string, string][], what: string): () => void {
    const n = this.memberCount;
    const slots = links.map(([a, b]) => (this.index.get(a) ?? 0) * n + (this.index.get(b) ?? 0));
    this.note(what);
    for (const i of slots) this.linkDown[i] = (this.linkDown[i] ?? 0) + 1;
    return () => {
      this.note(`healed: ${what}`);
      for (const i of slots) this.linkDown[i] = (this.linkDown[i] ?? 1) - 1;
    };
  }

  private resumeKeeper(m: SimMember): void {
    this.note(`keeper of ${m.name} thawed`);
    m.faults.keeperPaused = false;
    const waiting = this.deferred.get(m) ?? [];
    this.deferred.delete(m);
    for (const ev of waiting) this.push(this.now, ev.owner, ev.fn, ev.incarnation);
  }

  // ── network and queue ──

  private transmit(from: string, to: SimMember, fn: () => void): void {
    if (!this.up(from, to.name)) return;
    if (this.lossWindows > 0 && this.random() < LOSS_RATE) return;
    const delay =
      1 + Math.floor(this.random() * JITTER_MS) + (this.slowWindows > 0 ? Math.floor(this.random() * SLOW_MS) : 0);
    this.push(this.now + delay, to, fn);
  }

  private push(t: number, owner: SimMember | null, fn: () => void, incarnation = owner?.incarnation ?? 0): void {
    const heap = this.heap;
    const ev: QueuedEvent = { t, seq: this.seq++, owner, incarnation, fn };
    let i = heap.length;
    heap.push(ev);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as QueuedEvent;
      if (p.t < t || (p.t === t && p.seq < ev.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = ev;
  }

  private pop(): QueuedEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const lv = heap[l] as QueuedEvent;
      const rv = heap[r];
      const child = rv !== undefined && (rv.t < lv.t || (rv.t === lv.t && rv.seq < lv.seq)) ? r : l;
      const c = heap[child] as QueuedEvent;
      if (last.t < c.t || (last.t === c.t && last.seq < c.seq)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }

  // ── WAL ──

  /** Whether a member at `at` has the commit `record`: its timeline's ancestry passes through it. */
  contains(at: SimPosition, record: SimPosition): boolean {
    for (let t = at.timeline, limit = at.lsn; t !== 0;) {
      if (t === record.timeline) return record.lsn <= limit;
      const tl = this.timelines[t];
      if (tl === undefined) return false;
      limit = Math.min(limit, tl.forkLsn);
      t = tl.parent;
    }
    return false;
  }

  private quorum(): number {
    return Math.max(1, this.memberCount - (Math.floor(this.memberCount / 2) + 1));
  }

  /** The standbys streaming from `m` now (they then have its WAL). */
  private streamingFrom(m: SimMember): number {
    let n = 0;
    for (const s of this.members) if (s !== m && s.pg.conninfo === m.name && this.upstreamOf(s) === m) n++;
    return n;
  }

  private runsAsPrimary(m: SimMember): boolean {
    return m.pg.answers && !m.pg.inRecovery && m.pg.hasData;
  }

  private acknowledges(m: SimMember): boolean {
    return this.runsAsPrimary(m) && !m.faults.diskFull && this.streamingFrom(m) >= this.quorum();
  }

  /** The client: one commit on every member that runs as a primary. */
  private writeLoop(): void {
    for (const m of this.members) {
      if (!this.runsAsPrimary(m)) continue;
      if (m.faults.diskFull) {
        this.trace(m, 'PANIC: could not write WAL: No space left on device');
        m.pg.crash();
        continue;
      }
      m.pg.pos = { ...m.pg.pos, lsn: m.pg.pos.lsn + 1 };
      this.pending.set(m, { record: { ...m.pg.pos }, generation: m.pg.generation });
    }
    this.settleCommits();
    this.later(WRITE_INTERVAL_MS, () => this.writeLoop());
  }

  /** Acknowledges waiting commits whose quorum streams them; drops those whose server went away. */
  private settleCommits(): void {
    for (const [m, p] of this.pending) {
      if (!this.runsAsPrimary(m) || m.pg.generation !== p.generation) {
        this.pending.delete(m);
        continue;
      }
      if (!this.acknowledges(m)) continue;
      this.pending.delete(m);
      if (this.lastAcked !== null && !this.contains(p.record, this.lastAcked))
        this.fail(
          'durability',
          `${m.name} acknowledges ${pos(p.record)} without the acknowledged ${pos(this.lastAcked)}`,
        );
      this.lastAcked = p.record;
      this.result.acknowledged++;
    }
  }

  // ── invariants ──

  private checkSafety(): void {
    let leaders: SimMember[] | null = null;
    let writers: SimMember[] | null = null;
    for (const m of this.members) {
      if (m.role === 'primary' && m.leaseValidNow()) (leaders ??= []).push(m);
      if (this.runsAsPrimary(m) && this.acknowledges(m)) (writers ??= []).push(m);
    }
    if (leaders !== null && leaders.length > 1)
      this.fail(
        'one-primary',
        `${leaders.map((m) => `${m.name} (term ${m.disk.term})`).join(' and ')} both hold a valid lease`,
      );
    if (writers === null) return;
    if (writers.length > 1)
      this.fail('one-writer', `${writers.map((m) => m.name).join(' and ')} both acknowledge writes`);
    // A fenced member (its keeper demoted it and killed its server) never acknowledges. A member whose
    // keeper died or restarted beside a running primary is no fenced member: the first rule covers it.
    for (const m of writers)
      if (m.role === 'demoted') this.fail('one-writer', `${m.name} acknowledges writes after its keeper fenced it`);
  }

  /** A member counts as healthy when no fault holds it and it has recovered from its own failures. */
  private healthy(m: SimMember): boolean {
    const f = m.faults;
    if (f.crashed || f.keeperPaused || f.diskFull || f.crashLoopMs !== null || m.pg.hung) return false;
    return this.now >= m.health.standBlockedUntil;
  }

  /** Whether some majority of healthy members are pairwise linked both ways, with no message loss. */
  private majorityHealthyAndConnected(healthy: SimMember[]): boolean {
    const majority = Math.floor(this.memberCount / 2) + 1;
    if (this.lossWindows > 0 || this.slowWindows > 0 || healthy.length < majority) return false;
    const n = healthy.length;
    for (let mask = 0; mask < 1 << n; mask++) {
      const group = healthy.filter((_, i) => mask & (1 << i));
      if (group.length < majority) continue;
      if (group.every((a) => group.every((b) => a === b || this.linked(a.name, b.name)))) return true;
    }
    return false;
  }

  private sampleLoop(): void {
    this.settleCommits();
    const healthy = this.members.filter((m) => this.healthy(m));
    // Progress is any member acknowledging writes: one that crashed a lot lately but serves now serves.
    const writable = this.members.some((m) => this.acknowledges(m));
    const condition = this.majorityHealthyAndConnected(healthy);
    if (condition) this.conditionSince ??= this.now;
    else this.conditionSince = null;
    const gapStart = Math.max(this.conditionSince ?? this.now, this.lastWritableAt);
    if (writable) {
      if (!this.wasWritable && condition) this.result.timeToPrimaryMs.push(this.now - gapStart);
      this.lastWritableAt = this.now;
    } else if (condition && this.now - gapStart > this.bound)
      this.fail(
        'liveness',
        `a majority has been healthy and connected since ${this.conditionSince} ms, and no member has acknowledged writes since ${gapStart} ms (bound ${this.bound} ms)`,
      );
    this.wasWritable = writable;
    this.later(SAMPLE_MS, () => this.sampleLoop());
  }

  private fail(invariant: Invariant, detail: string): never {
    this.note(`VIOLATION ${invariant}: ${detail}`);
    this.result.violation = { invariant, atMs: this.now, detail };
    throw new SimulationFailure(detail);
  }
}

export function pos(p: SimPosition): string {
  return `${p.timeline}/${p.lsn}`;
}
