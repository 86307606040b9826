/**
 * The web console on a real platform: `hox up --with-pilot` (a 3-member hyper_db cluster and the CRM on one node,
 * the monitor beside them), driven in Debian's Chromium (playwright-core, never a downloaded browser). Signing in
 * with a wrong token and with the admin's; every view with the platform's real data; a switchover and an app
 * rollback done from the console that take effect (and show up without reloading: the change feed); a user who
 * sees only their own trees; the page at a phone's width; axe-core finding no serious accessibility problem.
 * Screenshots of each view are left in a directory under the system's temporary directory, printed by the test.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../src/testing/chromium.js';
import { freePort } from '../src/testing/free-port.js';
import { cleanUpNodePartitions } from './support/agent-harness.js';
import { ROOT, runHox, type HoxRun } from './support/hox-cli.js';
import { startHoxUp, type HoxUpRun } from './support/hox-up.js';

const PARTITIONS = 12;
const NODE_ID = 'console-test';
const PHONE = { width: 390, height: 844 };
/** How long what the console shows may take to appear on a busy machine (expect.poll waits 1 s by default). */
const SOON = { timeout: 20_000, interval: 250 };
const DESKTOP = { width: 1280, height: 900 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const needsChromium = !existsSync(CHROMIUM);
if (needsChromium && process.env['CI'] === 'true')
  throw new Error(`${CHROMIUM} is missing: scripts/install-system-deps.sh installs Debian's chromium`);
if (process.getuid?.() !== 0 && process.env['CI'] === 'true')
  throw new Error('the console test runs hox up, whose partitions need root');

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
}

