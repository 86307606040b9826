/**
 * Where the console is: the part of the URL after `#`, so every view has an address a person can bookmark or
 * share (without the token, which stays in the tab), and the master serves one page for all of them.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'overview' }
  | { view: 'tree'; title: string }
  | { view: 'node'; id: string }
  | { view: 'alerts' }
  | { view: 'audit' }
  | { view: 'missing'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter((p) => p !== '');
  const [first, second] = parts.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (first === undefined) return { view: 'overview' };
  if (first === 'trees' && second !== undefined && parts.length === 2) return { view: 'tree', title: second };
  if (first === 'nodes' && second !== undefined && parts.length === 2) return { view: 'node', id: second };
  if (first === 'alerts' && parts.length === 1) return { view: 'alerts' };
  if (first === 'audit' && parts.length === 1) return { view: 'audit' };
  return { view: 'missing', path };
}

/** The address of a route, for links. */
export function href(route: Route): string {
  switch (route.view) {
    case 'overview':
      return '#/';
    case 'tree':
      return `#/trees/${encodeURIComponent(route.title)}`;
    case 'node':
      return `#/nodes/${encodeURIComponent(route.id)}`;
    case 'alerts':
      return '#/alerts';
    case 'audit':
      return '#/audit';
    case 'missing':
      return `#${route.path}`;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
