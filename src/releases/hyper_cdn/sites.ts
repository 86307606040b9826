/**
 * The sites a CDN hosts (pure): its shared instances' parameters, checked here because the agent does not
 * check a shared instance's parameters against a schema. A site that is not right is refused with a reason
 * (published to its owner) and never reaches an edge; the others are unaffected.
 */
import { createHash } from 'node:crypto';
import { DNS_NAME } from '../../shared/dns-name.js';
import { originUpstream } from './edge/caddy.js';
import type { EdgeSiteSpec } from './protocol.js';

export const MAX_DOMAINS = 10;
export const MAX_SITES = 500;

/** The site parameters `hox cdn site add` writes. */
export interface SiteParameters {
  domains: string[];
  origin: string;
}

export interface SharedEntry {
  slave_reference: string;
  slave_title: string;
  parameters: Record<string, unknown>;
  state: string;
}

export interface SiteVerdicts {
  /** Sites the edges serve, in request order. */
  accepted: (EdgeSiteSpec & { reference: string })[];
  /** Refused sites: reference → reason. */
  refused: Map<string, string>;
}

/** The id a site has on every edge: stable, short, and only hex after the `s`. */
export function siteId(reference: string): string {
  return `s${createHash('sha256').update(reference).digest('hex').slice(0, 12)}`;
}

function problemOf(parameters: Record<string, unknown>): string | SiteParameters {
  const { domains, origin } = parameters;
  const extra = Object.keys(parameters).filter((k) => k !== 'domains' && k !== 'origin');
  if (extra.length > 0) return `unknown parameter '${extra[0]}' (accepted: domains, origin)`;
  if (!Array.isArray(domains) || domains.length === 0 || domains.length > MAX_DOMAINS)
    return `domains: give 1 to ${MAX_DOMAINS} host names`;
  for (const d of domains)
    if (typeof d !== 'string' || !DNS_NAME.test(d) || d.startsWith('*.'))
      return `domains: '${String(d)}' is not a host name (lower case letters, digits, dots and inner hyphens)`;
  if (new Set(domains).size !== domains.length) return 'domains: a host name is given twice';
  if (typeof origin !== 'string' || origin.length > 2048) return 'origin: give an http:// or https:// URL';
  try {
    originUpstream(origin);
  } catch (error) {
    return (error as Error).message;
  }
  return { domains: domains as string[], origin };
}

/**
 * Checks every site, in request order: the first to claim a host name keeps it, a later site naming it is
 * refused (two sites cannot answer for one name). Sites not started are neither served nor refused.
 */
export function judgeSites(entries: SharedEntry[], tokenOf: (reference: string) => string): SiteVerdicts {
  const accepted: SiteVerdicts['accepted'] = [];
  const refused = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const entry of entries) {
    if (entry.state !== 'started') continue;
    if (accepted.length >= MAX_SITES) {
      refused.set(entry.slave_reference, `this CDN serves at most ${MAX_SITES} sites`);
      continue;
    }
    const checked = problemOf(entry.parameters);
    if (typeof checked === 'string') {
      refused.set(entry.slave_reference, checked);
      continue;
    }
    const taken = checked.domains.find((d) => owner.has(d));
    if (taken !== undefined) {
      refused.set(entry.slave_reference, `domains: '${taken}' is already served by site '${owner.get(taken)}'`);
      continue;
    }
    for (const d of checked.domains) owner.set(d, entry.slave_title);
    accepted.push({
      reference: entry.slave_reference,
      id: siteId(entry.slave_reference),
      title: entry.slave_title,
      domains: checked.domains,
      origin: checked.origin,
      token_sha256: createHash('sha256').update(tokenOf(entry.slave_reference)).digest('hex'),
    });
  }
  return { accepted, refused };
}
