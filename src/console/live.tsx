/**
 * Live data: one long-poll on the master's change feed (`waitForChange`, the call `hox … --wait` uses) per tab.
 * Each change the feed reports bumps a version number, and every view reloads what it shows when the version
 * moves. Some facts change with no record in the feed (a node's last contact, series in the monitor): a slow tick
 * bumps the version too. A view keeps showing what it had while it reloads, so nothing flickers.
 */
import { createContext, type ComponentChildren } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { ResponseOf } from '../client/route-call.js';
import { HoxError } from '../shared/errors.js';
import type { ConsoleApi } from './api.js';
import { errorText } from './api.js';

/** Who signed in (the master's answer to whoami) and the client holding their token. */
export interface Session {
  api: ConsoleApi;
  who: ResponseOf<'whoami'>;
  /** Back to the sign-in form, saying why when it was not the person's choice. */
  signOut(reason?: string | null): void;
}

export type FeedState = 'connecting' | 'live' | 'reconnecting';

interface Live {
  session: Session;
  version: number;
  feed: FeedState;
}

const LiveContext = createContext<Live | null>(null);

/** How often views reload with no change reported (last contacts, ages, series). */
const TICK_MS = 15_000;
/** The feed's wait per call (the master answers at once on a change). */
const FEED_WAIT_MS = 25_000;

export function LiveProvider(props: { session: Session; children: ComponentChildren }) {
  const [version, setVersion] = useState(0);
  const [feed, setFeed] = useState<FeedState>('connecting');
  useEffect(() => {
    const abort = new AbortController();
    const bump = () => setVersion((v) => v + 1);
    const tick = setInterval(bump, TICK_MS);
    void (async () => {
      let cursor: number | undefined;
      let failures = 0;
      while (!abort.signal.aborted) {
        try {
          const answer = await props.session.api.call(
            'waitForChange',
            cursor === undefined ? {} : { since: cursor, timeout_ms: FEED_WAIT_MS },
            { signal: abort.signal },
          );
          if (cursor !== undefined && answer.changed) bump();
          cursor = answer.cursor;
          failures = 0;
          setFeed('live');
        } catch (error) {
          if (abort.signal.aborted) return;
          if (error instanceof HoxError && error.code === 'HOX_UNAUTHENTICATED') {
            props.session.signOut(`the master no longer accepts this token: ${error.message}`);
            return;
          }
          failures += 1;
          setFeed('reconnecting');
          // 1, 2, 4 … 30 s between tries: a master that restarts is found again without hammering it.
          await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** (failures - 1))));
          cursor = undefined;
          bump();
        }
      }
    })();
    return () => {
      abort.abort();
      clearInterval(tick);
    };
  }, [props.session]);
  return (
    <LiveContext.Provider value={{ session: props.session, version, feed }}>{props.children}</LiveContext.Provider>
  );
}

export function useLive(): Live {
  const live = useContext(LiveContext);
  if (live === null) throw new Error('useLive outside LiveProvider');
  return live;
}

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  /** Loads again now (after an action). */
  reload(): void;
}

/**
 * What `load` answers, loaded again whenever the live version or `deps` change. The latest answer wins (an older
 * call still running is aborted); on an error the last data stays, with the error beside it.
 */
export function useLoad<T>(
  load: (api: ConsoleApi, options: { signal: AbortSignal }) => Promise<T>,
  deps: readonly unknown[],
): Loaded<T> {
  const { session, version } = useLive();
  const [state, setState] = useState<{ data: T | undefined; error: string | null }>({
    data: undefined,
    error: null,
  });
  const [nudge, setNudge] = useState(0);
  const depsKey = useRef<string>('');
  const key = JSON.stringify(deps);
  useEffect(() => {
    // Other deps: what was shown belongs to something else.
    if (depsKey.current !== key) setState({ data: undefined, error: null });
    depsKey.current = key;
    const abort = new AbortController();
    load(session.api, { signal: abort.signal }).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, error: null });
      },
      (error: unknown) => {
        if (!abort.signal.aborted) setState((s) => ({ data: s.data, error: errorText(error) }));
      },
    );
    return () => abort.abort();
    // `load` is a new closure at each render: `key` (its deps) stands for it.
  }, [session, version, nudge, key]);
  return { ...state, reload: () => setNudge((n) => n + 1) };
}
