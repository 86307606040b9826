/**
 * A third-party release, written as docs/releases.md teaches: the example's
 * files are taken from the doc itself, written to a directory and supplied by
 * absolute path to a real agent, which installs, converges, serves, rejects
 * bad parameters, destroys and removes it. And a release whose install step
 * fails, reported with its output.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import type { InstanceDocumentBody } from '../src/protocol/schemas.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import {
  disposeAgent,
  processUid,
  processesIn,
  startAgent,
  waitFor,
  type AgentFixture,
} from './support/agent-harness.js';

const isRoot = process.getuid?.() === 0;

/** The example of docs/releases.md: every fenced block whose info string names a file (```js release.mjs). */
function exampleFiles(): Record<string, string> {
  const doc = readFileSync(new URL('../docs/releases.md', import.meta.url), 'utf8');
  const files: Record<string, string> = {};
  for (const match of doc.matchAll(/^```[a-z]+ ([\w.-]+)\n([\s\S]*?)^```$/gm)) files[match[1]!] = match[2]!;
  return files;
}

describe('a third-party release supplied by absolute path', () => {
  let m: TestMaster;
  const agents: AgentFixture[] = [];
  const releaseDirs: string[] = [];

  beforeEach(async () => {
    m = await startTestMaster();
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
    while (releaseDirs.length > 0) rmSync(releaseDirs.pop()!, { recursive: true, force: true });
  });

  async function agent(nodeId: string, partitions: number): Promise<AgentFixture> {
    const a = await startAgent(m.admin, { nodeId, partitions });
    agents.push(a);
    return a;
  }

  /** Writes a release directory; it is the release's URL. Readable by all, as a release source usually is. */
  function writeRelease(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'hox-release-'));
    releaseDirs.push(dir);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o644 });
    chmodSync(dir, 0o755);
    return dir;
  }

  /** Where the agent installs a URL: `<data-dir>/software/<sha256(url)[:16]>/`. */
  function installedDir(a: AgentFixture, url: string): string {
    return join(a.dataDir, 'software', createHash('sha256').update(url).digest('hex').slice(0, 16));
  }

  async function softwareList(nodeId: string) {
    return (await m.admin.call('listSoftwareStatus', { computer_guid: nodeId })).result_list;
  }

  async function treeInstance(title: string) {
    const trees = (await m.admin.call('listTreeStatus', { title })).result_list;
    return trees[0]?.instance_list.find((i) => i.title === title);
  }

  async function requestUntilPublished(
    title: string,
    url: string,
    parameters: Record<string, unknown>,
  ): Promise<InstanceDocumentBody> {
    return waitFor(`${title} to publish its url`, async () => {
      const answer = await m.admin.call('requestInstance', {
        title,
        software_release_uri: url,
        software_type: 'default',
        parameters,
      });
      if (isNotReady(answer)) return undefined;
      return typeof answer.connection_parameters.url === 'string' ? answer : undefined;
    });
  }

  it('installs, serves and publishes, rejects bad parameters naming the field, then destroys and removes', async () => {
    const files = exampleFiles();
    expect(Object.keys(files).sort(), 'the example files of docs/releases.md').toEqual([
      'release.json',
      'release.mjs',
      'server.mjs',
    ]);
    expect(files['release.mjs']).not.toMatch(/^import /m); // plain JavaScript, nothing from the project
    const url = writeRelease(files);
    const a = await agent('tp1', 2);

    await m.admin.call('supply', { computer_guid: 'tp1', software_release_uri: url });
    await waitFor(
      'software available',
      async () =>
        (await softwareList('tp1')).find((s) => s.software_release_uri === url)?.reported_state === 'available',
    );
    const installed = installedDir(a, url);
    expect(readFileSync(join(installed, 'release.mjs'), 'utf8')).toBe(files['release.mjs']);
    expect(existsSync(`${installed}.hox-installed.json`)).toBe(true);

    // Requested: the service answers on the partition's address and port, and its URL is published.
    const doc = await requestUntilPublished('hello', url, { greeting: 'bonjour ☀' });
    const partition = a.agent.partitions.find((p) => p.partitionId === doc.compute_partition_id)!;
    const serviceUrl = doc.connection_parameters.url as string;
    expect(serviceUrl).toBe(`http://${partition.ip}:${partition.portBase}/`);
    await waitFor('greeting served', async () => (await (await fetch(serviceUrl)).text()) === 'bonjour ☀\n');
    expect(await (await fetch(`${serviceUrl}health`)).text()).toBe('ok\n');
    await waitFor('reported started with its promise passing', async () => {
      const i = await treeInstance('hello');
      return i?.reported_state === 'started' && i.access_status_message.startsWith('#access');
    });
    expect(readFileSync(join(partition.path, 'etc', 'hello.json'), 'utf8')).toBe('{"greeting":"bonjour ☀"}\n');
    const pids = processesIn(partition.path);
    expect(pids.length).toBe(1);
    if (isRoot) expect(processUid(pids[0]!)).toBe(partition.uid);

    // A new greeting changes the rendered file: the service restarts with it.
    await m.admin.call('requestInstance', {
      title: 'hello',
      software_release_uri: url,
      software_type: 'default',
      parameters: { greeting: 'hallo' },
    });
    await waitFor('new greeting served', async () => (await (await fetch(serviceUrl)).text()) === 'hallo\n');

    // Parameters failing the release's schema: the instance's error names the field, nothing runs.
    const bad = await m.admin.call('requestInstance', {
      title: 'bad',
      software_release_uri: url,
      software_type: 'default',
      parameters: { greeting: 42 },
    });
    if (isNotReady(bad)) throw new Error('a non-shared instance is answered at once');
    const status = await waitFor('schema error reported', async () => {
      const i = await treeInstance('bad');
      return i?.access_status_message.startsWith('#error while') === true ? i : undefined;
    });
    expect(status.access_status_message).toBe('#error while instanciating: parameters.greeting: must be string');
    const badPartition = a.agent.partitions.find((p) => p.partitionId === bad.compute_partition_id)!;
    expect(processesIn(badPartition.path)).toEqual([]);

    // Destroyed: services stopped, partitions emptied and freed.
    for (const title of ['hello', 'bad'])
      await m.admin.call('requestInstance', {
        title,
        software_release_uri: url,
        software_type: 'default',
        state: 'destroyed',
      });
    await waitFor(
      'partitions freed',
      async () => (await m.admin.call('nodeStatus', { computer_guid: 'tp1' })).free_partition_count === 2,
    );
    expect(processesIn(partition.path)).toEqual([]);
    expect((await m.admin.call('listTreeStatus', {})).result_list).toEqual([]);

    // The release supplied as destroyed: the agent removes it and the master forgets the installation.
    await m.admin.call('supply', { computer_guid: 'tp1', software_release_uri: url, state: 'destroyed' });
    await waitFor('installation gone from the master', async () => (await softwareList('tp1')).length === 0);
    await waitFor('installed directory removed', () => !existsSync(installed));
    expect(existsSync(`${installed}.hox-installed.json`)).toBe(false);
  });

  it('reports a failing install step as a software error carrying its output', async () => {
    const manifest = { name: 'broken', version: '0.0.1', entry: 'release.mjs' };
    const url = writeRelease({
      'release.json': JSON.stringify({
        ...manifest,
        install: ['sh', '-c', 'echo building; echo broken >&2; exit 4'],
      }),
      'release.mjs': 'export default { softwareTypes: {} };\n',
    });
    const a = await agent('tp2', 1);
    await m.admin.call('supply', { computer_guid: 'tp2', software_release_uri: url });
    const failed = await waitFor('software error reported', async () =>
      (await softwareList('tp2')).find((s) => s.software_release_uri === url && s.reported_state === 'error'),
    );
    expect(failed.error_message).toContain('exited with 4');
    // The output's tail, line by line (the argv in the first line mentions 'broken' too).
    const lines = (failed.error_message ?? '').split('\n');
    expect(lines).toContain('building');
    expect(lines).toContain('broken');
    expect(existsSync(`${installedDir(a, url)}.hox-installed.json`)).toBe(false);

    // Retrying takes removing the installation, then supplying it again.
    writeFileSync(join(url, 'release.json'), JSON.stringify({ ...manifest, install: ['sh', '-c', 'echo fixed'] }));
    await m.admin.call('supply', { computer_guid: 'tp2', software_release_uri: url, state: 'destroyed' });
    await waitFor('errored installation removed', async () => (await softwareList('tp2')).length === 0);
    await m.admin.call('supply', { computer_guid: 'tp2', software_release_uri: url });
    await waitFor(
      'software available after the fix',
      async () =>
        (await softwareList('tp2')).find((s) => s.software_release_uri === url)?.reported_state === 'available',
    );
    expect(readFileSync(join(installedDir(a, url), '.hox-install.log'), 'utf8')).toBe('fixed\n');
  });

  it("never runs a root of a type its manifest marks internal; the release's own instances request it", async () => {
    // The master does not know this release: the agent is the one that refuses.
    const url = writeRelease({
      'release.json': JSON.stringify({
        name: 'with-internal',
        version: '1.0.0',
        entry: 'release.mjs',
        internalSoftwareTypes: ['worker'],
      }),
      'release.mjs': `
const open = { type: 'object' };
export default {
  softwareTypes: {
    main: {
      parameters: open,
      connection: open,
      profile: (input) => ({
        requests: [{ title: 'w', softwareReleaseUrl: input.slap_software_release_url, softwareType: 'worker' }],
        publish: { worker_ready: input.requested.w?.ready === true },
      }),
    },
    worker: { parameters: open, connection: open, profile: () => ({ publish: { ran: true } }) },
  },
};
`,
    });
    await agent('tp3', 3);
    await m.admin.call('supply', { computer_guid: 'tp3', software_release_uri: url });
    const request = (title: string, type: string) =>
      m.admin.call('requestInstance', { title, software_release_uri: url, software_type: type });
    await request('direct', 'worker');
    const refused = await waitFor('internal root refused', async () => {
      const i = await treeInstance('direct');
      return i?.access_status_message.startsWith('#error while') === true ? i : undefined;
    });
    expect(refused.access_status_message).toMatch(/software type 'worker' .* is internal/);
    expect(refused.connection_parameters).toEqual({});

    await request('app', 'main');
    await waitFor('the release requests its own worker, which runs', async () => {
      const [tree] = (await m.admin.call('listTreeStatus', { title: 'app' })).result_list;
      return tree?.instance_list.find((i) => i.title === 'w')?.connection_parameters.ran === true;
    });
  });
});