describe.skipIf(needsChromium || process.getuid?.() !== 0)('the web console', () => {
  let home: string;
  let dataDir: string;
  let consoleDir: string;
  let screenshots: string;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let adminToken: string;
  let admin: MasterClient;
  let up: HoxUpRun | undefined;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  const hox = (args: string[]): Promise<HoxRun> => runHox(args, env);

  async function newPage(viewport = DESKTOP): Promise<Page> {
    // The master's certificate comes from the platform CA, which this browser does not trust.
    const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true });
    contexts.push(context);
    return context.newPage();
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.goto(`${url}/`);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** The whole page, or what the screen shows (`fullPage` false: a long list). */
  async function shoot(page: Page, name: string, fullPage = true): Promise<void> {
    await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage });
  }

  /** axe-core's serious and critical findings on what the page shows now. */
  async function accessibilityProblems(page: Page): Promise<string[]> {
    // Evaluated through the DevTools protocol: the page's CSP (scripts from the master only) does not apply.
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate<AxeResult>('axe.run(document, { resultTypes: ["violations"] })');
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }

  /** The page is no wider than the screen: nothing to scroll sideways but inside a table's own box. */
  async function overflow(page: Page): Promise<number> {
    return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'hox-console-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    dataDir = join(home, 'data');
    consoleDir = join(home, 'console');
    // The console from the sources, as npm run build makes it.
    await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'bundle-console.mjs'), '--outdir', consoleDir]);
    screenshots = mkdtempSync(join(tmpdir(), 'hox-console-screens-'));
    console.log(`screenshots of the console: ${screenshots}`);
    env = { ...process.env, HOX_CONFIG: join(home, 'config.json') };
    delete env.HOX_MASTER_URL;
    delete env.HOX_TOKEN;
    const port = await freePort();
    up = await startHoxUp(
      [
        '--with-pilot',
        '--data-dir',
        dataDir,
        '--listen',
        `127.0.0.1:${port}`,
        '--partitions',
        String(PARTITIONS),
        '--node-id',
        NODE_ID,
        '--console-dir',
        consoleDir,
      ],
      env,
    );
    const output = up.output();
    const printed = /^ {2}console: +(https:\/\/\S+)\/ /m.exec(output)?.[1];
    if (printed === undefined) throw new Error(`hox up printed no console URL:\n${output}`);
    url = printed;
    adminToken = readFileSync(join(dataDir, 'master', 'admin-token'), 'utf8').trim();
    admin = new MasterClient({ url, token: adminToken, ca: readFileSync(join(dataDir, 'master', 'ca.pem'), 'utf8') });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS], timeout: 60_000 });
  }, 400_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await up?.stop();
    await cleanUpNodePartitions(NODE_ID, join(dataDir, 'node'), PARTITIONS);
    rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('is served by the master with a strict content security policy, its files immutable', async () => {
    const ca = readFileSync(join(dataDir, 'master', 'ca.pem'), 'utf8');
    const page = await newPage();
    const response = await page.goto(`${url}/`);
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).toContain("connect-src 'self'");
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-content-type-options']).toBe('nosniff');
    const script = /src="(\/console\/console-[A-Za-z0-9]+\.js)"/.exec(await response!.text())?.[1];
    expect(script).toBeDefined();
    const asset = await page.request.get(`${url}${script}`);
    expect(asset.status()).toBe(200);
    expect(asset.headers()['cache-control']).toContain('immutable');
    expect((await page.request.get(`${url}/console/../admin-token`)).status()).toBe(404);
    expect((await page.request.get(`${url}/console/nothing.js`)).status()).toBe(404);
    // The page asks nothing of anyone else: every request it makes goes to the master.
    const elsewhere: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) elsewhere.push(r.url());
    });
    await page.reload();
    await page.getByLabel('Token').waitFor();
    expect(elsewhere).toEqual([]);
    expect(ca).toContain('BEGIN CERTIFICATE');
  });

  it('refuses a wrong token and says why', async () => {
    const page = await newPage();
    // With the keyboard alone: the token field is the first stop, Enter signs in.
    await page.goto(`${url}/`);
    await page.getByLabel('Token').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');
    await page.keyboard.type('hox_not-a-token-of-this-master');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent(), SOON).toContain('the master refused this token');
    await expect(page.getByLabel('Token').isVisible()).resolves.toBe(true);
    await shoot(page, 'sign-in-refused');
    expect(await accessibilityProblems(page)).toEqual([]);
  });

  it("shows the admin the node, the trees and their health, live; each view's real data", async () => {
    const page = await newPage();
    await signIn(page, adminToken);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const nodes = page.getByRole('region', { name: 'Compute nodes' });
    await expect.poll(() => nodes.getByRole('link', { name: NODE_ID }).count(), SOON).toBe(1);
    const trees = page.getByRole('region', { name: 'Instance trees' });
    for (const title of ['pilot-db', 'crm'])
      await expect.poll(() => trees.getByRole('link', { name: title, exact: true }).count(), SOON).toBe(1);
    await expect.poll(() => page.locator('.feed').textContent(), SOON).toBe('live');
    // The first Tab reaches "Skip to content", which takes the focus to the view's heading.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    await shoot(page, 'overview');
    expect(await accessibilityProblems(page)).toEqual([]);

    await nodes.getByRole('link', { name: NODE_ID }).click();
    await page.getByRole('heading', { name: `Compute node ${NODE_ID}` }).waitFor();
    const partitions = page.getByRole('region', { name: 'Partitions in use' });
    await expect.poll(() => partitions.getByRole('row').count(), SOON).toBeGreaterThan(4);
    await expect
      .poll(() => page.getByRole('region', { name: 'Software installations' }).textContent(), SOON)
      .toContain('hyper_db');
    await shoot(page, 'node');
    expect(await accessibilityProblems(page)).toEqual([]);

    await page.goto(`${url}/#/trees/crm`);
    await page.getByRole('heading', { name: 'crm', exact: true }).waitFor();
    const app = page.getByRole('region', { name: 'App' });
    await expect.poll(() => app.getByRole('link', { name: /^http:\/\// }).count(), SOON).toBe(1);
    // Config values are hidden until revealed.
    const parameters = page.getByRole('region', { name: 'Connection parameters' });
    expect(await parameters.textContent()).not.toContain(adminToken);
    await expect.poll(() => page.getByRole('region', { name: 'Logs' }).locator('pre').count(), SOON).toBeGreaterThan(0);
    await shoot(page, 'app');
    expect(await accessibilityProblems(page)).toEqual([]);
  });

  it('switches the cluster over from the console, with a confirmation, and shows the new primary without a reload', async () => {
    const before = await admin.call('listTreeStatus', { title: 'pilot-db' });
    const root = before.result_list[0]!.instance_list.find(
      (i) => i.instance_guid === before.result_list[0]!.root_instance_guid,
    )!;
    const oldPrimary = root.connection_parameters['primary'];
    expect(typeof oldPrimary).toBe('string');

    const page = await newPage();
    await signIn(page, adminToken);
    await page.goto(`${url}/#/trees/pilot-db`);
    const cluster = page.getByRole('region', { name: 'PostgreSQL cluster' });
    await expect
      .poll(() => cluster.getByRole('table', { name: 'Members' }).getByRole('row').count(), { timeout: 30_000 })
      .toBe(4);
    await shoot(page, 'cluster');
    expect(await accessibilityProblems(page)).toEqual([]);

    await cluster.getByRole('button', { name: 'Switchover' }).click();
    const dialog = page.getByRole('dialog', { name: 'Switch over pilot-db?' });
    await dialog.waitFor();
    await shoot(page, 'cluster-switchover-confirm');
    await dialog.getByRole('button', { name: 'Switch over' }).click();
    await expect.poll(() => cluster.getByRole('status').first().textContent(), SOON).toContain('requested');
    // The view follows the change feed: the new primary shows up with no reload.
    const primaryFact = cluster.locator('dl.facts dd').nth(1);
    await expect.poll(() => primaryFact.textContent(), { timeout: 90_000, interval: 1000 }).toMatch(/^member-\d$/);
    await expect
      .poll(async () => (await primaryFact.textContent()) !== oldPrimary, { timeout: 90_000, interval: 1000 })
      .toBe(true);
    await expect.poll(() => cluster.textContent(), { timeout: 30_000 }).toContain('Last switchover');
    const status = await hox(['db', 'status', 'pilot-db', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const primary = (JSON.parse(status.stdout) as { primary: string }).primary;
    expect(primary).not.toBe(oldPrimary);
    expect(await primaryFact.textContent()).toBe(primary);
    await shoot(page, 'cluster-after-switchover');
  }, 180_000);

  it('requests a restore into a new cluster from the console, and refuses a second one of the same name', async () => {
    const page = await newPage();
    await signIn(page, adminToken);
    await page.goto(`${url}/#/trees/pilot-db`);
    const cluster = page.getByRole('region', { name: 'PostgreSQL cluster' });
    await cluster.getByText('Restore into a new cluster').click();
    await cluster.getByLabel("New cluster's name").fill('pilot-copy');
    await cluster.getByLabel('Members').fill('1');
    await cluster.getByRole('button', { name: 'Restore', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: "Restore pilot-db into 'pilot-copy'?" });
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await expect
      .poll(() => cluster.getByRole('status').last().textContent(), SOON)
      .toContain('restore to its latest transaction requested');
    await shoot(page, 'cluster-restore');
    // A second restore under the same name is refused with the master's reason, nothing requested.
    await cluster.getByRole('button', { name: 'Restore', exact: true }).click();
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await expect
      .poll(() => cluster.getByRole('alert').last().textContent(), SOON)
      .toContain("'pilot-copy' already exists");

    await cluster.getByRole('link', { name: 'Follow pilot-copy' }).click();
    await page.getByRole('heading', { name: 'pilot-copy', exact: true }).waitFor();
    await page.getByRole('region', { name: 'PostgreSQL cluster' }).waitFor();
    const [copy] = (await admin.call('listTreeStatus', { title: 'pilot-copy' })).result_list;
    const root = copy?.instance_list.find((i) => i.instance_guid === copy.root_instance_guid);
    // What was requested is a restore of pilot-db's backups, to its latest transaction, with one member.
    const restore = root?.parameters['restore'] as Record<string, unknown> | undefined;
    expect(root?.parameters['members']).toBe(1);
    expect(restore?.['backup_url']).toMatch(/^https:\/\//);
    expect(restore).not.toHaveProperty('target_time');
    await shoot(page, 'cluster-restoring');
    // How a restore runs is for test/hyperdb-backups.test.ts and test-long/hyperdb-faults.test.ts: this one stops here.
    await admin.call('requestInstance', {
      title: 'pilot-copy',
      software_release_uri: 'hyper_db',
      software_type: 'cluster',
      state: 'destroyed',
    });
  }, 120_000);

  it('rolls the app back from the console and the replicas serve the rollback', async () => {
    // A second release (a config change), to roll back from.
    const set = await hox(['app', 'config', 'set', 'crm', 'CONSOLE_TEST=1', '--no-wait']);
    expect(set.code, set.stderr).toBe(0);
    const page = await newPage();
    await signIn(page, adminToken);
    await page.goto(`${url}/#/trees/crm`);
    const releases = page.getByRole('table', { name: 'Releases' });
    await releases.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByRole('dialog', { name: 'Roll crm back to v1?' }).getByRole('button', { name: 'Roll back' }).click();
    await expect
      .poll(() => page.getByRole('region', { name: 'App' }).getByRole('status').first().textContent(), SOON)
      .toContain('v3 (rollback to v1) requested');
    await expect
      .poll(async () => releases.getByRole('row').nth(1).textContent(), { timeout: 30_000 })
      .toContain('rollback to v1');
    // The replicas take it: the app's facts say v3 without a reload.
    await expect
      .poll(() => page.getByRole('region', { name: 'App' }).locator('dl.facts').textContent(), {
        timeout: 120_000,
        interval: 1000,
      })
      .toContain('v3');
    const status = await hox(['app', 'status', 'crm', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ release: 3 });
    const config = await hox(['app', 'config', 'list', 'crm', '--json']);
    expect(config.stdout).not.toContain('CONSOLE_TEST');
    await shoot(page, 'app-after-rollback');
  }, 180_000);

  it('lists the audit trail with the actions done from the console, and the alerts', async () => {
    const page = await newPage();
    await signIn(page, adminToken);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const rows = page.getByRole('row');
    // The switchover and the rollback were requests of the trees, made with the admin's token.
    await expect
      .poll(() => rows.filter({ hasText: 'title=pilot-db' }).filter({ hasText: 'requestInstance' }).count(), SOON)
      .toBeGreaterThan(0);
    await expect
      .poll(() => rows.filter({ hasText: 'title=crm' }).filter({ hasText: 'requestInstance' }).count(), SOON)
      .toBeGreaterThan(0);
    await shoot(page, 'audit', false);
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.getByLabel('Also those resolved in the last 7 days').check();
    await expect.poll(() => page.locator('main').textContent(), SOON).toMatch(/No alert\.|Severity/);
    await shoot(page, 'alerts');
    expect(await accessibilityProblems(page)).toEqual([]);
  });

  it("shows a user only their own trees, and refuses them the admin's", async () => {
    const created = await hox(['user', 'create', 'console-alice', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const aliceToken = (JSON.parse(created.stdout) as { token: string }).token;
    const alice = admin.withToken(aliceToken);
    await alice.call('requestInstance', {
      title: 'alice-hello',
      software_release_uri: 'demo',
      software_type: 'default',
    });

    const page = await newPage();
    await signIn(page, aliceToken);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const trees = page.getByRole('region', { name: 'Instance trees' });
    await expect.poll(() => trees.getByRole('link', { name: 'alice-hello' }).count(), SOON).toBe(1);
    expect(await trees.getByRole('link', { name: 'pilot-db' }).count()).toBe(0);
    expect(await trees.getByRole('link', { name: 'crm', exact: true }).count()).toBe(0);
    // No node list for a user (the API refuses it; the console does not ask).
    expect(await page.getByRole('region', { name: 'Compute nodes' }).count()).toBe(0);
    await expect.poll(() => page.locator('header .who').textContent(), SOON).toContain('user');
    await shoot(page, 'user-overview');

    // The admin's cluster by its address: the master answers as for a tree that does not exist.
    await page.goto(`${url}/#/trees/pilot-db`);
    await expect.poll(() => page.locator('main').textContent(), SOON).toContain("instance tree 'pilot-db' not found");
    expect(await page.locator('main').textContent()).not.toContain('member-');
    // Their audit trail holds their own calls only.
    await page.getByRole('link', { name: 'Audit log' }).click();
    const rows = page.getByRole('row');
    await expect.poll(() => rows.filter({ hasText: 'title=alice-hello' }).count(), SOON).toBeGreaterThan(0);
    expect(await rows.filter({ hasText: 'title=pilot-db' }).count()).toBe(0);
    expect(await rows.filter({ hasText: 'admin' }).count()).toBe(0);
  });

  it('reads at a phone’s width: nothing wider than the screen', async () => {
    const page = await newPage(PHONE);
    await signIn(page, adminToken);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await expect
      .poll(() => page.getByRole('region', { name: 'Instance trees' }).getByRole('row').count(), SOON)
      .toBeGreaterThan(2);
    expect(await overflow(page)).toBe(0);
    await shoot(page, 'phone-overview');
    await page.goto(`${url}/#/trees/pilot-db`);
    await page.getByRole('table', { name: 'Members' }).waitFor();
    expect(await overflow(page)).toBe(0);
    await shoot(page, 'phone-cluster');
  });
});
