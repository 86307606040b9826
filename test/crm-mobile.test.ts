/**
 * examples/crm on a phone: every page at 390 px wide in a real Chromium (Debian's /usr/bin/chromium, headless),
 * driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no extra package). Nothing may widen the
 * page beyond the screen, and the search box may not cover the menu.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const CHROMIUM = '/usr/bin/chromium';
const ADDON: AddonDatabase = { name: 'crm_mobile', user: 'crm_mobile', password: 'mobile-pw' };
const ADMIN_PASSWORD = 'mobile-admin-password';
const PHONE = { width: 390, height: 844 };
/** Headless, as root, and quiet on the network: no background fetches, updates or sync (none reaches out here). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--remote-debugging-pipe',
];

/** A DevTools protocol client over Chromium's pipe (fd 3 in, fd 4 out; NUL-terminated JSON messages). */
class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private buffer = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly userDataDir: string,
  ) {
    const output = child.stdio[4] as Readable;
    output.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      for (let end = this.buffer.indexOf('\0'); end >= 0; end = this.buffer.indexOf('\0')) {
        const message = JSON.parse(this.buffer.slice(0, end)) as {
          id?: number;
          result?: unknown;
          error?: { message: string };
        };
        this.buffer = this.buffer.slice(end + 1);
        const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
        if (waiter === undefined) continue;
        this.pending.delete(message.id!);
        if (message.error) waiter.reject(new Error(message.error.message));
        else waiter.resolve(message.result);
      }
    });
    child.once('exit', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('chromium exited'));
      this.pending.clear();
    });
  }

  static launch(): Chromium {
    const userDataDir = mkdtempSync(path.join(tmpdir(), 'hox-crm-chromium-'));
    const child = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, 'about:blank'], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
    });
    return new Chromium(child, userDataDir);
  }

  send<T = Record<string, unknown>>(method: string, params: object = {}, sessionId?: string): Promise<T> {
    const id = this.nextId++;
    const message = JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer from chromium in 30 s`));
      }, 30_000);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      (this.child.stdio[3] as Writable).write(`${message}\0`);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      await this.send('Browser.close').catch(() => this.child.kill('SIGKILL'));
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.userDataDir, { recursive: true, force: true });
  }
}

/** One tab with a phone's screen. */
class PhoneTab {
  private constructor(
    private readonly browser: Chromium,
    private readonly sessionId: string,
  ) {}

  static async open(browser: Chromium): Promise<PhoneTab> {
    const { targetId } = await browser.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await browser.send<{ sessionId: string }>('Target.attachToTarget', {
      targetId,
      flatten: true,
    });
    await browser.send(
      'Emulation.setDeviceMetricsOverride',
      { ...PHONE, deviceScaleFactor: 1, mobile: true },
      sessionId,
    );
    return new PhoneTab(browser, sessionId);
  }

  setCookie(name: string, value: string, url: string): Promise<unknown> {
    return this.browser.send('Network.setCookie', { name, value, url, httpOnly: true }, this.sessionId);
  }

  /** Evaluates `expression` in the page and returns its value. */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.browser.send<{ result: { value: T }; exceptionDetails?: unknown }>(
      'Runtime.evaluate',
      { expression, returnByValue: true },
      this.sessionId,
    );
    if (answer.exceptionDetails !== undefined) throw new Error(`${expression}: ${JSON.stringify(answer)}`);
    return answer.result.value;
  }

  /** Opens `url` and waits until it has loaded (at most 20 s). */
  async goto(url: string): Promise<void> {
    await this.browser.send('Page.navigate', { url }, this.sessionId);
    for (let i = 0; i < 200; i++) {
      const state = await this.evaluate<string>(`location.href + ' ' + document.readyState`).catch(() => '');
      if (state === `${url} complete`) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${url} did not load within 20 s`);
  }
}

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
  let browser: Chromium;
  let tab: PhoneTab;
  let crm: CrmClient;
  const ids = { company: '', contact: '', deal: '' };

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

    browser = Chromium.launch();
    tab = await PhoneTab.open(browser);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.stop(2_000);
    await server?.stop();
  });

  it('measures overflow for real: a page made too wide is seen as such', async () => {
    await tab.goto(`${app.baseUrl}/login`);
    const before = await tab.evaluate<Layout>(MEASURE);
    expect(before.viewport).toBe(PHONE.width);
    expect(before.scrollWidth).toBe(PHONE.width);
    await tab.evaluate(
      `document.querySelector('main').insertAdjacentHTML('beforeend', '<div style="width:648px">x</div>')`,
    );
    const widened = await tab.evaluate<Layout>(MEASURE);
    expect(widened.scrollWidth).toBeGreaterThan(PHONE.width);
    expect(widened.sticking.length).toBeGreaterThan(0);
  });

  it('fits every page in 390 px, with the search box clear of the menu', async () => {
    const [name, value] = crm.cookie.split('=') as [string, string];
    await tab.setCookie(name, value, app.baseUrl);
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
      await tab.goto(app.baseUrl + urlPath);
      const layout = await tab.evaluate<Layout>(MEASURE);
      // The menu is there (signed in), so the check of the search box means something.
      expect(await tab.evaluate<number>(`document.querySelectorAll('header nav a').length`), urlPath).toBe(5);
      if (layout.scrollWidth > PHONE.width || layout.sticking.length > 0 || layout.searchCovers.length > 0) {
        problems[urlPath] = layout;
      }
    }
    expect(problems).toEqual({});
  });
});
