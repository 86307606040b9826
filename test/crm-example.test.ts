/**
 * examples/crm, the pilot app, run as hyper_edge runs it — the Procfile's
 * `release:` then `web:` against a real PostgreSQL, with the addon's
 * environment — and driven over HTTP as a signed-in user: the CRM flows,
 * sign-in, validation and locale amounts, deletion, escaping, migrations,
 * riding out cut sessions and a database restart, graceful stop.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAppManifest, type AppManifest } from '../src/releases/hyper_edge/manifest/app-manifest.js';
import { startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { waitFor } from './support/agent-harness.js';
import {
  appEnv,
  createAddonDatabase,
  freePort,
  runCommand,
  startApp,
  type AddonDatabase,
  type AppProcess,
} from './support/example-app.js';

const CRM_DIR = fileURLToPath(new URL('../examples/crm/', import.meta.url));
const ADDON: AddonDatabase = { name: 'crm', user: 'crm', password: "s3cret'pass" };
const VERSION = 'v7';
/** What hyper_edge generates for `[secrets] generate = ["CRM_ADMIN_PASSWORD"]`. */
const ADMIN_PASSWORD = 'first-admin-Pa55word-for-tests';
const TIME_ZONE = 'Europe/Paris';
const MIGRATIONS = ['001_companies_contacts_deals', '002_deal_stage_changes', '003_users_sessions_natural_order'];

