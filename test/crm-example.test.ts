/**
 * examples/crm, the pilot app, run as hyper_edge runs it — the Procfile's
 * `release:` then `web:` against a real PostgreSQL, with the addon's
 * environment — and driven over HTTP: the CRM flows, validation, escaping,
 * migrations, riding out cut sessions and a database restart, graceful stop.
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
  postForm,
  runCommand,
  startApp,
  type AddonDatabase,
  type AppProcess,
} from './support/example-app.js';

const CRM_DIR = fileURLToPath(new URL('../examples/crm/', import.meta.url));
const ADDON: AddonDatabase = { name: 'crm', user: 'crm', password: "s3cret'pass" };
const VERSION = 'v7';

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

/** Runs the manifest's release command against `database` (the addon's by default). */
async function release(addon: AddonDatabase = ADDON) {
  return runCommand(manifest.release!, CRM_DIR, appEnv(server.port, addon));
}

async function page(urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(app.baseUrl + urlPath);
  return { status: response.status, body: await response.text() };
}

/** POSTs a form that must succeed; returns the id in the redirect. */
async function create(urlPath: string, fields: Record<string, string>): Promise<string> {
  const response = await postForm(app.baseUrl + urlPath, fields);
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
    appEnv(server.port, ADDON, { HOST: '127.0.0.1', PORT: String(appPort), HOX_APP_VERSION: VERSION }),
  );
}, 120_000);

afterAll(async () => {
  await app?.stop(2_000);
  await server?.stop();
});

it('describes itself to hyper_edge: Procfile processes, health check, postgres addon', () => {
  expect(manifest).toMatchObject({
    runtime: 'node',
    web: 'node server.js',
    release: 'node migrate.js',
    healthcheck: { path: '/healthz', status: 200, bodyContains: 'ok' },
    addons: [{ kind: 'postgres', name: 'crm' }],
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
    expect(rows.map((row) => row.name)).toEqual(['001_companies_contacts_deals', '002_deal_stage_changes']);
  });

  it('serialises concurrent runs on a fresh database: both succeed, each migration is applied once', async () => {
    const fresh: AddonDatabase = { name: 'crm_concurrent', user: 'crm_concurrent', password: 'pw' };
    await createAddonDatabase(server, fresh);
    const runs = await Promise.all([release(fresh), release(fresh), release(fresh)]);
    for (const run of runs) expect(run.code, run.output).toBe(0);
    const applied = runs.map((run) => Number(/(\d+) applied now/.exec(run.output)?.[1]));
    expect(applied.sort((a, b) => a - b)).toEqual([0, 0, 2]);
    const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM schema_migrations', [], fresh.name);
    expect(Number(rows[0]!.n)).toBe(2);
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

    const moved = await postForm(`${app.baseUrl}/deals/${dealId}/stage`, { stage: 'won' });
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
    const noName = await postForm(`${app.baseUrl}/companies`, { name: '  ', website: 'https://kept.example' });
    expect(noName.status).toBe(422);
    const noNameBody = await noName.text();
    expect(noNameBody).toContain('Name is required.');
    expect(noNameBody).toContain('value="https://kept.example"');

    const badUrl = await postForm(`${app.baseUrl}/companies`, { name: 'X', website: 'javascript:alert(1)' });
    expect(badUrl.status).toBe(422);
    expect(await badUrl.text()).toContain('Website must be an http:// or https:// address.');

    const companyId = await create('/companies', { name: 'Vandelay Industries' });
    const otherId = await create('/companies', { name: 'Kramerica' });
    const badEmail = await postForm(`${app.baseUrl}/contacts`, { name: 'Art', company_id: companyId, email: 'nope' });
    expect(badEmail.status).toBe(422);
    expect(await badEmail.text()).toContain('Email must look like name@example.org.');

    const contactId = await create('/contacts', { name: 'Art Vandelay', company_id: companyId });
    const badDeal = await postForm(`${app.baseUrl}/deals`, {
      title: '',
      company_id: otherId,
      contact_id: contactId,
      amount: '-5',
    });
    expect(badDeal.status).toBe(422);
    const badDealBody = await badDeal.text();
    expect(badDealBody).toContain('Title is required.');
    expect(badDealBody).toContain('Amount must be a non-negative number');
    expect(badDealBody).toContain(
      'Contact must work at the deal&#39;s company (Art Vandelay is at Vandelay Industries).',
    );

    const tooLong = await postForm(`${app.baseUrl}/companies/${companyId}`, { name: 'x'.repeat(201) });
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
    const write = await postForm(`${app.baseUrl}/companies`, { name: 'While down' });
    expect(write.status).toBe(503);

    // The same server comes back on the same address (empty: the harness starts a fresh cluster).
    server = await startPostgres({ port });
    await createAddonDatabase(server, ADDON);
    const migrated = await release();
    expect(migrated.code, migrated.output).toBe(0);
    await waitFor('the health check to pass again', async () => (await page('/healthz')).status === 200, 20_000);
    expect((await page('/companies')).status).toBe(200);
    const companyId = await create('/companies', { name: 'After the restart' });
    expect((await page(`/companies/${companyId}`)).body).toContain('After the restart');
    expect(app.child.pid).toBe(pid);
    expect(app.child.exitCode).toBeNull();
  }, 90_000);

  it('on SIGTERM finishes the request in flight, then exits 0 promptly', async () => {
    const body = 'name=Finished+during+shutdown';
    const answered = new Promise<{ status: number; location: string }>((resolve, reject) => {
      const request = http.request(`${app.baseUrl}/companies`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
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
    // Well within the platform's 10 s: no keep-alive connection is left to time out.
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(app.output()).toContain('SIGTERM: no new connections');
    const id = /\/companies\/(\d+)/.exec(response.location)?.[1];
    const rows = await adminQuery<{ name: string }>('SELECT name FROM companies WHERE id = $1', [id]);
    expect(rows).toEqual([{ name: 'Finished during shutdown' }]);
    await expect(fetch(`${app.baseUrl}/healthz`)).rejects.toThrow();
  });
});
