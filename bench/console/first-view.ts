/**
 * bench/console: how long the web console takes to show its first view, in Debian's Chromium, against the web
 * UI of Prometheus 2.42 (Debian's, the platform's own time-series store: another self-hosted console, React,
 * served by its server) measured in the same run.
 *
 *   npx tsx bench/console/first-view.ts [--runs 11] [--trees 30] [--json]
 *
 * Setup: a real master (SQLite, HTTPS with the platform CA, in this process) with one registered node of
 * `trees + 5` partitions and `trees` demo trees requested on it (placed, nothing runs: no agent), the console
 * built from the sources; Prometheus with an empty store on 127.0.0.1.
 * Cases, run round-robin, each in a fresh browser context (nothing cached):
 *  - console, sign in: from navigating to the console until its token field accepts input (the page is
 *    interactive), then from the click on "Sign in" until the overview lists every tree (whoami, then the
 *    overview's four calls);
 *  - console, reload: the tab signed in, reloaded: until the overview lists every tree again (the token comes
 *    from the tab's session storage, the files from the cache);
 *  - Prometheus: from navigating to /graph until its "Execute" button is there, then the same after a reload.
 * Prints the median and the 90th percentile of each, and the console's ratio to Prometheus.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../src/testing/chromium.js';
import { freePort } from '../../src/testing/free-port.js';
import { addTestNode, startTestMaster } from '../../src/testing/test-master.js';
import { waitFor } from '../../src/testing/wait-for.js';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '11' },
    trees: { type: 'string', default: '30' },
    json: { type: 'boolean', default: false },
  },
});
const RUNS = Number(values.runs);
const TREES = Number(values.trees);
const ROOT = join(import.meta.dirname, '..', '..');

type Case = 'console-page' | 'console-sign-in' | 'console-reload' | 'prometheus' | 'prometheus-reload';
const samples: Record<Case, number[]> = {
  'console-page': [],
  'console-sign-in': [],
  'console-reload': [],
  prometheus: [],
  'prometheus-reload': [],
};

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

async function consoleRun(browser: Browser, url: string, token: string): Promise<void> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Polled on every frame: the overview's table holds one row per tree.
  const allTrees = (p: Page) =>
    p.waitForFunction(
      (n) => document.querySelectorAll('section[aria-labelledby="trees-heading"] tbody tr').length === n,
      TREES,
      { polling: 'raf', timeout: 30_000 },
    );
  samples['console-page'].push(
    await timed(async () => {
      await page.goto(`${url}/`);
      await page.getByLabel('Token').waitFor({ state: 'visible' });
    }),
  );
  await page.getByLabel('Token').fill(token);
  samples['console-sign-in'].push(
    await timed(async () => {
      await page.getByRole('button', { name: 'Sign in' }).click();
      await allTrees(page);
    }),
  );
  samples['console-reload'].push(
    await timed(async () => {
      await page.reload();
      await allTrees(page);
    }),
  );
  await context.close();
}

async function prometheusRun(browser: Browser, url: string): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const execute = page.getByRole('button', { name: 'Execute' });
  samples.prometheus.push(
    await timed(async () => {
      await page.goto(`${url}/graph`);
      await execute.waitFor({ state: 'visible' });
    }),
  );
  samples['prometheus-reload'].push(
    await timed(async () => {
      await page.reload();
      await execute.waitFor({ state: 'visible' });
    }),
  );
  await context.close();
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'hox-bench-console-'));
  const consoleDir = join(work, 'console');
  await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'bundle-console.mjs'), '--outdir', consoleDir]);
  // HTTPS as under hox up; the bench's node only formats itself (no agent), so it presents no certificate.
  const master = await startTestMaster({ tls: true, requireNodeCertificates: false, consoleDir });
  await addTestNode(master.admin, 'bench-console', { partitions: TREES + 5, releases: ['demo'] });
  for (let i = 0; i < TREES; i++)
    await master.admin.call('requestInstance', {
      title: `tree-${String(i).padStart(2, '0')}`,
      software_release_uri: 'demo',
      software_type: 'default',
    });
  const promPort = await freePort();
  writeFileSync(join(work, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(work, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(work, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: 'ignore' },
  );
  const promUrl = `http://127.0.0.1:${promPort}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS] });
  try {
    await waitFor(
      'Prometheus ready',
      async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok === true,
      30_000,
    );
    // One of each first, not counted: Chromium's own first start.
    await consoleRun(browser, master.url, master.adminToken);
    await prometheusRun(browser, promUrl);
    for (const key of Object.keys(samples) as Case[]) samples[key].length = 0;
    for (let run = 0; run < RUNS; run++) {
      await consoleRun(browser, master.url, master.adminToken);
      await prometheusRun(browser, promUrl);
      log(`run ${run + 1}/${RUNS}`);
    }
  } finally {
    await browser.close();
    prometheus.kill('SIGTERM');
    await master.stop();
    rmSync(work, { recursive: true, force: true });
  }
  report();
}

function report(): void {
  const stats = (key: Case) => {
    const sorted = [...samples[key]].sort((a, b) => a - b);
    return { median: percentileOfSorted(sorted, 0.5), p90: percentileOfSorted(sorted, 0.9) };
  };
  const consoleFirst = samples['console-page'].map((ms, i) => ms + (samples['console-sign-in'][i] ?? 0));
  const sortedFirst = [...consoleFirst].sort((a, b) => a - b);
  const first = { median: percentileOfSorted(sortedFirst, 0.5), p90: percentileOfSorted(sortedFirst, 0.9) };
  const prom = stats('prometheus');
  const result = {
    runs: RUNS,
    trees: TREES,
    console_page_ms: stats('console-page'),
    console_sign_in_to_overview_ms: stats('console-sign-in'),
    console_first_view_ms: first,
    console_reload_ms: stats('console-reload'),
    prometheus_graph_ms: prom,
    prometheus_reload_ms: stats('prometheus-reload'),
    ratio_first_view_to_prometheus: first.median / prom.median,
    ratio_reload_to_prometheus_reload: stats('console-reload').median / stats('prometheus-reload').median,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const row = (name: string, s: { median: number; p90: number }) => [name, s.median.toFixed(0), s.p90.toFixed(0)];
  process.stdout.write(
    `${markdownTable(
      ['case', 'median ms', 'p90 ms'],
      [
        row('console: page until the token field', result.console_page_ms),
        row(`console: sign in until ${TREES} trees listed`, result.console_sign_in_to_overview_ms),
        row('console: first view (the two above)', first),
        row('console: reload until the trees listed', result.console_reload_ms),
        row('Prometheus: /graph until Execute', prom),
        row('Prometheus: reload until Execute', result.prometheus_reload_ms),
      ],
      1,
    )}\n\nconsole first view / Prometheus first view: ${result.ratio_first_view_to_prometheus.toFixed(2)}; reloads: ${result.ratio_reload_to_prometheus_reload.toFixed(2)} (${RUNS} runs)\n`,
  );
}

await main();
