/**
 * The sites' certificates from an ACME CA (RFC 8555: Let's Encrypt, or Debian's `pebble` in the tests), obtained by
 * the CDN's root partition when the CDN is given `acme` (its `acme` service, acme/main.ts) and handed to its edges.
 *
 * - One ACME account per CDN (its key kept in the root partition), one order per site and per renewal, the
 *   `http-01` challenge: the CA asks `http://<name>/.well-known/acme-challenge/<token>` of whichever edge the name
 *   points to; that edge asks the root for the answer (edge/main.ts). So every edge can answer, and only one order
 *   is made for all of them.
 * - Each site's key is made here, with its certificate kept in the root partition; the edges fetch both over HTTPS
 *   (a certificate of the sites CA for the root's address, a token only the CDN's edges know).
 * - Renewed at two thirds of the certificate's life; a failed order is tried again after 30 s, doubling up to an
 *   hour, and said to the edges (which publish it in the site's `error`).
 *
 * This module holds the pure parts (what is due, the backoff, the state's shape) and the order itself.
 */
import { X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import acme from 'acme-client';
import { renewalAtMs } from '../../../shared/pki/renewal.js';

/** The `acme.json` the root's profile writes (reloaded when it changes). */
export interface AcmeConfig {
  directory: string;
  email?: string;
  /** PEM roots trusted for the ACME server's own HTTPS (a test CA's); the system's when absent. */
  caPem?: string;
  sites: { id: string; domains: string[] }[];
  /** Where the edges fetch certificates and challenge answers (HTTPS, the root's address). */
  ip: string;
  port: number;
  /** Bearer token of the edges (SHA-256 compared). */
  token: string;
  /** The root's API certificate (from the sites CA through the agent). */
  certificateFile: string;
  keyFile: string;
  /** Where the account key and the sites' certificates are kept (in the partition, mode 0600). */
  stateDir: string;
}

/** What the root keeps of a site's ACME certificate, and of its last failed order. */
export interface SiteAcmeState {
  domains: string[];
  keyPem?: string;
  chainPem?: string;
  notBeforeMs?: number;
  notAfterMs?: number;
  /** The last order's failure, when it failed, and how many failed in a row. */
  error?: string;
  failedAtMs?: number;
  failures?: number;
}

const RETRY_MIN_MS = 30_000;
const RETRY_MAX_MS = 3_600_000;

/** When an order may be tried again after the last failure (30 s, doubling up to an hour); undefined: no failure. */
export function retryAtMs(state: SiteAcmeState | undefined): number | undefined {
  if (state?.failedAtMs === undefined) return undefined;
  return state.failedAtMs + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, (state.failures ?? 1) - 1));
}

/** Whether a new order is due for the site: none yet, other names, past two thirds of its life; not while backing off. */
export function orderDue(state: SiteAcmeState | undefined, domains: string[], nowMs: number): boolean {
  const retryAt = retryAtMs(state);
  if (retryAt !== undefined && JSON.stringify(state!.domains) === JSON.stringify(domains) && nowMs < retryAt)
    return false;
  if (state?.chainPem === undefined || state.notBeforeMs === undefined || state.notAfterMs === undefined) return true;
  if (JSON.stringify(state.domains) !== JSON.stringify(domains)) return true;
  return nowMs >= renewalAtMs(state.notBeforeMs, state.notAfterMs);
}

/** A certificate usable for these names now: the same names, not expired. */
export function usable(state: SiteAcmeState | undefined, domains: string[], nowMs: number): boolean {
  return (
    state?.chainPem !== undefined &&
    state.keyPem !== undefined &&
    state.notAfterMs !== undefined &&
    nowMs < state.notAfterMs &&
    JSON.stringify(state.domains) === JSON.stringify(domains)
  );
}

export interface AcmeAccount {
  directory: string;
  accountKeyPem: string;
  email?: string;
  caPem?: string;
}

/**
 * Orders a certificate for the names with the `http-01` challenge: `publish(token, keyAuthorization)` must make the
 * answer reachable at `http://<name>/.well-known/acme-challenge/<token>` until `withdraw(token)`.
 */
export async function orderCertificate(
  account: AcmeAccount,
  domains: string[],
  challenges: { publish(token: string, answer: string): void; withdraw(token: string): void },
): Promise<Omit<SiteAcmeState, 'error' | 'failedAtMs' | 'failures'>> {
  // acme-client speaks through its own axios instance: trust the ACME server's CA there only.
  if (account.caPem !== undefined) acme.axios.defaults.httpsAgent = new Agent({ ca: account.caPem });
  const client = new acme.Client({ directoryUrl: account.directory, accountKey: account.accountKeyPem });
  const keyPem = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
  const [, csr] = await acme.crypto.createCsr({ commonName: domains[0]!, altNames: domains }, keyPem);
  const chainPem = await client.auto({
    csr,
    ...(account.email === undefined ? {} : { email: account.email }),
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // The CA checks through the edges; the root itself may not resolve the names (private DNS, tests).
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      if (challenge.type !== 'http-01') throw new Error(`unexpected challenge ${challenge.type}`);
      challenges.publish(challenge.token, keyAuthorization);
      return Promise.resolve();
    },
    challengeRemoveFn: async (_authz, challenge) => {
      challenges.withdraw(challenge.token);
      return Promise.resolve();
    },
  });
  const leaf = new X509Certificate(chainPem);
  return {
    domains,
    keyPem,
    chainPem,
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
  };
}