/** The part of examples/crm/db.js this test drives directly (the app is plain JavaScript). */
interface CrmDbModule {
  createDb: (options: { connectionString?: string; retryDelaysMs?: number[]; log?: (line: string) => void }) => {
    read(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
    write(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
    close(): Promise<void>;
  };
}

let server: PostgresServer;
let app: AppProcess;
let manifest: AppManifest;

/**
 * A browser of one user: keeps the cookies the CRM sets, sends them back, and adds the CSRF token the pages carry
 * to every form it posts (as a browser submitting the page's form does).
 */
class Browser {
  readonly cookies = new Map<string, string>();
  csrf = '';

  async request(urlPath: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(app.baseUrl + urlPath, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (attributes.some((a) => a.trim() === 'Max-Age=0')) this.cookies.delete(name.trim());
      else this.cookies.set(name.trim(), value.trim());
    }
    return response;
  }

  async get(urlPath: string): Promise<{ status: number; body: string; location: string | null }> {
    const response = await this.request(urlPath);
    const body = await response.text();
    const token = /name="_csrf" value="([\w-]+)"/.exec(body)?.[1];
    if (token !== undefined) this.csrf = token;
    return { status: response.status, body, location: response.headers.get('location') };
  }

  /** POSTs a form with the CSRF token (unless `fields` has its own `_csrf`), without following the redirect. */
  post(urlPath: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(urlPath, {
      method: 'POST',
      headers,
      body: new URLSearchParams({ _csrf: this.csrf, ...fields }),
    });
  }

  /** Signs in through the form; resolves to the response of the POST. */
  async signIn(username: string, password: string, next?: string): Promise<Response> {
    const form = await this.get(next === undefined ? '/login' : `/login?next=${encodeURIComponent(next)}`);
    expect(form.status).toBe(200);
    const response = await this.post('/login', { username, password, ...(next === undefined ? {} : { next }) });
    if (response.status === 303) await this.get('/pipeline'); // the session's CSRF token
    return response;
  }
}

/** The administrator, signed in before the tests. */
let admin: Browser;

/** Runs the manifest's release command against `database` (the addon's by default). */
async function release(addon: AddonDatabase = ADDON) {
  return runCommand(manifest.release!, CRM_DIR, appEnv(server.port, addon));
}

/** A page as the administrator sees it. */
async function page(urlPath: string): Promise<{ status: number; body: string }> {
  const { status, body } = await admin.get(urlPath);
  return { status, body };
}

/** POSTs a form as the administrator. */
function post(urlPath: string, fields: Record<string, string>): Promise<Response> {
  return admin.post(urlPath, fields);
}

/** POSTs a form that must succeed; returns the id in the redirect. */
async function create(urlPath: string, fields: Record<string, string>): Promise<string> {
  const response = await post(urlPath, fields);
  const location = response.headers.get('location') ?? '';
  expect(response.status, await response.text()).toBe(303);
  const id = /\/(\d+)\?saved=1$/.exec(location)?.[1];
  expect(id, location).toBeDefined();
  return id!;
}

/** The pipeline column of `stage`: its total and count, from the page's data attributes. */
async function pipelineColumn(stage: string): Promise<{ total: number; count: number }> {
  const { status, body } = await page('/pipeline');
  expect(status).toBe(200);
  const match = new RegExp(`data-stage="${stage}" data-total="([\\d.]+)" data-count="(\\d+)"`).exec(body);
  expect(match, body).not.toBeNull();
  return { total: Number(match![1]), count: Number(match![2]) };
}

async function adminQuery<T extends pg.QueryResultRow>(sql: string, values: unknown[] = [], database = ADDON.name) {
  const client = new pg.Client({ connectionString: server.connectionString.replace(/\/postgres$/, `/${database}`) });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

beforeAll(async () => {
  // CI starts from a clean clone: install the app's own dependencies as the platform's build step would.
  if (!existsSync(path.join(CRM_DIR, 'node_modules', 'pg'))) {
    const install = await runCommand('npm ci --no-audit --no-fund', CRM_DIR, process.env, 110_000);
    expect(install.code, install.output).toBe(0);
  }
  // Read as hyper_edge reads it (Procfile + hox.toml): the example stays a valid app.
  manifest = await readAppManifest(CRM_DIR);
  server = await startPostgres();
  await createAddonDatabase(server, ADDON);
  const migrated = await release();
  expect(migrated.code, migrated.output).toBe(0);
  const appPort = await freePort();
  app = await startApp(
    manifest.web!,
    CRM_DIR,
    appEnv(server.port, ADDON, {
      HOST: '127.0.0.1',
      PORT: String(appPort),
      HOX_APP_VERSION: VERSION,
      CRM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      CRM_TIME_ZONE: TIME_ZONE,
    }),
  );
  admin = new Browser();
  const signedIn = await admin.signIn('admin', ADMIN_PASSWORD);
  expect(signedIn.status, await signedIn.text()).toBe(303);
}, 120_000);

afterAll(async () => {
  await app?.stop(2_000);
  await server?.stop();
});

it('describes itself to hyper_edge: Procfile processes, health check, postgres addon, generated secret', () => {
  expect(manifest).toMatchObject({
    runtime: 'node',
    web: 'node server.js',
    release: 'node migrate.js',
    healthcheck: { path: '/healthz', status: 200, bodyContains: 'ok' },
    addons: [{ kind: 'postgres', name: 'crm' }],
    // The platform generates the first administrator's password.
    secrets: ['CRM_ADMIN_PASSWORD'],
  });
});

describe('release: migrate.js', () => {
  it('records every migration once; running it again changes nothing', async () => {
    const again = await release();
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain('0 applied now');
    const rows = await adminQuery<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    expect(rows.map((row) => row.name)).toEqual(MIGRATIONS);
  });

  it('serialises concurrent runs on a fresh database: both succeed, each migration is applied once', async () => {
    const fresh: AddonDatabase = { name: 'crm_concurrent', user: 'crm_concurrent', password: 'pw' };
    await createAddonDatabase(server, fresh);
    const runs = await Promise.all([release(fresh), release(fresh), release(fresh)]);
    for (const run of runs) expect(run.code, run.output).toBe(0);
    const applied = runs.map((run) => Number(/(\d+) applied now/.exec(run.output)?.[1]));
    expect(applied.sort((a, b) => a - b)).toEqual([0, 0, MIGRATIONS.length]);
    const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM schema_migrations', [], fresh.name);
    expect(Number(rows[0]!.n)).toBe(MIGRATIONS.length);
  });
});

describe('web: the CRM over HTTP', () => {
  it('answers the health check and shows HOX_APP_VERSION in the footer', async () => {
    expect(await page('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const { status, body } = await page('/pipeline');
    expect(status).toBe(200);
    expect(body).toContain(`version <span class="version">${VERSION}</span>`);
  });

  it('creates a company, a contact and a deal, moves the deal, finds them and totals the pipeline', async () => {
    const before = { proposal: await pipelineColumn('proposal'), won: await pipelineColumn('won') };
    const companyId = await create('/companies', { name: 'Globex Corporation', website: 'https://globex.example' });
    const contactId = await create('/contacts', {
      name: 'Hank Scorpio',
      company_id: companyId,
      email: 'hank@globex.example',
      job_title: 'CEO',
    });
    const dealId = await create('/deals', {
      title: 'Doomsday device maintenance',
      company_id: companyId,
      contact_id: contactId,
      amount: '1 000.25',
      stage: 'proposal',
    });
    await create('/deals', { title: 'Hammock district', company_id: companyId, amount: '499.75', stage: 'proposal' });

    const company = await page(`/companies/${companyId}`);
    expect(company.body).toContain('Globex Corporation');
    expect(company.body).toContain(`<a href="/contacts/${contactId}">Hank Scorpio</a>`);
    expect(company.body).toContain('Doomsday device maintenance');
    const deal = await page(`/deals/${dealId}`);
    expect(deal.body).toContain('1,000.25');
    expect(deal.body).toContain('stage-proposal');

    let proposal = await pipelineColumn('proposal');
    expect(proposal.count).toBe(before.proposal.count + 2);
    expect(proposal.total.toFixed(2)).toBe((before.proposal.total + 1500).toFixed(2));

    const moved = await post(`/deals/${dealId}/stage`, { stage: 'won' });
    expect(moved.status).toBe(303);
    const wonDeal = await page(`/deals/${dealId}`);
    expect(wonDeal.body).toMatch(/<h1>Doomsday device maintenance <span class="stage stage-won">won<\/span><\/h1>/);
    expect(wonDeal.body).toMatch(/stage-proposal">proposal<\/span><\/td>\s*<td><span class="stage stage-won">won/);
    proposal = await pipelineColumn('proposal');
    const won = await pipelineColumn('won');
    expect(proposal.total.toFixed(2)).toBe((before.proposal.total + 499.75).toFixed(2));
    expect(won.total.toFixed(2)).toBe((before.won.total + 1000.25).toFixed(2));

    const byCompany = await page('/search?q=globex');
    expect(byCompany.body).toContain(`<a href="/companies/${companyId}">Globex Corporation</a>`);
    const byContact = await page('/search?q=SCORPIO');
    expect(byContact.body).toContain(`<a href="/contacts/${contactId}">Hank Scorpio</a>`);
    // Searching a company's name lists its deals too.
    expect(byCompany.body).toMatch(/Deals \(2\)/);
    expect(byCompany.body).toContain(`<a href="/deals/${dealId}">Doomsday device maintenance</a>`);
    expect(byCompany.body).toContain('Hammock district');
    const byDeal = await page('/search?q=doomsday');
    expect(byDeal.body).toContain(`<a href="/deals/${dealId}">Doomsday device maintenance</a>`);
    const nothing = await page('/search?q=no-such-thing-anywhere');
    expect(nothing.body).toContain('Nothing found.');
  });

  it('edits a company and a contact', async () => {
    const companyId = await create('/companies', { name: 'Initech' });
    const contactId = await create('/contacts', { name: 'Bill L.', company_id: companyId });
    await create(`/companies/${companyId}`, { name: 'Initech Ltd', website: '', notes: 'TPS reports' });
    await create(`/contacts/${contactId}`, { name: 'Bill Lumbergh', company_id: companyId, phone: '+1 555 0100' });
    const company = await page(`/companies/${companyId}`);
    expect(company.body).toContain('<h1>Initech Ltd</h1>');
    expect(company.body).toContain('TPS reports');
    expect(company.body).toContain('Bill Lumbergh');
    expect((await page(`/companies/${companyId}/edit`)).body).toContain('value="Initech Ltd"');
    expect((await page('/companies/999999')).status).toBe(404);
  });

  it('shows validation errors in the form again, naming the field, and keeps what was typed', async () => {
    const noName = await post(`/companies`, { name: '  ', website: 'https://kept.example' });
    expect(noName.status).toBe(422);
    const noNameBody = await noName.text();
    expect(noNameBody).toContain('Name is required.');
    expect(noNameBody).toContain('value="https://kept.example"');

    const badUrl = await post(`/companies`, { name: 'X', website: 'javascript:alert(1)' });
    expect(badUrl.status).toBe(422);
    expect(await badUrl.text()).toContain('Website must be an http:// or https:// address.');

    const companyId = await create('/companies', { name: 'Vandelay Industries' });
    const otherId = await create('/companies', { name: 'Kramerica' });
    const badEmail = await post(`/contacts`, { name: 'Art', company_id: companyId, email: 'nope' });
    expect(badEmail.status).toBe(422);
    expect(await badEmail.text()).toContain('Email must look like name@example.org.');

    const contactId = await create('/contacts', { name: 'Art Vandelay', company_id: companyId });
    const badDeal = await post(`/deals`, {
      title: '',
      company_id: otherId,
      contact_id: contactId,
      amount: '-5',
    });
    expect(badDeal.status).toBe(422);
    const badDealBody = await badDeal.text();
    expect(badDealBody).toContain('Title is required.');
    expect(badDealBody).toContain('Amount must not be negative.');
    expect(badDealBody).toContain(
      'Contact must work at the deal&#39;s company (Art Vandelay is at Vandelay Industries).',
    );

    const tooLong = await post(`/companies/${companyId}`, { name: 'x'.repeat(201) });
    expect(tooLong.status).toBe(422);
    expect(await tooLong.text()).toContain('Name must be at most 200 characters.');
  });

  it('escapes every value it shows', async () => {
    const evil = '<script>alert("x")</script>';
    const companyId = await create('/companies', { name: evil, notes: `"'><img src=x onerror=alert(1)>` });
    const contactId = await create('/contacts', { name: `${evil} Jr`, company_id: companyId });
    await create('/deals', { title: evil, company_id: companyId, contact_id: contactId, amount: '1' });
    const escaped = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;';
    for (const urlPath of [
      `/companies/${companyId}`,
      '/companies',
      '/contacts',
      '/deals',
      '/pipeline',
      '/search?q=script',
    ]) {
      const { status, body } = await page(urlPath);
      expect(status, urlPath).toBe(200);
      expect(body, urlPath).toContain(escaped);
      expect(body, urlPath).not.toContain('<script');
      expect(body, urlPath).not.toContain('<img');
    }
    // The search term itself is shown back (heading and search box), escaped as well.
    const { body } = await page(`/search?q=${encodeURIComponent('"><b>term')}`);
    expect(body).toContain('value="&quot;&gt;&lt;b&gt;term"');
    expect(body).not.toContain('<b>term');
  });

  it('matches % and _ in a search literally', async () => {
    await create('/companies', { name: '100% Organic_Farms' });
    const literal = await page(`/search?q=${encodeURIComponent('0% organic_')}`);
    expect(literal.body).toContain('100% Organic_Farms');
    expect(literal.body).toMatch(/Companies \(1\)/);
    const percent = await page('/search?q=%25');
    expect(percent.body).toMatch(/Companies \(1\)/);
  });

  it('pages long lists', async () => {
    await adminQuery("INSERT INTO companies (name) SELECT 'Paged company ' || i FROM generate_series(1, 30) AS i");
    const first = await page('/companies');
    expect(first.body.match(/class="company-row"/g)).toHaveLength(25);
    expect(first.body).toContain('href="/companies?page=2" rel="next"');
    const second = await page('/companies?page=2');
    expect(second.body).toContain('href="/companies?page=1" rel="prev"');
    expect(second.body.match(/class="company-row"/g)?.length).toBeGreaterThan(0);
  });
});

describe('sign-in', () => {
  it('lets nobody in without signing in, except to the health check', async () => {
    const stranger = new Browser();
    expect((await stranger.get('/healthz')).status).toBe(200);
    for (const urlPath of ['/pipeline', '/companies', '/search?q=a', '/users', '/deals/1/delete']) {
      const { status, location } = await stranger.get(urlPath);
      expect(status, urlPath).toBe(303);
      expect(location, urlPath).toBe(`/login?next=${encodeURIComponent(urlPath)}`);
    }
    const before = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM companies');
    const write = await stranger.post('/companies', { name: 'Sneaky' });
    expect(write.status).toBe(401);
    expect(await write.text()).toContain('Sign in first');
    expect(await adminQuery('SELECT count(*) AS n FROM companies')).toEqual(before);
  });

  it('signs in with a session cookie (HttpOnly, SameSite, Secure over HTTPS) and keeps only hashes', async () => {
    const user = new Browser();
    await user.get('/login');
    const wrong = await user.post('/login', { username: 'admin', password: 'not-the-password' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Wrong user name or password.');
    const unknown = await user.post('/login', { username: 'nobody', password: ADMIN_PASSWORD });
    expect(unknown.status).toBe(401);

    const ok = await user.post('/login', { username: 'ADMIN', password: ADMIN_PASSWORD, next: '/deals' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/deals');
    const sessionCookie = ok.headers.getSetCookie().find((c) => c.startsWith('crm_session='))!;
    expect(sessionCookie).toMatch(/; HttpOnly/);
    expect(sessionCookie).toMatch(/; SameSite=Lax/);
    expect(sessionCookie).not.toMatch(/Secure/); // plain HTTP here
    expect((await user.get('/deals')).status).toBe(200);

    // Behind an HTTPS proxy the cookie is Secure; a next that leaves the site is ignored.
    const secure = new Browser();
    await secure.get('/login');
    const viaHttps = await secure.post(
      '/login',
      { username: 'admin', password: ADMIN_PASSWORD, next: '//evil.example/x' },
      { 'x-forwarded-proto': 'https' },
    );
    expect(viaHttps.status).toBe(303);
    expect(viaHttps.headers.get('location')).toBe('/pipeline');
    expect(viaHttps.headers.getSetCookie().find((c) => c.startsWith('crm_session='))).toMatch(/; Secure/);

    // The database holds an scrypt hash and token hashes, never the password or a cookie's token.
    const users = await adminQuery<{ password_hash: string }>(
      "SELECT password_hash FROM users WHERE username = 'admin'",
    );
    expect(users[0]!.password_hash).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    const dump = JSON.stringify(await adminQuery('SELECT encode(token_hash, $$escape$$) AS t, * FROM sessions'));
    expect(dump).not.toContain(ADMIN_PASSWORD);
    expect(dump).not.toContain(user.cookies.get('crm_session'));
  });

  it('refuses a POST without the CSRF token, with another token, or from another site', async () => {
    const before = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM companies');
    const missing = await admin.request('/companies', { method: 'POST', body: new URLSearchParams({ name: 'X' }) });
    expect(missing.status).toBe(403);
    expect(await missing.text()).toContain('security token does not match');
    expect((await admin.post('/companies', { name: 'X', _csrf: 'A'.repeat(43) })).status).toBe(403);
    const crossSite = await admin.post('/companies', { name: 'X' }, { origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.text()).toContain('sent from another site');
    expect(await adminQuery('SELECT count(*) AS n FROM companies')).toEqual(before);
    // The sign-in form needs the token of its own cookie.
    const stranger = new Browser();
    expect((await stranger.post('/login', { username: 'admin', password: ADMIN_PASSWORD })).status).toBe(403);
  });

  it('has an administrator add a user, who signs in, cannot manage users, changes password and signs out', async () => {
    expect((await post('/users', { username: 'Sales', password: 'short' })).status).toBe(422);
    const added = await post('/users', { username: 'Sales', password: 'sales-password-123' });
    expect(added.status).toBe(303);
    const taken = await post('/users', { username: 'sales', password: 'sales-password-123' });
    expect(taken.status).toBe(422);
    expect(await taken.text()).toContain('User name &#39;sales&#39; is taken.');
    expect((await page('/users')).body).toMatch(/<td>sales<\/td>\s*<td>user<\/td>/);

    const sales = new Browser();
    expect((await sales.signIn('sales', 'sales-password-123')).status).toBe(303);
    const pipeline = await sales.get('/pipeline');
    expect(pipeline.body).toContain('<a href="/account" title="Your password">sales</a>');
    expect(pipeline.body).not.toContain('href="/users"');
    expect((await sales.get('/users')).status).toBe(403);
    expect((await sales.post('/users', { username: 'x', password: 'xxxxxxxxxxxxxxxx' })).status).toBe(403);

    const other = new Browser();
    expect((await other.signIn('sales', 'sales-password-123')).status).toBe(303);
    const wrongCurrent = await sales.post('/account', { current: 'nope', password: 'new-sales-password' });
    expect(wrongCurrent.status).toBe(422);
    expect(
      (await sales.post('/account', { current: 'sales-password-123', password: 'new-sales-password' })).status,
    ).toBe(303);
    // The other session of the same user ended with the change; this one goes on.
    expect((await other.get('/pipeline')).status).toBe(303);
    expect((await sales.get('/pipeline')).status).toBe(200);

    const out = await sales.post('/logout', {});
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?signed_out=1');
    expect(sales.cookies.has('crm_session')).toBe(false);
    // The old cookie is dead on the server too, not only forgotten by the browser.
    const replay = new Browser();
    const [row] = await adminQuery<{ n: string }>(
      "SELECT count(*) AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'sales'",
    );
    expect(Number(row!.n)).toBe(0);
    expect((await replay.get('/pipeline')).status).toBe(303);

    // The administrator deletes the user, after a confirmation; not themselves.
    const [salesRow] = await adminQuery<{ id: string }>("SELECT id FROM users WHERE username = 'sales'");
    const confirm = await page(`/users/${salesRow!.id}/delete`);
    expect(confirm.body).toContain('Delete user sales?');
    expect((await post(`/users/${salesRow!.id}/delete`, {})).status).toBe(303);
    expect((await new Browser().signIn('sales', 'new-sales-password')).status).toBe(401);
    const [adminRow] = await adminQuery<{ id: string }>("SELECT id FROM users WHERE username = 'admin'");
    expect((await post(`/users/${adminRow!.id}/delete`, {})).status).toBe(403);
  });

  it('refuses a name after 10 failed sign-ins in 15 minutes', async () => {
    const guesser = new Browser();
    await guesser.get('/login');
    for (let i = 0; i < 10; i++) {
      expect((await guesser.post('/login', { username: 'target', password: `guess-${i}` })).status).toBe(401);
      await guesser.get('/login'); // each answer renders a new form
    }
    const blocked = await guesser.post('/login', { username: 'target', password: 'guess-10' });
    expect(blocked.status).toBe(429);
    expect(await blocked.text()).toContain('Too many failed sign-ins for &#39;target&#39;');
  });
});

describe('amounts, deletion, order, times', () => {
  it('reads amounts in French and English formats and refuses ambiguous ones', async () => {
    const companyId = await create('/companies', { name: 'Amounts SARL' });
    const cases: [string, string][] = [
      ['4 500,50', '4500.50'],
      ['4\u202f500,50', '4500.50'], // narrow no-break space, as French number formatting writes it
      ['4\u00a0500', '4500.00'],
      ['4.500,5', '4500.50'],
      ['4,500.50', '4500.50'],
      ['1,5', '1.50'],
    ];
    for (const [typed, stored] of cases) {
      const id = await create('/deals', { title: `Amount ${typed}`, company_id: companyId, amount: typed });
      const [row] = await adminQuery<{ amount: string }>('SELECT amount::text FROM deals WHERE id = $1', [id]);
      expect(row!.amount, typed).toBe(stored);
    }
    const ambiguous = await post('/deals', { title: 'Ambiguous', company_id: companyId, amount: '1,500' });
    expect(ambiguous.status).toBe(422);
    const body = await ambiguous.text();
    expect(body).toContain('Amount &#39;1,500&#39; is ambiguous (thousands or decimals?): write 1500 or 1 500');
    expect(body).toContain('value="1,500"'); // kept as typed
    const spaces = await post('/deals', { title: 'Bad', company_id: companyId, amount: '45 00' });
    expect(await spaces.text()).toContain('Amount has spaces that do not separate thousands');
  });

  it('parses amounts exactly (validate.js)', async () => {
    const { parseAmount } = (await import(pathToFileURL(path.join(CRM_DIR, 'validate.js')).href)) as {
      parseAmount: (text: string) => { amount?: string; error?: string };
    };
    expect(parseAmount('1 000 000,05')).toEqual({ amount: '1000000.05' });
    expect(parseAmount('1.000.000')).toEqual({ amount: '1000000' });
    expect(parseAmount('1,000,000.5')).toEqual({ amount: '1000000.5' });
    expect(parseAmount('0,500').error).toMatch(/at most 2 decimals/);
    expect(parseAmount('1.500').error).toMatch(/ambiguous/);
    expect(parseAmount('1,23,456').error).toMatch(/misplaced separators/);
    expect(parseAmount('-3').error).toBe('must not be negative');
    expect(parseAmount('12 €').error).toMatch(/must be a number/);
    expect(parseAmount('1000000000000').error).toMatch(/below one thousand billion/);
  });

  it('deletes a company with its contacts and deals, after a confirmation that says so', async () => {
    const companyId = await create('/companies', { name: 'Doomed Inc' });
    const contactId = await create('/contacts', { name: 'Doomed Person', company_id: companyId });
    const dealId = await create('/deals', {
      title: 'Doomed deal',
      company_id: companyId,
      contact_id: contactId,
      amount: '10',
    });
    expect((await post(`/deals/${dealId}/stage`, { stage: 'won' })).status).toBe(303);

    expect((await page(`/companies/${companyId}`)).body).toContain(`href="/companies/${companyId}/delete"`);
    const confirm = await page(`/companies/${companyId}/delete`);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Delete company Doomed Inc?');
    expect(confirm.body).toContain('Its 1 contact and 1 deal (with their stage history) are deleted too.');
    expect(confirm.body).toContain('This cannot be undone.');
    expect((await page(`/companies/${companyId}`)).status).toBe(200); // the confirmation page changed nothing

    const deleted = await post(`/companies/${companyId}/delete`, {});
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get('location')).toBe('/companies?deleted=1');
    expect((await page('/companies?deleted=1')).body).toContain('Deleted.');
    expect((await page(`/companies/${companyId}`)).status).toBe(404);
    const left = await adminQuery(
      `SELECT (SELECT count(*) FROM contacts WHERE id = $2)::int AS contacts,
              (SELECT count(*) FROM deals WHERE id = $3)::int AS deals,
              (SELECT count(*) FROM deal_stage_changes WHERE deal_id = $3)::int AS history
       FROM companies WHERE id = $1 UNION ALL SELECT 0, 0, 0`,
      [companyId, contactId, dealId],
    );
    expect(left).toEqual([{ contacts: 0, deals: 0, history: 0 }]);
    expect((await post(`/companies/${companyId}/delete`, {})).status).toBe(404);
  });

  it('deletes a contact (its deals stay with the company) and a deal (with its history)', async () => {
    const companyId = await create('/companies', { name: 'Stays SA' });
    const contactId = await create('/contacts', { name: 'Leaving Person', company_id: companyId });
    const dealId = await create('/deals', {
      title: 'Kept deal',
      company_id: companyId,
      contact_id: contactId,
      amount: '5',
    });
    const confirm = await page(`/contacts/${contactId}/delete`);
    expect(confirm.body).toContain('Its deal stays with Stays SA, without a contact.');
    expect((await post(`/contacts/${contactId}/delete`, {})).status).toBe(303);
    expect(await adminQuery('SELECT contact_id FROM deals WHERE id = $1', [dealId])).toEqual([{ contact_id: null }]);
    expect((await page(`/deals/${dealId}`)).status).toBe(200);

    expect((await post(`/deals/${dealId}/stage`, { stage: 'lost' })).status).toBe(303);
    expect((await page(`/deals/${dealId}/delete`)).body).toContain('The deal and its stage history are deleted');
    expect((await post(`/deals/${dealId}/delete`, {})).status).toBe(303);
    expect(await adminQuery('SELECT id FROM deals WHERE id = $1', [dealId])).toEqual([]);
    expect(await adminQuery('SELECT id FROM deal_stage_changes WHERE deal_id = $1', [dealId])).toEqual([]);
    expect(await adminQuery('SELECT name FROM companies WHERE id = $1', [companyId])).toEqual([{ name: 'Stays SA' }]);
  });

  it('sorts names naturally: numbers by value, case and accents only breaking ties', async () => {
    for (const name of [
      'Natsort item 10',
      'natsort Zeta',
      'natsort Élan',
      'natsort item 2',
      'Natsort elan',
      'natsort eagle',
    ]) {
      await create('/companies', { name });
    }
    const { body } = await page('/search?q=natsort');
    const order = [...body.matchAll(/<li><a href="\/companies\/\d+">([^<]+)<\/a><\/li>/g)].map((m) => m[1]);
    expect(order).toEqual([
      'natsort eagle',
      'Natsort elan',
      'natsort Élan',
      'natsort item 2',
      'Natsort item 10',
      'natsort Zeta',
    ]);
  });

  it('shows times with their zone (CRM_TIME_ZONE)', async () => {
    const companyId = await create('/companies', { name: 'Timely GmbH' });
    const dealId = await create('/deals', { title: 'Timed deal', company_id: companyId, amount: '1' });
    expect((await post(`/deals/${dealId}/stage`, { stage: 'qualified' })).status).toBe(303);
    const [row] = await adminQuery<{ local: string }>(
      `SELECT to_char(changed_at AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI') AS local FROM deal_stage_changes
       WHERE deal_id = $1`,
      [dealId, TIME_ZONE],
    );
    const { body } = await page(`/deals/${dealId}`);
    // Europe/Paris: CET in winter, CEST in summer.
    expect(body).toMatch(new RegExp(`<td>${row!.local} CES?T</td>`));
    expect(body).toMatch(/<dt>Updated<\/dt>\s*<dd>\d{4}-\d\d-\d\d \d\d:\d\d CES?T<\/dd>/);
  });

  it('refuses to start with an unknown CRM_TIME_ZONE, saying so', async () => {
    const run = await runCommand(
      manifest.web!,
      CRM_DIR,
      appEnv(server.port, ADDON, { PORT: String(await freePort()), CRM_TIME_ZONE: 'Mars/Olympus' }),
      20_000,
    );
    expect(run.code).toBe(1);
    expect(run.output).toContain("CRM_TIME_ZONE must be an IANA time zone (e.g. Europe/Paris), got 'Mars/Olympus'");
  });
});

describe('resilience', () => {
  it('answers reads right after every session of its database was cut (a failover of the router)', async () => {
    await Promise.all([page('/companies'), page('/contacts'), page('/deals'), page('/pipeline')]);
    const cut = await adminQuery<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name = 'hox-example-crm'`,
      [ADDON.name],
      'postgres',
    );
    expect(Number(cut[0]!.n)).toBeGreaterThan(0);
    const pages = await Promise.all(['/companies', '/contacts', '/deals', '/pipeline', '/healthz'].map(page));
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200, 200, 200]);
    await waitFor(
      'the lost connections to be logged',
      () => app.output().includes('idle database connection lost'),
      5_000,
    );
  });

  it('retries a read after a cut, never a write that was sent, and a write whose connect failed', async () => {
    const { createDb } = (await import(pathToFileURL(path.join(CRM_DIR, 'db.js')).href)) as CrmDbModule;
    const lines: string[] = [];
    const url = appEnv(server.port, ADDON)['DATABASE_URL'];
    const db = createDb({ connectionString: url, retryDelaysMs: [10, 10], log: (line) => lines.push(line) });
    try {
      // The session dies while running the statement: a read is repeated, a write is not.
      const suicide = 'SELECT pg_terminate_backend(pg_backend_pid())';
      await expect(db.write(suicide)).rejects.toMatchObject({ name: 'DatabaseUnavailableError' });
      expect(lines.filter((line) => line.includes('retry'))).toEqual([]);
      await expect(db.read(suicide)).rejects.toMatchObject({ name: 'DatabaseUnavailableError' });
      expect(lines.filter((line) => line.includes('read failed'))).toHaveLength(2);
      expect((await db.read('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
    // Nothing listens: the connection is refused, the statement never left, a write is repeated.
    lines.length = 0;
    const refused = `postgresql://crm@127.0.0.1:${await freePort()}/crm`;
    const down = createDb({ connectionString: refused, retryDelaysMs: [10, 10], log: (line) => lines.push(line) });
    try {
      await expect(down.write('INSERT INTO companies (name) VALUES ($1)', ['never'])).rejects.toMatchObject({
        name: 'DatabaseUnavailableError',
      });
      expect(lines.filter((line) => line.includes('write failed (ECONNREFUSED)'))).toHaveLength(2);
    } finally {
      await down.close();
    }
  });

  it('answers 503 while PostgreSQL is down and serves again once it is back, without a restart', async () => {
    const pid = app.child.pid;
    const port = server.port;
    await server.stop();
    expect((await page('/healthz')).status).toBe(503);
    const down = await page('/companies');
    expect(down.status).toBe(503);
    expect(down.body).toContain('database unavailable, try again');
    const write = await post(`/companies`, { name: 'While down' });
    expect(write.status).toBe(503);

    // The same server comes back on the same address (empty: the harness starts a fresh cluster).
    server = await startPostgres({ port });
    await createAddonDatabase(server, ADDON);
    const migrated = await release();
    expect(migrated.code, migrated.output).toBe(0);
    await waitFor('the health check to pass again', async () => (await page('/healthz')).status === 200, 20_000);
    // A fresh cluster: no session survived; the first sign-in creates the administrator again.
    expect((await page('/companies')).status).toBe(303);
    expect((await admin.signIn('admin', ADMIN_PASSWORD)).status).toBe(303);
    expect((await page('/companies')).status).toBe(200);
    const companyId = await create('/companies', { name: 'After the restart' });
    expect((await page(`/companies/${companyId}`)).body).toContain('After the restart');
    expect(app.child.pid).toBe(pid);
    expect(app.child.exitCode).toBeNull();
  }, 90_000);

  it('on SIGTERM finishes the request in flight, then exits 0 without waiting out its grace period', async () => {
    const body = `name=Finished+during+shutdown&_csrf=${admin.csrf}`;
    const cookie = [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const answered = new Promise<{ status: number; location: string }>((resolve, reject) => {
      const request = http.request(`${app.baseUrl}/companies`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          cookie,
        },
      });
      request.on('response', (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0, location: String(response.headers.location) });
      });
      request.on('error', reject);
      request.write(body.slice(0, 10)); // the request is in flight: headers and half of the body sent
      setTimeout(() => {
        app.child.kill('SIGTERM');
        setTimeout(() => request.end(body.slice(10)), 300);
      }, 200);
    });
    const startedAt = Date.now();
    const response = await answered;
    expect(response.status).toBe(303);
    expect(await app.exited).toBe(0);
    // No keep-alive connection was left to time out: the server closed without the grace period's cut
    // (8 s) nor the hard exit (9.5 s, code 1). How long it took is a figure, not an assertion.
    console.log(`crm exited ${Date.now() - startedAt} ms after answering the request in flight`);
    expect(app.output()).toContain('SIGTERM: no new connections');
    expect(app.output()).not.toContain('requests still running after');
    const id = /\/companies\/(\d+)/.exec(response.location)?.[1];
    const rows = await adminQuery<{ name: string }>('SELECT name FROM companies WHERE id = $1', [id]);
    expect(rows).toEqual([{ name: 'Finished during shutdown' }]);
    await expect(fetch(`${app.baseUrl}/healthz`)).rejects.toThrow();
  });
});
