/**
 * A signed-in user of the pilot CRM (examples/crm) for tests that drive a deployed CRM over HTTP: signs in
 * through the form (its CSRF cookie and token), then sends the session cookie and the session's CSRF token with
 * every request, as a browser does.
 */

/** The CRM's first administrator's password in tests: set as a config var, it overrides the generated one. */
export const TEST_CRM_ADMIN_PASSWORD = 'test-crm-admin-password';

export interface CrmClient {
  /** The `Cookie` header of the session. */
  cookie: string;
  /** GETs a page; resolves to its status and body. */
  get(path: string): Promise<{ status: number; body: string }>;
  /** POSTs a form with the session's CSRF token, without following the redirect. */
  post(path: string, fields: Record<string, string>): Promise<Response>;
}

function csrfOf(page: string): string {
  const token = /name="_csrf" value="([\w-]+)"/.exec(page)?.[1];
  if (token === undefined) throw new Error(`no CSRF token in the page:\n${page.slice(0, 500)}`);
  return token;
}

function cookieOf(response: Response, name: string): string {
  const found = response.headers.getSetCookie().find((line) => line.startsWith(`${name}=`));
  if (found === undefined) throw new Error(`no ${name} cookie (HTTP ${response.status})`);
  return found.split(';')[0]!;
}

/** Signs in at `baseUrl` (the CRM's public URL) as `username`. */
export async function signInToCrm(
  baseUrl: string,
  password = TEST_CRM_ADMIN_PASSWORD,
  username = 'admin',
): Promise<CrmClient> {
  const url = (path: string) => new URL(path, baseUrl);
  const form = await fetch(url('/login'));
  const loginCookie = cookieOf(form, 'crm_login_csrf');
  const signedIn = await fetch(url('/login'), {
    method: 'POST',
    headers: { cookie: loginCookie },
    body: new URLSearchParams({ _csrf: csrfOf(await form.text()), username, password }),
    redirect: 'manual',
  });
  if (signedIn.status !== 303) throw new Error(`sign-in: HTTP ${signedIn.status}\n${await signedIn.text()}`);
  const cookie = cookieOf(signedIn, 'crm_session');
  const pipeline = await fetch(url('/pipeline'), { headers: { cookie } });
  const csrf = csrfOf(await pipeline.text());
  return {
    cookie,
    async get(path) {
      const response = await fetch(url(path), { headers: { cookie } });
      return { status: response.status, body: await response.text() };
    },
    post(path, fields) {
      return fetch(url(path), {
        method: 'POST',
        headers: { cookie },
        body: new URLSearchParams({ _csrf: csrf, ...fields }),
        redirect: 'manual',
      });
    },
  };
}
