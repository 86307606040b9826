/**
 * The console's shell: signing in and out, the header with who is signed in and whether the live feed is
 * connected, the navigation, and the view the address names. A token is checked with `whoami` before anything
 * is shown; a token the master stops accepting (revoked, expired) signs the tab out with the master's reason.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { HoxError } from '../shared/errors.js';
import { ConsoleApi, errorText, saveToken, savedToken } from './api.js';
import { LiveProvider, useLive, type Session } from './live.js';
import { href, useRoute, type Route } from './route.js';
import { SignIn } from './sign-in.js';
import { AlertsView } from './views/alerts-view.js';
import { AuditView } from './views/audit-view.js';
import { NodeView } from './views/node-view.js';
import { OverviewView } from './views/overview-view.js';
import { TreeView } from './views/tree-view.js';

/** Token kinds the console is for: people. Nodes and instances have their own credentials and no use for it. */
const PEOPLE = new Set(['admin', 'user']);

export function ConsoleApp() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(savedToken() !== null);
  const [problem, setProblem] = useState<string | null>(null);

  const signOut = (reason: string | null = null) => {
    saveToken(null);
    setSession(null);
    setProblem(reason);
  };

  const signIn = async (token: string): Promise<void> => {
    const api = new ConsoleApi(token);
    try {
      const who = await api.call('whoami', {});
      if (!PEOPLE.has(who.kind)) {
        signOut(`this is a ${who.kind} token: sign in with an admin or a user token (hox user token NAME)`);
        return;
      }
      saveToken(token);
      setProblem(null);
      setSession({ api, who, signOut });
    } catch (error) {
      signOut(
        error instanceof HoxError && error.code === 'HOX_UNAUTHENTICATED'
          ? `the master refused this token: ${error.message}`
          : errorText(error),
      );
    } finally {
      setChecking(false);
    }
  };

  useEffect(() => {
    const token = savedToken();
    if (token !== null) void signIn(token);
  }, []);

  if (checking) return <p class="boot">Checking your token…</p>;
  if (session === null) return <SignIn problem={problem} onToken={signIn} />;
  return (
    <LiveProvider session={session}>
      <Shell />
    </LiveProvider>
  );
}

function Shell() {
  const { session, feed } = useLive();
  const route = useRoute();
  const isAdmin = session.who.kind === 'admin';
  return (
    <>
      <a class="skip" href="#main" onClick={skipToMain}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          HyperOpenX
        </a>
        <nav aria-label="Main">
          <ul>
            <NavLink route={{ view: 'overview' }} current={route} label="Overview" />
            <NavLink route={{ view: 'alerts' }} current={route} label="Alerts" />
            <NavLink route={{ view: 'audit' }} current={route} label="Audit log" />
          </ul>
        </nav>
        <div class="who">
          <span class={`feed feed-${feed}`} role="status" title="Changes are pushed by the master's change feed">
            {feed === 'live' ? 'live' : feed === 'connecting' ? 'connecting…' : 'reconnecting…'}
          </span>
          <span>{isAdmin ? 'admin' : `user ${session.who.subject ?? ''}`}</span>
          <button type="button" onClick={() => session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <RouteView route={route} />
      </main>
    </>
  );
}

function skipToMain(event: Event): void {
  event.preventDefault();
  document.querySelector<HTMLElement>('main h1')?.focus();
}

function NavLink(props: { route: Route; current: Route; label: string }) {
  const active = props.route.view === props.current.view;
  return (
    <li>
      <a href={href(props.route)} aria-current={active ? 'page' : undefined}>
        {props.label}
      </a>
    </li>
  );
}

function RouteView(props: { route: Route }) {
  const { route } = props;
  // A new view: its heading takes the focus (screen readers announce where the person is now).
  const key = href(route);
  const last = useRef(key);
  useEffect(() => {
    if (last.current === key) return;
    last.current = key;
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [key]);
  switch (route.view) {
    case 'overview':
      return <OverviewView />;
    case 'tree':
      return <TreeView key={route.title} title={route.title} />;
    case 'node':
      return <NodeView key={route.id} id={route.id} />;
    case 'alerts':
      return <AlertsView />;
    case 'audit':
      return <AuditView />;
    case 'missing':
      return (
        <section>
          <h1 tabIndex={-1}>Nothing here</h1>
          <p>
            No view at <code>{route.path}</code>. <a href="#/">Back to the overview</a>.
          </p>
        </section>
      );
  }
}
