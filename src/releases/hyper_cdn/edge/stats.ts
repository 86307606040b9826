/**
 * Per-site counters of one edge, from Varnish's log as varnishncsa prints it with the edge program's format:
 * `<side> <site> <handling> <bytes> <ttfb seconds> <status>` (side `c` for a client request, `b` for a fetch
 * from the origin).
 */
import { TTFB_BUCKETS_MS, type SiteStats } from '../protocol.js';

/** varnishncsa's `-F` format for `SiteCounters.count`. */
export const NCSA_FORMAT = '%{Varnish:side}x %{X-Hox-Site}i %{Varnish:handling}x %b %{Varnish:time_firstbyte}x %s';

export class SiteCounters {
  private readonly sites = new Map<string, SiteStats>();
  private readonly since = new Date().toISOString();

  constructor(private readonly edge: string) {}

  /** The counters of a site (zeros when nothing was counted yet). */
  of(site: string): SiteStats {
    let s = this.sites.get(site);
    if (s === undefined) {
      s = {
        edge: this.edge,
        site,
        since: this.since,
        requests: 0,
        hits: 0,
        misses: 0,
        passes: 0,
        errors: 0,
        bytes_served: 0,
        bytes_from_origin: 0,
        origin_fetches: 0,
        ttfb_buckets: TTFB_BUCKETS_MS.map(() => 0),
      };
      this.sites.set(site, s);
    }
    return s;
  }

  /** Counts one log line for a site in `known`; anything else (another format, a purge, no status) is ignored. */
  count(line: string, known: ReadonlySet<string>): void {
    const [side, site, handling, bytes, ttfb, status] = line.trim().split(' ');
    if (site === undefined || !known.has(site) || status === undefined || !/^\d{3}$/.test(status)) return;
    const s = this.of(site);
    const size = /^\d+$/.test(bytes ?? '') ? Number(bytes) : 0;
    if (side === 'b') {
      s.origin_fetches += 1;
      s.bytes_from_origin += size;
      return;
    }
    if (side !== 'c') return;
    s.requests += 1;
    if (handling === 'hit') s.hits += 1;
    else if (handling === 'miss') s.misses += 1;
    else if (handling === 'pass' || handling === 'pipe') s.passes += 1;
    if (Number(status) >= 500) s.errors += 1;
    s.bytes_served += size;
    const ms = Number(ttfb) * 1000;
    if (ttfb !== undefined && ttfb !== '-' && Number.isFinite(ms)) {
      const bucket = TTFB_BUCKETS_MS.findIndex((bound) => ms <= bound);
      s.ttfb_buckets[bucket === -1 ? TTFB_BUCKETS_MS.length - 1 : bucket]! += 1;
    }
  }
}
