/**
 * The primary's keeper, before it stops PostgreSQL for a switchover, asks the router to pause its
 * read-write endpoint (`POST /pause` on the router's API, peer token, over TLS): the router answers once no
 * transaction runs on this primary any more (or after its own bound), and holds new ones until the new
 * primary accepts them. Bounded and never throwing: a router that does not answer costs the switchover
 * at most {@link PAUSE_CALL_TIMEOUT_MS}, and the switchover goes on (its clients then see errors, as
 * without a pause).
 */
import { callJson, HttpStatusError } from '../cluster-tls.js';
import type { KeeperConfig, PauseAnswer, PauseRequestBody } from '../protocol.js';
import type { PeerAuth } from './peer-api.js';

/** The router drains for up to 5 s; this leaves room for the call itself. */
export const PAUSE_CALL_TIMEOUT_MS = 7000;

export async function pauseRouter(
  config: KeeperConfig,
  auth: PeerAuth,
  switchoverId: string,
  log: (line: string) => void,
): Promise<void> {
  const router = config.router;
  if (router === null || router === undefined) return;
  const t0 = performance.now();
  const body: PauseRequestBody = { switchoverId, from: config.name };
  try {
    const answer = await callJson<PauseAnswer>(new URL('/pause', router.url), {
      token: auth.token,
      body,
      tls: auth.tls,
      timeoutMs: PAUSE_CALL_TIMEOUT_MS,
    });
    log(
      answer.paused
        ? `switchover ${switchoverId}: the router paused the read-write endpoint (${answer.waitedMs} ms)`
        : `switchover ${switchoverId}: the router is pausing, transactions still running after ${answer.waitedMs} ms are cut: ${answer.reason ?? ''}`,
    );
  } catch (error) {
    const ms = Math.round(performance.now() - t0);
    const what =
      error instanceof HttpStatusError
        ? `the router refused to pause (HTTP ${error.status}) after ${ms} ms`
        : `no pause from the router after ${ms} ms (${(error as Error).message})`;
    log(`switchover ${switchoverId}: ${what}: going on`);
  }
}
