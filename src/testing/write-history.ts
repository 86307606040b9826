/**
 * What a write client's acknowledged writes say, as pure functions over the
 * record: pauses in acknowledgements, the write gap around a fault, and
 * evidence of two primaries. Used by pg-write-client.ts and by benchmarks
 * that analyse a record after the fact.
 */

/** One insert the client saw committed. */
export interface AckedWrite {
  id: number;
  /** `host:port` of the member that acknowledged it. */
  member: string;
  /** The member's timeline when the session started (a primary cannot change timeline within a session). */
  timeline: number;
  /** `performance.now()` when the INSERT was sent, and when its answer arrived. */
  sentAtMs: number;
  ackedAtMs: number;
  /** Wall-clock time of the answer. */
  ackedAt: Date;
}

/** A pause in acknowledgements: from one ack to the next. */
export interface WriteGap {
  fromMs: number;
  toMs: number;
  durationMs: number;
}

/**
 * Evidence that two members accepted writes in the same period: see {@link dualPrimaryOverlaps}.
 */
export interface DualPrimaryOverlap {
  /** The member written to, its timeline, and the ack that shows it. */
  member: string;
  timeline: number;
  id: number;
  ackedAtMs: number;
  /** Another member that had already acked on an equal or newer timeline, and its first ack on it. */
  otherMember: string;
  otherTimeline: number;
  otherFirstAckMs: number;
}

/** Index of the first ack with `ackedAtMs > tMs` (acks are in time order), or `acks.length`. */
export function firstAckAfter(acks: readonly AckedWrite[], tMs: number): number {
  let low = 0;
  let high = acks.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (acks[mid]!.ackedAtMs > tMs) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** The pauses between consecutive acks: the longest, and those above `thresholdMs`. */
export function writeGaps(acks: readonly AckedWrite[], thresholdMs: number): { maxGapMs: number; gaps: WriteGap[] } {
  let maxGapMs = 0;
  const gaps: WriteGap[] = [];
  for (let i = 1; i < acks.length; i += 1) {
    const fromMs = acks[i - 1]!.ackedAtMs;
    const toMs = acks[i]!.ackedAtMs;
    const durationMs = toMs - fromMs;
    maxGapMs = Math.max(maxGapMs, durationMs);
    if (durationMs > thresholdMs) gaps.push({ fromMs, toMs, durationMs });
  }
  return { maxGapMs, gaps };
}

/**
 * Finds evidence of two members accepting writes in the same period, from one
 * sequential client's acks.
 *
 * Every promotion starts a new timeline, numbered above every timeline of the
 * history it branches from. So in a cluster without split brain, whenever the
 * member acking changes, the new member acks on a timeline strictly newer than
 * any timeline another member acked on before. An overlap is reported for each
 * change of member (ack `i` on member M, ack `i-1` on another member) where
 * some other member X had already acked on a timeline ≥ M's: M was not
 * promoted after X's history began, yet X accepted writes first, so both
 * accepted writes while being primaries of the same period — e.g. the client
 * writes on A, then on B (promoted, timeline+1), then on A again (still on
 * the old timeline). Independent servers (both timeline 1) count too.
 *
 * Limits: a client only sees the members it is switched to. An old primary
 * that kept accepting writes after the client moved away is not seen here;
 * those writes are never acked to this client, and writes it acked before
 * moving are checked by the write client's `ackedLost`.
 */
export function dualPrimaryOverlaps(acks: readonly AckedWrite[]): DualPrimaryOverlap[] {
  const newest = new Map<string, { timeline: number; firstAckMs: number }>();
  const overlaps: DualPrimaryOverlap[] = [];
  let previous: AckedWrite | undefined;
  for (const ack of acks) {
    if (previous !== undefined && previous.member !== ack.member) {
      let other: [string, { timeline: number; firstAckMs: number }] | undefined;
      for (const entry of newest) {
        if (entry[0] !== ack.member && entry[1].timeline >= ack.timeline) {
          if (other === undefined || entry[1].timeline >= other[1].timeline) other = entry;
        }
      }
      if (other !== undefined) {
        overlaps.push({
          member: ack.member,
          timeline: ack.timeline,
          id: ack.id,
          ackedAtMs: ack.ackedAtMs,
          otherMember: other[0],
          otherTimeline: other[1].timeline,
          otherFirstAckMs: other[1].firstAckMs,
        });
      }
    }
    const seen = newest.get(ack.member);
    if (seen === undefined || ack.timeline > seen.timeline) {
      newest.set(ack.member, { timeline: ack.timeline, firstAckMs: ack.ackedAtMs });
    }
    previous = ack;
  }
  return overlaps;
}

/**
 * The write gap around a fault at `tMs`: from the last ack at or before `tMs`
 * (or `startMs` when there is none) to the first ack after it; `undefined`
 * while no write has been acked after `tMs`.
 */
export function gapAround(acks: readonly AckedWrite[], tMs: number, startMs: number): WriteGap | undefined {
  const after = firstAckAfter(acks, tMs);
  const next = acks[after];
  if (next === undefined) return undefined;
  const fromMs = after > 0 ? acks[after - 1]!.ackedAtMs : startMs;
  return { fromMs, toMs: next.ackedAtMs, durationMs: next.ackedAtMs - fromMs };
}
