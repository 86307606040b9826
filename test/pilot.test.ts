/**
 * The README's main command: `hox up --with-pilot` (what `npm start` runs,
 * here from the sources) brings up a hyper_db cluster and the CRM on one
 * node and prints the CRM's URL. The CRM keeps its data across a database
 * switchover and a restart of the whole platform.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/testing/free-port.js';
import { cleanUpNodePartitions } from './support/agent-harness.js';
import { signInToCrm, TEST_CRM_ADMIN_PASSWORD } from './support/crm-client.js';
import { runHox, type HoxRun } from './support/hox-cli.js';
import { startHoxUp, type HoxUpRun } from './support/hox-up.js';

const PARTITIONS = 8;
const NODE_ID = 'pilot-test';

describe('hox up --with-pilot', () => {
  let home: string;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  let up: HoxUpRun | undefined;
  let output = '';

  const hox = (args: string[]): Promise<HoxRun> => runHox(args, env);

  async function startUp(): Promise<string> {
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
      ],
      env,
    );
    output = up.output();
    const url = /pilot CRM: +(http:\/\/\S+)/.exec(output)?.[1];
    if (url === undefined) throw new Error(`no CRM url in:\n${output}`);
    return url;
  }

  async function stopUp(): Promise<void> {
    await up?.stop();
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'hox-pilot-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    dataDir = join(home, 'data');
    env = { ...process.env, HOX_CONFIG: join(home, 'config.json') };
    delete env.HOX_MASTER_URL;
    delete env.HOX_TOKEN;
    port = await freePort();
  });

  afterAll(async () => {
    await stopUp();
    await cleanUpNodePartitions(NODE_ID, join(dataDir, 'node'), PARTITIONS);
    rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('brings up the cluster and the CRM, whose data survives a switchover and a restart of the platform', async () => {
    const url = await startUp();
    expect(output).toMatch(/pilot-db: ready — primary member-\d, standbys member-\d, member-\d streaming/);
    expect(output).toMatch(/crm: v1 deployed and serving at http:\/\//);
    // The platform's monitor came up with it (Prometheus in its partition, behind hox alerts).
    expect(output).toMatch(/^ {2}monitor: +https:\/\/[\d.]+:\d+ +\(Prometheus; hox alerts/m);
    // The CRM asks to sign in: the test chooses the administrator's password (a config var overrides the
    // generated CRM_ADMIN_PASSWORD).
    const setPassword = await hox(['app', 'config', 'set', 'crm', `CRM_ADMIN_PASSWORD=${TEST_CRM_ADMIN_PASSWORD}`]);
    expect(setPassword.code, setPassword.stderr).toBe(0);
    const crm = await signInToCrm(url);
    const post = (name: string) => crm.post('/companies', { name });
    const first = await post('Before switchover');
    expect(first.status, `${await first.text()}\n${output}`).toBe(303);

    const switchover = await hox(['db', 'switchover', 'pilot-db']);
    expect(switchover.code, switchover.stderr).toBe(0);
    expect(switchover.stdout).toMatch(/switchover done member-\d → member-\d/);
    let status = 0;
    for (let i = 0; i < 50 && status !== 303; i++) status = (await post('After switchover')).status;
    expect(status).toBe(303);
    const page = (await crm.get('/companies')).body;
    expect(page).toContain('Before switchover');
    expect(page).toContain('After switchover');

    await stopUp();
    const again = await startUp();
    expect(again).toBe(url);
    expect(output).toContain('crm: the CRM is already deployed');
    // Ready means ready now, not what the stopped run had published: the summary is printed once the CRM
    // answers and the cluster's root reported (its rw-endpoint promise committing a write) after this start.
    // The session is in the CRM's database: it outlives the platform's restart.
    const listed = await crm.get('/companies');
    expect(listed.status, output).toBe(200);
    expect(listed.body).toContain('Before switchover');
    expect(listed.body).toContain('After switchover');
    const afterRestart = await post('After restart');
    expect(afterRestart.status, output).toBe(303);
    // Progress by tree, summary last; the node's detail is in the log file, not on the terminal.
    expect(output).not.toMatch(/^node: /m);
    expect(output.trimEnd().split('\n').at(-1)).toBe('Ctrl-C stops everything; hox up again brings it back.');
    expect(readFileSync(join(dataDir, 'hox-up.log'), 'utf8')).toMatch(/Z node: partition p\d+: /);
  }, 600_000);
});
