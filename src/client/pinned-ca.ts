/**
 * Trust on a pin, as `kubeadm join --discovery-token-ca-cert-hash` does: fetch the master's public trust bundle
 * without checking the server (nothing secret crosses, no token is sent), keep only the roots whose key hashes to
 * the pin the user was given out of band, then check that the master's own certificate chains to them. A man in the
 * middle can answer the first fetch, but cannot offer a root with that pin, nor a certificate chaining to one.
 *
 * @example
 * const ca = await trustMasterByPin('https://10.0.0.1:8470', 'sha256:4f…');
 * new MasterClient({ url, token, ca });
 */
import { HoxError } from '../shared/errors.js';
import { caPin, pinnedRoots, parseCaPin } from '../shared/pki/ca-pin.js';
import { readTrustBundle, type TrustBundlePem } from '../shared/pki/trust-bundle.js';
import { readCertificateBundle } from '../shared/pki/x509.js';
import { exchange } from './http-transport.js';
import { MasterClient } from './master-client.js';

/** The PEM roots of the master at `url` that match `pin`, once its certificate was seen to chain to them. */
export async function trustMasterByPin(url: string, pin: string, timeoutMs = 30_000): Promise<string> {
  const expected = parseCaPin(pin, '--ca-pin');
  const base = url.replace(/\/+$/, '');
  if (!base.startsWith('https:'))
    throw new HoxError('HOX_BAD_REQUEST', `--ca-pin needs an https:// master URL, not '${url}'`, { field: '--ca-pin' });
  let answer;
  try {
    answer = await exchange({
      method: 'GET',
      url: `${base}/pki/trust-bundle`,
      headers: {},
      signal: AbortSignal.timeout(timeoutMs),
      unverified: true,
    });
  } catch (error) {
    throw new HoxError('HOX_MASTER_UNREACHABLE', `master at ${base} is unreachable (GET /pki/trust-bundle)`, {
      cause: error,
    });
  }
  if (answer.status !== 200)
    throw new HoxError(
      'HOX_MASTER_UNTRUSTED',
      `${base} answered ${answer.status} for its trust bundle: not a HyperOpenX master with a platform CA`,
    );
  let bundle: TrustBundlePem;
  try {
    bundle = JSON.parse(answer.body.toString('utf8')) as TrustBundlePem;
  } catch (error) {
    throw new HoxError('HOX_MASTER_UNTRUSTED', `${base} answered a trust bundle that is not JSON`, { cause: error });
  }
  if (typeof bundle !== 'object' || bundle === null)
    throw new HoxError('HOX_MASTER_UNTRUSTED', `${base} answered a trust bundle that is not an object`);
  let roots;
  try {
    roots = pinnedRoots(readTrustBundle(bundle).roots, expected);
  } catch (error) {
    throw new HoxError(
      'HOX_MASTER_UNTRUSTED',
      `${base} is not the master you were given the pin of: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const ca = pemBundle(roots);
  // The server's chain must lead to a pinned root: the connection, not only the bundle, is the master's.
  // (whoami without a token: the master answers 401, which is an answer over a verified connection.)
  try {
    await new MasterClient({ url: base, ca, timeoutMs }).call('whoami', {});
  } catch (error) {
    if (!(error instanceof HoxError) || error.code !== 'HOX_UNAUTHENTICATED') throw error;
  }
  return ca;
}

/**
 * The master's current roots, fetched over a connection verified against the roots already trusted (`kept`): after
 * a root rotation the master's chain carries the cross-certificate, so the old roots still verify it, and the
 * bundle then names the new root too. Returns the bundle's roots (PEM) when they differ from `kept`, null when
 * they are the same; throws when the master cannot be reached or answers something else.
 */
export async function refreshMasterRoots(url: string, kept: string, timeoutMs = 30_000): Promise<string | null> {
  const base = url.replace(/\/+$/, '');
  const answer = await exchange({
    method: 'GET',
    url: `${base}/pki/trust-bundle`,
    headers: {},
    signal: AbortSignal.timeout(timeoutMs),
    ca: kept,
  });
  if (answer.status !== 200)
    throw new HoxError('HOX_MASTER_UNTRUSTED', `${base} answered ${answer.status} for its trust bundle`);
  const roots = readTrustBundle(JSON.parse(answer.body.toString('utf8')) as TrustBundlePem).roots;
  if (roots.length === 0) throw new HoxError('HOX_MASTER_UNTRUSTED', `${base} answered a trust bundle without roots`);
  const before = new Set(readCertificateBundle(kept).map((c) => caPin(c)));
  const after = new Set(roots.map((c) => caPin(c)));
  return before.size === after.size && [...after].every((pin) => before.has(pin)) ? null : pemBundle(roots);
}

/** Certificates as one PEM text, one after the other. */
function pemBundle(certificates: readonly { toString(format: 'pem'): string }[]): string {
  return `${certificates.map((c) => c.toString('pem').trim()).join('\n')}\n`;
}
