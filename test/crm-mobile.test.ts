/**
 * examples/crm on a phone: every page at 390 px wide in a real Chromium (Debian's /usr/bin/chromium, headless),
 * driven by playwright-core (the library only: never `playwright install`, never a downloaded browser). Nothing may
 * widen the page beyond the screen, and the search box may not cover the menu. A screenshot of each page is left in
 * a directory under the system's temporary directory, printed by the test.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS } from '../src/testing/chromium.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readAppManifest } from '../src/releases/hyper_edge/manifest/app-manifest.js';
import { startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import {
  appEnv,
  createAddonDatabase,
  freePort,
  runCommand,
  startApp,
  type AddonDatabase,
  type AppProcess,
} from './support/example-app.js';
import { signInToCrm, type CrmClient } from './support/crm-client.js';

const CRM_DIR = fileURLToPath(new URL('../examples/crm/', import.meta.url));
const ADDON: AddonDatabase = { name: 'crm_mobile', user: 'crm_mobile', password: 'mobile-pw' };
const ADMIN_PASSWORD = 'mobile-admin-password';
const PHONE = { width: 390, height: 844 };

/** What a page looks like at the phone's width: how wide it is, what sticks out, whether the search box hides a link. */
interface Layout {
  viewport: number;
  scrollWidth: number;
  sticking: string[];
  searchCovers: string[];
}

const MEASURE = `(() => {
  const viewport = document.documentElement.clientWidth;
  const sticking = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > viewport + 0.5 && !el.closest('.table-wrap'))
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' ' + Math.round(el.getBoundingClientRect().right));
  const search = document.querySelector('header input[type=search]');
  const box = search && search.getBoundingClientRect();
  const searchCovers = box
    ? [...document.querySelectorAll('header a, header button')]
        .filter((el) => {
          const r = el.getBoundingClientRect();
          return r.left < box.right && box.left < r.right && r.top < box.bottom && box.top < r.bottom;
        })
        .map((el) => el.textContent.trim())
    : [];
  return { viewport, scrollWidth: document.documentElement.scrollWidth, sticking, searchCovers };
})()`;

const needsChromium = !existsSync(CHROMIUM);
if (needsChromium && process.env['CI'] === 'true') {
  throw new Error(`${CHROMIUM} is missing: scripts/install-system-deps.sh installs Debian's chromium`);
}

