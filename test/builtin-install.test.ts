/**
 * The install step of built-in releases through a real agent and master: the
 * agent looks built-ins up in a directory of the test's making
 * (`builtinReleasesDir`), runs their `install` argv once per data dir, and
 * reports a failure as the software installation's error with the output's
 * tail — as for any other release URL.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';

const ENTRY = `export default { softwareTypes: { default: { parameters: {}, connection: {}, profile: () => ({ publish: { ok: 'yes' } }) } } };\n`;

describe('built-in releases with an install step', () => {
  let m: TestMaster;
  let builtinDir: string;
  const agents: AgentFixture[] = [];

  beforeEach(async () => {
    m = await startTestMaster();
    builtinDir = mkdtempSync(join(tmpdir(), 'hox-builtins-'));
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
    rmSync(builtinDir, { recursive: true, force: true });
  });

  function builtin(name: string, install: string[]): void {
    mkdirSync(join(builtinDir, name));
    writeFileSync(
      join(builtinDir, name, 'release.json'),
      JSON.stringify({ name, version: '2.0.0', entry: 'release.mjs', install }),
    );
    writeFileSync(join(builtinDir, name, 'release.mjs'), ENTRY);
  }

  async function software(nodeId: string, url: string) {
    return (await m.admin.call('listSoftwareStatus', { computer_guid: nodeId })).result_list.find(
      (s) => s.software_release_uri === url,
    );
  }

  it('runs the step once per data dir, then the release is available; a failing step is the error, with its tail', async () => {
    const runs = join(builtinDir, 'runs');
    builtin('okdb', ['sh', '-c', `echo run >> ${runs}; echo postgresql-15 binaries found`]);
    builtin('baddb', [
      'sh',
      '-c',
      'echo looking for /usr/lib/postgresql/15/bin/postgres; echo "missing: install the Debian package postgresql-15" >&2; exit 1',
    ]);
    const a = await startAgent(m.admin, { nodeId: 'b1', partitions: 1, builtinReleasesDir: builtinDir });
    agents.push(a);
    for (const url of ['okdb', 'baddb'])
      await m.admin.call('supply', { computer_guid: 'b1', software_release_uri: url });

    await waitFor('okdb available', async () => (await software('b1', 'okdb'))?.reported_state === 'available');
    const marker = join(
      a.dataDir,
      'software',
      `${createHash('sha256').update('okdb@2.0.0').digest('hex').slice(0, 16)}.hox-installed.json`,
    );
    expect(existsSync(marker)).toBe(true);
    expect(readFileSync(runs, 'utf8')).toBe('run\n');

    const failed = await waitFor('baddb in error', async () => {
      const s = await software('b1', 'baddb');
      return s?.reported_state === 'error' ? s : undefined;
    });
    expect(failed.error_message).toMatch(/^installing 'baddb' failed: install step .* exited with 1\n/);
    expect((failed.error_message ?? '').split('\n')).toEqual(
      expect.arrayContaining([
        'looking for /usr/lib/postgresql/15/bin/postgres',
        'missing: install the Debian package postgresql-15',
      ]),
    );

    // Instances of the installed built-in converge as usual.
    const answer = await m.admin.call('requestInstance', {
      title: 'db',
      software_release_uri: 'okdb',
      software_type: 'default',
    });
    if (isNotReady(answer)) throw new Error('a new instance is answered at once');
    await waitFor('okdb instance published', async () => {
      const instance = await m.admin.call('getInstance', { instance_guid: answer.instance_guid });
      return !isNotReady(instance) && instance.connection_parameters.ok === 'yes';
    });

    // A restarted agent on the same data dir finds it installed: the step does not run again.
    await a.agent.stop();
    const again = await startAgent(m.admin, {
      nodeId: 'b1',
      partitions: 1,
      builtinReleasesDir: builtinDir,
      dataDir: a.dataDir,
    });
    agents.push(again);
    await again.agent.syncNow();
    await waitFor('restarted agent converged', () => again.logs.includes('partition p0: converged'));
    expect((await software('b1', 'okdb'))?.reported_state).toBe('available');
    expect(readFileSync(runs, 'utf8')).toBe('run\n');
  });
});
