/**
 * Killing the agent with SIGKILL must not stop or restart any service; the
 * restarted agent adopts what runs and never starts a duplicate.
 * The agent runs as a real `hox node` process here.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { isNotReady } from '../src/client/master-client.js';
import { partitionLayouts } from '../src/agent/format/partition-layout.js';
import { spawnAgentProcess } from '../src/testing/agent-process.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { cleanUpNodePartitions, isAlive, processesIn, tempDataDir, waitFor } from './support/agent-harness.js';

let m: TestMaster | undefined;
let child: ChildProcess | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  child?.kill('SIGKILL');
  if (dataDir !== undefined) {
    // The agent was killed: its services and its firewall table are ours to remove.
    await cleanUpNodePartitions('n1', dataDir, 1);
    rmSync(dataDir, { recursive: true, force: true });
  }
  await m?.stop();
});

function startAgentProcess(url: string, dir: string, token?: string): ChildProcess {
  const proc = spawnAgentProcess({
    masterUrl: url,
    dataDir: dir,
    nodeId: 'n1',
    partitions: 1,
    ...(token === undefined ? {} : { registerToken: token }),
  });
  proc.stdout?.resume();
  proc.stderr?.resume();
  return proc;
}

it('survives kill -9 of the agent: the service keeps running and is adopted, not duplicated', async () => {
  m = await startTestMaster();
  dataDir = tempDataDir();
  const { token } = await m.admin.call('createRegistrationToken', {});
  child = startAgentProcess(m.url, dataDir, token);
  await waitFor('node registered', async () => (await m!.admin.call('listNodes', {})).result_list.length === 1, 30_000);
  await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'demo' });
  const request = () =>
    m!.admin.call('requestInstance', { title: 'web', software_release_uri: 'demo', software_type: 'default' });
  const doc = await waitFor(
    'url published',
    async () => {
      const a = await request();
      return !isNotReady(a) && typeof a.connection_parameters.url === 'string' ? a : undefined;
    },
    30_000,
  );
  const url = doc.connection_parameters.url as string;
  const partitionPath = partitionLayouts({
    nodeId: 'n1',
    dataDir,
    count: 1,
    portBase: 20000,
    portsPerPartition: 50,
  })[0]!.path;
  await waitFor('service serving', async () => (await fetch(url)).status === 200);
  const before = await waitFor('one service process', () => {
    const pids = processesIn(partitionPath);
    return pids.length === 1 ? pids[0] : undefined;
  });

  child.kill('SIGKILL');
  await new Promise((resolve) => child!.once('exit', resolve));
  // The service is untouched and still serving.
  expect(isAlive(before)).toBe(true);
  expect((await fetch(url)).status).toBe(200);

  // Restarted without a token, the agent adopts the running service.
  child = startAgentProcess(m.url, dataDir);
  await m.admin.call('bangInstance', { instance_guid: doc.instance_guid, message: 'reprocess after restart' });
  const banged = await m.admin.call('getInstance', { instance_guid: doc.instance_guid });
  if (isNotReady(banged)) throw new Error('instance not ready');
  expect(banged.processing_timestamp).toBeGreaterThan(doc.processing_timestamp);
  await waitFor(
    'restarted agent reprocessed the banged instance',
    () => {
      const state = JSON.parse(readFileSync(join(dataDir!, 'state', 'p0.json'), 'utf8')) as {
        processedTimestamp: number;
      };
      return state.processedTimestamp === banged.processing_timestamp;
    },
    30_000,
  );
  // Give it a moment to (wrongly) start a duplicate, then check there is none.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(processesIn(partitionPath)).toEqual([before]);
  expect((await fetch(url)).status).toBe(200);
});