describe.skipIf(needsChromium)('the CRM at 390 px in Chromium', () => {
  let server: PostgresServer;
  let app: AppProcess;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let crm: CrmClient;
  /** Where the screenshots go (kept after the run, for a person to look at). */
  let screenshots: string;
  const ids = { company: '', contact: '', deal: '' };

  /** A fresh context (no cookies, nothing cached) with a phone's screen, and one page in it. */
  async function openPhone(): Promise<Page> {
    context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, isMobile: true });
    return context.newPage();
  }

  /** Opens `urlPath` (waits for its load event), saves its screenshot and measures it. */
  async function visit(page: Page, urlPath: string): Promise<Layout> {
    const response = await page.goto(app.baseUrl + urlPath);
    expect(response?.status(), urlPath).toBe(200);
    await shoot(page, urlPath);
    return page.evaluate<Layout>(MEASURE);
  }

  /** `/companies/1/edit` → `<screenshots>/companies-1-edit.png`; the whole page, not only the screen. */
  async function shoot(page: Page, name: string): Promise<void> {
    const file = name.replace(/[^\w]+/g, '-').replace(/^-|-$/g, '') || 'root';
    await page.screenshot({ path: path.join(screenshots, `${file}.png`), fullPage: true });
  }

  async function post(urlPath: string, fields: Record<string, string>): Promise<string> {
    const response = await crm.post(urlPath, fields);
    expect(response.status, await response.text()).toBe(303);
    return /\/(\d+)\?saved=1$/.exec(response.headers.get('location') ?? '')?.[1] ?? '';
  }

  beforeAll(async () => {
    if (!existsSync(path.join(CRM_DIR, 'node_modules', 'pg'))) {
      const install = await runCommand('npm ci --no-audit --no-fund', CRM_DIR, process.env, 110_000);
      expect(install.code, install.output).toBe(0);
    }
    const manifest = await readAppManifest(CRM_DIR);
    server = await startPostgres();
    await createAddonDatabase(server, ADDON);
    const migrated = await runCommand(manifest.release!, CRM_DIR, appEnv(server.port, ADDON));
    expect(migrated.code, migrated.output).toBe(0);
    const env = { HOST: '127.0.0.1', PORT: String(await freePort()), CRM_ADMIN_PASSWORD: ADMIN_PASSWORD };
    app = await startApp(manifest.web!, CRM_DIR, appEnv(server.port, ADDON, env));

    // Signed in over HTTP (the form, as test/hyper-edge.test.ts does); Chromium gets the session cookie.
    crm = await signInToCrm(app.baseUrl, ADMIN_PASSWORD);

    // Long names, a long e-mail address and wide amounts: what widens a page.
    ids.company = await post('/companies', {
      name: 'Établissements Dupont-Lajoie et Fils, Fournitures Industrielles du Grand Ouest',
      website: 'https://www.etablissements-dupont-lajoie-et-fils.example/catalogue/fournitures',
      notes: 'Client historique depuis 1987; préfère être contacté le matin.',
    });
    ids.contact = await post('/contacts', {
      name: 'Marie-Amélie de La Tour d’Auvergne',
      company_id: ids.company,
      email: 'marie-amelie.de-la-tour-dauvergne@etablissements-dupont-lajoie.example',
      phone: '+33 6 12 34 56 78',
      job_title: 'Directrice des achats et de la logistique',
    });
    ids.deal = await post('/deals', {
      title: 'Renouvellement du contrat de maintenance des lignes de production 2027',
      company_id: ids.company,
      contact_id: ids.contact,
      amount: '1 234 567 890,12',
      stage: 'proposal',
    });
    await post(`/deals/${ids.deal}/stage`, { stage: 'won' });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS], timeout: 60_000 });
    screenshots = mkdtempSync(path.join(tmpdir(), 'hox-crm-mobile-'));
    console.log(`screenshots of the CRM at ${PHONE.width} px: ${screenshots}`);
  }, 180_000);

  afterEach(async () => {
    await context?.close();
    context = undefined;
  });

  afterAll(async () => {
    await browser?.close();
    await app?.stop(2_000);
    await server?.stop();
  });

  it('measures overflow for real: a page made too wide is seen as such', async () => {
    const page = await openPhone();
    const before = await visit(page, '/login');
    expect(before.viewport).toBe(PHONE.width);
    expect(before.scrollWidth).toBe(PHONE.width);
    expect(before.sticking).toEqual([]);
    await page.evaluate(
      `document.querySelector('main').insertAdjacentHTML('beforeend', '<div style="width:648px">x</div>')`,
    );
    await shoot(page, 'login-widened-on-purpose');
    const widened = await page.evaluate<Layout>(MEASURE);
    expect(widened.scrollWidth).toBeGreaterThan(PHONE.width);
    expect(widened.sticking.length).toBeGreaterThan(0);
  });

  it('fits every page in 390 px, with the search box clear of the menu', async () => {
    const page = await openPhone();
    const equals = crm.cookie.indexOf('=');
    await context!.addCookies([
      { name: crm.cookie.slice(0, equals), value: crm.cookie.slice(equals + 1), url: app.baseUrl, httpOnly: true },
    ]);
    const paths = [
      '/pipeline',
      '/companies',
      '/contacts',
      '/deals',
      `/companies/${ids.company}`,
      `/contacts/${ids.contact}`,
      `/deals/${ids.deal}`,
      '/deals/new',
      `/companies/${ids.company}/edit`,
      `/companies/${ids.company}/delete`,
      '/search?q=dupont',
      '/users',
      '/account',
    ];
    const problems: Record<string, Layout> = {};
    for (const urlPath of paths) {
      const layout = await visit(page, urlPath);
      // The menu is there (signed in), so the check of the search box means something.
      expect(await page.locator('header nav a').count(), urlPath).toBe(5);
      if (layout.scrollWidth > PHONE.width || layout.sticking.length > 0 || layout.searchCovers.length > 0) {
        problems[urlPath] = layout;
      }
    }
    expect(problems).toEqual({});
  });
});
