/**
 * What a partition's processes can do on the node (issue 11, findings 5, 9
 * and the partition half of 11), tried as a tenant would, against a real
 * master and a real agent running as root: real unix users, cgroups, mount
 * namespaces. The release is a third-party one written to a temporary
 * directory: its `run` type runs the shell script it is given, with the
 * limits it is given, so each test is the attack itself.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FormattedPartition } from '../src/agent/format/partition-formatter.js';
import { readCgroupUsage } from '../src/agent/isolate/partition-cgroups.js';
import { processesOfUid } from '../src/agent/partition-cleanup.js';
import { isNotReady } from '../src/client/master-client.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';
import { SCRIPT_RELEASE } from './support/script-release.js';

const isRoot = process.getuid?.() === 0;
// Outside /tmp on purpose for one agent: its services' /tmp is private, the data dir stays visible either way.
const WORK_ROOT = '/var/tmp';

describe.skipIf(!isRoot && process.env.CI !== 'true')('partition isolation (as root)', () => {
  let m: TestMaster;
  const agents: AgentFixture[] = [];
  const dirs: string[] = [];
  let url: string;

  beforeEach(async () => {
    if (!isRoot) throw new Error('partition isolation needs root (CI=true: this must not be skipped)');
    m = await startTestMaster();
    url = mkdtempSync(join(WORK_ROOT, 'hox-isolation-release-'));
    dirs.push(url);
    for (const [name, content] of Object.entries(SCRIPT_RELEASE))
      writeFileSync(join(url, name), content, { mode: 0o644 });
    chmodSync(url, 0o755);
  });
  afterEach(async () => {
    while (agents.length > 0) await disposeAgent(agents.pop());
    await m.stop();
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  async function agent(
    nodeId: string,
    partitions: number,
    options: { dataDir?: string; diskCheckIntervalMs?: number; logCheckIntervalMs?: number } = {},
  ): Promise<AgentFixture> {
    const a = await startAgent(m.admin, { nodeId, partitions, ...options });
    agents.push(a);
    await m.admin.call('supply', { computer_guid: nodeId, software_release_uri: url });
    return a;
  }

  async function run(title: string, script: string, limits?: Record<string, number>) {
    const answer = await m.admin.call('requestInstance', {
      title,
      software_release_uri: url,
      software_type: 'run',
      parameters: { script, ...(limits === undefined ? {} : { limits }) },
    });
    if (isNotReady(answer)) throw new Error(`${title} not ready`);
    return answer;
  }

  async function destroy(title: string, nodeId: string, freePartitions: number): Promise<void> {
    await m.admin.call('requestInstance', {
      title,
      software_release_uri: url,
      software_type: 'run',
      state: 'destroyed',
    });
    await waitFor(
      `${title} destroyed`,
      async () => (await m.admin.call('nodeStatus', { computer_guid: nodeId })).free_partition_count === freePartitions,
      60_000,
    );
  }

  async function status(title: string): Promise<string> {
    const trees = (await m.admin.call('listTreeStatus', { title })).result_list;
    return trees[0]?.instance_list.find((i) => i.title === title)?.access_status_message ?? '';
  }

  function partitionOf(a: AgentFixture, partitionId: string | null): FormattedPartition {
    const p = a.agent.partitions.find((x) => x.partitionId === partitionId);
    if (p === undefined) throw new Error(`no partition ${partitionId}`);
    return p;
  }

  function readIfExists(path: string): string | undefined {
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  }

  it('gives each partition its own /tmp and /dev/shm: nothing a tenant leaves there reaches another or the next one', async () => {
    // The data dir under /tmp, as most tests have it: the private /tmp must not hide it from the services.
    const a = await agent('iso-tmp', 2);
    const writer = await run(
      'a',
      `echo secret-of-a > /tmp/secret && echo secret-of-a > /dev/shm/secret && touch "$HOX_PARTITION_PATH/written" && exec sleep 1000`,
    );
    const pa = partitionOf(a, writer.compute_partition_id);
    await waitFor('a wrote its secrets', () => existsSync(join(pa.path, 'written')));
    // They are in a's private directories, not in the machine's /tmp and /dev/shm.
    expect(readFileSync(join(pa.privateDirs!.tmpDir, 'secret'), 'utf8')).toBe('secret-of-a\n');
    expect(readFileSync(join(pa.privateDirs!.shmDir, 'secret'), 'utf8')).toBe('secret-of-a\n');
    expect(existsSync('/tmp/secret')).toBe(false);
    expect(existsSync('/dev/shm/secret')).toBe(false);

    // While a runs, b (another partition, another user) looks everywhere it can: its own /tmp and
    // /dev/shm, and a's directories by their path on the machine.
    const look = (extra: string) =>
      `{ ls -A /tmp /dev/shm; cat /tmp/secret /dev/shm/secret ${extra}; } > "$HOX_PARTITION_PATH/seen.txt" 2>&1; touch "$HOX_PARTITION_PATH/looked"; exec sleep 1000`;
    const reader = await run('b', look(`"${pa.privateDirs!.tmpDir}/secret" "${pa.privateDirs!.shmDir}/secret"`));
    const pb = partitionOf(a, reader.compute_partition_id);
    expect(pb.partitionId).not.toBe(pa.partitionId);
    await waitFor('b looked', () => existsSync(join(pb.path, 'looked')));
    const seenByB = readFileSync(join(pb.path, 'seen.txt'), 'utf8');
    expect(seenByB).not.toContain('secret-of-a');
    expect(seenByB).toMatch(/Permission denied/);

    // a goes; c gets the same partition (b holds the other) and finds nothing of a.
    await destroy('a', 'iso-tmp', 1);
    // Emptied, or removed by the wipe (then made again for the next tenant): nothing of a either way.
    const left = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);
    expect(left(pa.privateDirs!.tmpDir)).toEqual(expect.not.arrayContaining(['secret']));
    expect(left(pa.privateDirs!.shmDir)).toEqual([]);
    const next = await run('c', look(''));
    expect(next.compute_partition_id).toBe(pa.partitionId);
    await waitFor('c looked', () => existsSync(join(pa.path, 'looked')));
    const seenByC = readFileSync(join(pa.path, 'seen.txt'), 'utf8');
    expect(seenByC).not.toContain('secret-of-a');
    expect(seenByC).toMatch(/No such file or directory/);
  });

  it('stops a fork bomb at its pids limit; the node keeps working and the wipe kills it all', async () => {
    const a = await agent('iso-pids', 1);
    const bomb = await run(
      'bomb',
      // Forks without end, each child sleeping; a refused fork is noted, and tried again.
      `exec python3 -c "import os, time
path = os.environ['HOX_PARTITION_PATH']
while True:
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except OSError as error:
        open(path + '/refused', 'w').write(str(error))
        time.sleep(0.05)"`,
      { pids: 40, cpus: 0.5 },
    );
    const p = partitionOf(a, bomb.compute_partition_id);
    // The file is created, then written: an empty one is not the answer yet.
    const refused = await waitFor('a fork refused', () => readIfExists(join(p.path, 'refused')) || undefined);
    expect(refused).toMatch(/Resource temporarily unavailable/);
    const usage = await readCgroupUsage(p.cgroups!);
    expect(usage.pids).toBeLessThanOrEqual(40);
    expect((await processesOfUid(p.uid!)).length).toBeLessThanOrEqual(40);
    // The node still forks (the bomb's processes are its partition's, not the machine's).
    expect(spawnSync('/bin/true').status).toBe(0);

    await destroy('bomb', 'iso-pids', 1);
    // (Waited for: the cleanup of the freed partition runs its own short-lived `kill -KILL -1` as the uid.)
    await waitFor('no process of the partition left', async () => (await processesOfUid(p.uid!)).length === 0);
    expect((await readCgroupUsage(p.cgroups!)).pids).toBe(0);
  });

  it('kills a memory hog inside its partition at its memory limit, not on the node', async () => {
    const a = await agent('iso-mem', 1);
    const hog = await run(
      'hog',
      // The first run grows without end; the restarted one (after the kernel killed it) just waits.
      `if [ -e "$HOX_PARTITION_PATH/started" ]; then exec sleep 1000; fi; touch "$HOX_PARTITION_PATH/started"; exec python3 -c "a = []
while True: a.append(bytearray(8 << 20))"`,
      { memoryBytes: 64 * 1024 * 1024 },
    );
    const p = partitionOf(a, hog.compute_partition_id);
    const usage = await waitFor('the hog was OOM-killed', async () => {
      const u = await readCgroupUsage(p.cgroups!);
      return u.oomKills !== undefined && u.oomKills >= 1 ? u : undefined;
    });
    expect(usage.oomKills).toBeGreaterThanOrEqual(1);
    const memory = p.cgroups!.v1.memory!;
    expect(Number(readFileSync(join(memory, 'memory.limit_in_bytes'), 'utf8'))).toBe(64 * 1024 * 1024);
    expect(Number(readFileSync(join(memory, 'memory.max_usage_in_bytes'), 'utf8'))).toBeLessThanOrEqual(
      64 * 1024 * 1024,
    );
    // The supervisor saw its service killed and started it again: the partition goes on.
    await waitFor('the service restarted', () => a.logs.some((l) => l === `service ${p.partitionId}/main: restarting`));
  });

  it('reports a partition past its disk quota with usage and quota, and stops its services', async () => {
    const dataDir = mkdtempSync(join(WORK_ROOT, 'hox-isolation-node-'));
    const a = await agent('iso-disk', 1, { dataDir, diskCheckIntervalMs: 200 });
    const filler = await run(
      'filler',
      `sleep 1; head -c 12582912 /dev/zero > "$HOX_PARTITION_PATH/big"; exec sleep 1000`,
      { diskBytes: 4 * 1024 * 1024 },
    );
    const p = partitionOf(a, filler.compute_partition_id);
    const message = await waitFor(
      'quota error reported',
      async () => {
        const s = await status('filler');
        return s.includes('disk quota exceeded') ? s : undefined;
      },
      30_000,
    );
    expect(message).toMatch(/partition p0 uses 12(\.\d)? MiB of its 4 MiB/);
    await waitFor('its services stopped', async () => (await processesOfUid(p.uid!)).length === 0);
  });

  it('rotates the log of a service printing without end, under its cap', async () => {
    const a = await agent('iso-log', 1, { logCheckIntervalMs: 100 });
    const logBytes = 1024 * 1024;
    // 16 KiB lines numbered, about 3 MB/s, until 24 MiB are written, then it says so and waits.
    const printer = await run(
      'printer',
      `exec node -e "
let n = 0; const pad = 'x'.repeat(16 * 1024 - 16);
const t = setInterval(() => { for (let i = 0; i < 4; i++) process.stdout.write(String(++n).padStart(8, '0') + ' ' + pad + '\\\\n');
  if (n >= 1536) { clearInterval(t); require('fs').writeFileSync(process.env.HOX_PARTITION_PATH + '/done', String(n)); setInterval(() => {}, 1e6); } }, 20);"`,
      { logBytes },
    );
    const p = partitionOf(a, printer.compute_partition_id);
    await waitFor('the printer wrote 24 MiB', () => existsSync(join(p.path, 'done')), 60_000);
    const log = join(a.dataDir, 'logs', p.partitionId, 'main.log');
    await waitFor('a last rotation', () => statSync(log).size <= logBytes / 2);
    const current = statSync(log).size;
    const rotated = statSync(`${log}.1`).size;
    expect(rotated).toBeLessThanOrEqual(logBytes / 2);
    expect(current + rotated).toBeLessThanOrEqual(logBytes);
    // The newest lines are kept: the last one written is in the current log or the rotated one.
    const tail = readFileSync(log, 'utf8') + readFileSync(`${log}.1`, 'utf8');
    expect(tail).toContain('00001536 ');
    expect(a.logs.some((l) => l.includes(`partition ${p.partitionId}: rotated main.log`))).toBe(true);
  });

  it('wipes a partition whose tenant planted links and read-only directories; the next tenant gets it empty', async () => {
    const outside = mkdtempSync(join(WORK_ROOT, 'hox-isolation-outside-'));
    dirs.push(outside);
    const precious = join(outside, 'precious');
    writeFileSync(precious, 'root-owned, outside the partition\n', { mode: 0o644 });
    mkdirSync(join(outside, 'dir'));
    writeFileSync(join(outside, 'dir', 'keep'), 'keep\n');
    chmodSync(outside, 0o755);
    const a = await agent('iso-wipe', 1);
    const tenant = await run(
      'tenant',
      `cd "$HOX_PARTITION_PATH" && ln -s "${precious}" link-to-file && ln -s "${outside}/dir" link-to-dir &&
       mkdir -p ro/sub && echo x > ro/sub/f && echo y > ro/f && chmod 0555 ro/sub ro &&
       mkdir -p /tmp/ro && echo z > /tmp/ro/f && ln -s "${precious}" /tmp/link && chmod 0555 /tmp/ro &&
       chmod 0777 "$HOX_PARTITION_PATH" && touch planted; exec sleep 1000`,
    );
    const p = partitionOf(a, tenant.compute_partition_id);
    await waitFor('the tenant planted', () => existsSync(join(p.path, 'planted')));
    expect(statSync(join(p.path, 'ro')).mode & 0o777).toBe(0o555);

    await destroy('tenant', 'iso-wipe', 1);
    expect(readFileSync(precious, 'utf8')).toBe('root-owned, outside the partition\n');
    expect(readFileSync(join(outside, 'dir', 'keep'), 'utf8')).toBe('keep\n');
    expect(readdirSync(p.path)).toEqual([]);
    expect(statSync(p.path).mode & 0o777).toBe(0o750);
    // The private /tmp holds only the agent's own mount points (the data dir lies under /tmp here).
    const mountPoints = p.isolation!.keep.map((k) => k.target.slice(p.privateDirs!.tmpDir.length + 1).split('/')[0]);
    expect(readdirSync(p.privateDirs!.tmpDir).filter((e) => !mountPoints.includes(e))).toEqual([]);

    const next = await run('next', `ls -A "$HOX_PARTITION_PATH" > "$HOX_PARTITION_PATH/listing"; exec sleep 1000`);
    expect(next.compute_partition_id).toBe(p.partitionId);
    await waitFor('the next tenant listed its partition', () => existsSync(join(p.path, 'listing')));
    expect(
      readFileSync(join(p.path, 'listing'), 'utf8')
        .split('\n')
        .filter((l) => l !== '' && l !== 'listing' && l !== '.hox'),
    ).toEqual([]);
  });
});
