/**
 * Artifacts (uploaded sources) through the HTTP API on every store: who may upload, who may read (owners,
 * their instances, the admin; not a node's own token), what is checked before a body is read (the token,
 * the declared size, the quota), limits enforced while streaming, and the collection of unreferenced ones.
 * Then through a real node agent (as root: partition users): an artifact reaches only the partitions of
 * its owner's (or the admin's) instances, and its hash never shows on a command line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { collectArtifacts } from '../src/master/artifact-collector.js';
import { watchCommandLines } from '../src/testing/command-line-watch.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { disposeAgent, startAgent, waitFor, type AgentFixture } from './support/agent-harness.js';
import { RELEASE, asDoc, expectError } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

interface RawAnswer {
  status: number;
  type: string | undefined;
  /** Body bytes handed to the socket when the answer arrived. */
  sentBytes: number;
}

/**
 * A PUT of `totalBytes` (declared in content-length, or chunked), written 64 KiB at a time only as the
 * connection takes them, stopping as soon as the master answers. `bodyBytes: 0` sends the headers alone:
 * a master that reads the body before answering never answers (the test then fails on its deadline).
 */
function rawUpload(
  url: string,
  options: { token?: string; totalBytes: number; chunked?: boolean; bodyBytes?: number },
): Promise<RawAnswer> {
  const name = 'a'.repeat(64);
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const deadline = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer after ${sentBytes} body bytes: the master waits for the body`));
    }, 20_000);
    const req = httpRequest(`${url}/hox/v1/artifacts/${name}`, {
      method: 'PUT',
      agent: false,
      headers: {
        'content-type': 'application/octet-stream',
        ...(options.chunked === true ? {} : { 'content-length': String(options.totalBytes) }),
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      },
    });
    req.on('error', () => undefined); // the master closes the connection after answering: writes fail
    req.on('response', (res) => {
      answered = true;
      const at = sentBytes;
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        clearTimeout(deadline);
        let type: string | undefined;
        try {
          type = (JSON.parse(text) as { type?: string }).type;
        } catch {
          type = undefined;
        }
        resolve({ status: res.statusCode ?? 0, type, sentBytes: at });
        req.destroy();
      });
    });
    const limit = Math.min(options.bodyBytes ?? options.totalBytes, options.totalBytes);
    const chunk = Buffer.alloc(64 * 1024, 7);
    req.flushHeaders();
    const pump = () => {
      while (!answered && !req.destroyed && sentBytes < limit) {
        const piece = chunk.subarray(0, Math.min(chunk.length, limit - sentBytes));
        sentBytes += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered && sentBytes >= options.totalBytes) req.end();
    };
    pump();
  });
}

describeEachStore('artifacts', (env) => {
  it('stores an upload under its SHA-256, once, and gives it back byte for byte', async () => {
    const m = await env.startMaster();
    const content = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const name = sha(content);
    expect(await m.admin.hasArtifact(name)).toBe(false);
    expect(await m.admin.putArtifact(name, content)).toEqual({ sha256: name, size_bytes: content.length });
    expect(await m.admin.putArtifact(name, content)).toEqual({ sha256: name, size_bytes: content.length });
    expect(await m.admin.hasArtifact(name)).toBe(true);
    expect((await m.admin.getArtifact(name)).equals(content)).toBe(true);
  });

  it('refuses a body whose hash is not the name, and a name that is not a SHA-256', async () => {
    const m = await env.startMaster();
    const content = Buffer.from('source');
    await expectError(m.admin.putArtifact(sha(Buffer.from('other')), content), 'HOX_BAD_REQUEST', /SHA-256 is/);
    await expectError(m.admin.putArtifact('ABC', content), 'HOX_BAD_REQUEST', /not a lowercase SHA-256/);
    expect(await m.admin.hasArtifact(sha(content))).toBe(false);
  });

  it("lets people upload and read their own; an instance reads its owner's and the admin's; a node's token none", async () => {
    const m = await env.startMaster();
    const node = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const content = Buffer.from("alice's app");
    const name = sha(content);
    const shared = Buffer.from('an image the admin offers everyone');
    await expectError(node.client.putArtifact(name, content), 'HOX_FORBIDDEN', /may not upload/);
    await alice.putArtifact(name, content);
    await m.admin.putArtifact(sha(shared), shared);
    expect((await alice.getArtifact(name)).equals(content)).toBe(true);
    expect((await m.admin.getArtifact(name)).equals(content)).toBe(true);
    // Attack: a node's own token no longer reads any artifact (it fetches them as the instance).
    await expectError(node.client.getArtifact(name), 'HOX_FORBIDDEN', /may not read artifacts/);
    await expectError(node.client.getArtifact(sha(shared)), 'HOX_FORBIDDEN');
    await expectError(bob.getArtifact(name), 'HOX_NOT_FOUND');
    expect(await bob.hasArtifact(name)).toBe(false);
    await expectError(new MasterClient({ url: m.url }).getArtifact(name), 'HOX_UNAUTHENTICATED');

    // Instances read their tree owner's artifacts and the admin's, nothing else.
    const asInstance = async (owner: MasterClient, title: string) => {
      const doc = asDoc(
        await owner.call('requestInstance', { title, software_release_uri: RELEASE, software_type: 'default' }),
      );
      const { token } = await node.client.call('issueInstanceToken', { instance_guid: doc.instance_guid });
      return m.admin.withToken(token);
    };
    const aliceInstance = await asInstance(alice, 'a');
    const bobInstance = await asInstance(bob, 'b');
    expect((await aliceInstance.getArtifact(name)).equals(content)).toBe(true);
    expect((await aliceInstance.getArtifact(sha(shared))).equals(shared)).toBe(true);
    expect((await bobInstance.getArtifact(sha(shared))).equals(shared)).toBe(true);
    // Attack: bob's instance names alice's hash.
    await expectError(bobInstance.getArtifact(name), 'HOX_NOT_FOUND', /its owner .* has not uploaded it/);
    expect(await bobInstance.hasArtifact(name)).toBe(false);

    // Bob uploading the same bytes makes them his too: he, and his instances, may read them.
    await bob.putArtifact(name, content);
    expect((await bobInstance.getArtifact(name)).equals(content)).toBe(true);
    expect(await bob.hasArtifact(name)).toBe(true);
  });

  it('answers an upload without a valid token, or over the size limit, before reading its body', async () => {
    const m = await env.startMaster();
    const aliceToken = (await m.admin.call('createUser', { name: 'alice' })).token;
    const node = await addTestNode(m.admin, 'n1', { partitions: 1 });
    const total = 256 * MiB;
    // Headers only: the answer comes though no body byte was sent.
    for (const [token, status, type] of [
      [undefined, 401, 'HOX_UNAUTHENTICATED'],
      ['not-a-token-at-all', 401, 'HOX_UNAUTHENTICATED'],
      [node.token, 403, 'HOX_FORBIDDEN'],
      [aliceToken, 413, 'HOX_BODY_TOO_LARGE'], // declared 256 MiB + 1 > the 256 MiB limit
    ] as const) {
      const answer = await rawUpload(m.url, {
        ...(token === undefined ? {} : { token }),
        totalBytes: type === 'HOX_BODY_TOO_LARGE' ? total + 1 : total,
        bodyBytes: 0,
      });
      expect(answer, `token ${String(token).slice(0, 10)}`).toEqual({ status, type, sentBytes: 0 });
    }

    // The attack as found: 4 unauthenticated uploads of 256 MiB at once, the client pushing as fast as the
    // connection takes it. Each is answered while nearly all of its body is still unsent, and the master's
    // memory does not grow by the bodies (it grew by 1 GiB before).
    const rssBefore = process.memoryUsage().rss;
    const answers = await Promise.all(Array.from({ length: 4 }, () => rawUpload(m.url, { totalBytes: total })));
    const growthBytes = process.memoryUsage().rss - rssBefore;
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.sentBytes).toBeLessThan(total / 8);
    }
    console.log(
      `4 unauthenticated 256 MiB uploads: answered after ${answers.map((a) => (a.sentBytes / MiB).toFixed(1)).join(', ')} MiB sent; RSS growth ${(growthBytes / MiB).toFixed(1)} MiB`,
    );
    expect(growthBytes).toBeLessThan(256 * MiB);
  });

  it('stops reading an upload at the size limit and stores nothing', async () => {
    const m = await env.startMaster({ artifacts: { limitBytes: MiB } });
    const aliceToken = (await m.admin.call('createUser', { name: 'alice' })).token;
    const alice = m.admin.withToken(aliceToken);
    // Chunked: no length to check up front; the master stops reading once past 1 MiB.
    const answer = await rawUpload(m.url, { token: aliceToken, totalBytes: 64 * MiB, chunked: true });
    expect(answer.status).toBe(413);
    expect(answer.type).toBe('HOX_BODY_TOO_LARGE');
    expect(answer.sentBytes).toBeLessThan(32 * MiB);
    // Through the client: the same error, and nothing stored.
    const big = Buffer.alloc(MiB + 1, 1);
    await expectError(alice.putArtifact(sha(big), big), 'HOX_BODY_TOO_LARGE', /over the limit of 1048576 bytes/);
    expect(await m.admin.hasArtifact(sha(big))).toBe(false);
    const fits = Buffer.alloc(MiB, 2);
    await alice.putArtifact(sha(fits), fits);
    expect(await alice.hasArtifact(sha(fits))).toBe(true);
  });

  it("holds each user to the artifact quota; the admin has none; re-uploading one's own costs nothing", async () => {
    const m = await env.startMaster({ artifacts: { quotaBytes: MiB } });
    const aliceToken = (await m.admin.call('createUser', { name: 'alice' })).token;
    const alice = m.admin.withToken(aliceToken);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const first = Buffer.alloc(600 * 1024, 1);
    const second = Buffer.alloc(600 * 1024, 2);
    await alice.putArtifact(sha(first), first);
    await expectError(
      alice.putArtifact(sha(second), second),
      'HOX_ARTIFACT_QUOTA_EXCEEDED',
      /over the quota of 1048576 bytes/,
    );
    expect(await alice.hasArtifact(sha(second))).toBe(false);
    await alice.putArtifact(sha(first), first); // already hers: no charge
    // Declared over the quota: refused before the body.
    expect(await rawUpload(m.url, { token: aliceToken, totalBytes: 500 * 1024, bodyBytes: 0 })).toEqual({
      status: 413,
      type: 'HOX_ARTIFACT_QUOTA_EXCEEDED',
      sentBytes: 0,
    });
    // Another user's quota is his own, and content alice already stored counts for him too (each owner pays
    // for its claim).
    await bob.putArtifact(sha(first), first);
    await expectError(bob.putArtifact(sha(second), second), 'HOX_ARTIFACT_QUOTA_EXCEEDED');
    await bob.putArtifact(sha(Buffer.alloc(10, 3)), Buffer.alloc(10, 3));
    // Parallel uploads cannot add up past the quota either.
    const carol = m.admin.withToken((await m.admin.call('createUser', { name: 'carol' })).token);
    const parts = [4, 5, 6].map((fill) => Buffer.alloc(400 * 1024, fill));
    const results = await Promise.allSettled(parts.map((p) => carol.putArtifact(sha(p), p)));
    const stored = (await Promise.all(parts.map((p) => carol.hasArtifact(sha(p))))).filter(Boolean).length;
    expect(stored).toBe(results.filter((r) => r.status === 'fulfilled').length);
    expect(stored).toBeLessThanOrEqual(2);
    // The admin is not bounded.
    for (const fill of [7, 8, 9])
      await m.admin.putArtifact(sha(Buffer.alloc(600 * 1024, fill)), Buffer.alloc(600 * 1024, fill));
  });

  it('deletes an artifact nothing references once its grace period is over, and keeps referenced ones', async () => {
    let now = Date.now();
    const clock = { nowMs: () => now };
    const graceMs = 3_600_000;
    const m = await env.startMaster({ clock, artifacts: { graceMs, collectIntervalMs: 100 } });
    const store = m.master.store;
    await addTestNode(m.admin, 'n1', { partitions: 3, releases: [RELEASE] });
    const aliceUser = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceUser.token);
    const aliceId = (await alice.call('whoami', {})).subject!;
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const blob = (text: string) => Buffer.from(text);
    const [unused, deployed, adminUnused, adminUsedByBob] = ['unused', 'deployed', 'admin unused', 'admin used'].map(
      blob,
    ) as [Buffer, Buffer, Buffer, Buffer];
    await alice.putArtifact(sha(unused), unused);
    await alice.putArtifact(sha(deployed), deployed);
    await m.admin.putArtifact(sha(adminUnused), adminUnused);
    await m.admin.putArtifact(sha(adminUsedByBob), adminUsedByBob);
    const requestNaming = (client: MasterClient, title: string, artifact: string, state?: 'destroyed') =>
      client.call('requestInstance', {
        title,
        software_release_uri: RELEASE,
        software_type: 'default',
        parameters: { release: { id: 1, artifact } },
        ...(state === undefined ? {} : { state }),
      });
    await requestNaming(alice, 'app', sha(deployed));
    await requestNaming(bob, 'app', sha(adminUsedByBob));
    const held = async () =>
      new Set(
        (
          await Promise.all(
            [unused, deployed, adminUnused, adminUsedByBob].map(async (b) =>
              (await store.artifacts.sizeOf(sha(b))) === undefined ? undefined : b.toString(),
            ),
          )
        ).filter((x) => x !== undefined),
      );

    // Within the grace period nothing goes, referenced or not.
    now += graceMs - 1000;
    expect(await collectArtifacts(store, now, graceMs)).toBe(0);
    expect(await held()).toEqual(new Set(['unused', 'deployed', 'admin unused', 'admin used']));

    // Past it, the periodic collection removes the unreferenced ones only.
    now += 2000;
    await expect.poll(held, { timeout: 10_000, interval: 100 }).toEqual(new Set(['deployed', 'admin used']));
    expect(await store.artifacts.get(sha(unused), aliceId)).toBeUndefined();
    expect(await store.artifacts.usageBytes(aliceId)).toBe(deployed.length);

    // A check by its owner restarts the grace period (hox app deploy checks before it deploys).
    await alice.putArtifact(sha(unused), unused);
    now += graceMs - 1000;
    expect(await alice.hasArtifact(sha(unused))).toBe(true);
    now += 2000;
    expect(await collectArtifacts(store, now, graceMs)).toBe(0);
    expect(await held()).toEqual(new Set(['unused', 'deployed', 'admin used']));

    // Once the instance naming it is destroyed, the artifact goes too.
    await requestNaming(alice, 'app', sha(deployed), 'destroyed');
    now += graceMs + 1;
    await expect.poll(held, { timeout: 10_000, interval: 100 }).toEqual(new Set(['admin used']));
  });
});

const isRoot = process.getuid?.() === 0;

/** A release whose plan puts the artifact its parameters name at `sources/<sha256>.bin`, and publishes nothing else. */
const ARTIFACT_RELEASE = {
  'release.json': JSON.stringify({ name: 'artifact-probe', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `export default {
  softwareTypes: {
    default: {
      parameters: {
        type: 'object',
        additionalProperties: false,
        required: ['sha256'],
        properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
      },
      connection: { type: 'object' },
      profile(input) {
        // Named after the hash, as releases used to be told to: the path must still never reach a command line.
        const path = 'sources/' + input.parameters.sha256 + '.bin';
        return { artifacts: [{ sha256: input.parameters.sha256, path }], publish: { path } };
      },
    },
  },
};
`,
};

describe.skipIf(!isRoot && process.env.CI !== 'true')('artifacts delivered by a node agent', () => {
  let m: TestMaster;
  let agent: AgentFixture | undefined;
  let releaseDir: string;

  beforeAll(async () => {
    expect(isRoot, 'partition users need root (CI=true runs this as root)').toBe(true);
    m = await startTestMaster();
    releaseDir = mkdtempSync(join(tmpdir(), 'hox-artifact-release-'));
    for (const [name, content] of Object.entries(ARTIFACT_RELEASE))
      writeFileSync(join(releaseDir, name), content, { mode: 0o644 });
    chmodSync(releaseDir, 0o755);
    agent = await startAgent(m.admin, { nodeId: 'art1', partitions: 3 });
    await m.admin.call('supply', { computer_guid: 'art1', software_release_uri: releaseDir });
    await waitFor('the release installed', async () =>
      (await m.admin.call('listSoftwareStatus', { computer_guid: 'art1' })).result_list.some(
        (s) => s.reported_state === 'available',
      ),
    );
  });
  afterAll(async () => {
    await disposeAgent(agent);
    await m?.stop();
    rmSync(releaseDir, { recursive: true, force: true });
  });

  it("copies an artifact only for its owner's or the admin's instances, the node's cache no way around it", async () => {
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    // Large enough that the copy into the partition takes a while: a command line would be seen.
    const aliceSource = randomBytes(8 * MiB);
    const adminImage = randomBytes(64 * 1024);
    const [a, c] = [sha(aliceSource), sha(adminImage)];
    const watch = watchCommandLines([a, c, a.slice(0, 16), c.slice(0, 16)]);
    await alice.putArtifact(a, aliceSource);
    await m.admin.putArtifact(c, adminImage);

    const deploy = async (owner: MasterClient, title: string, artifact: string) => {
      const doc = asDoc(
        await owner.call('requestInstance', {
          title,
          software_release_uri: releaseDir,
          software_type: 'default',
          parameters: { sha256: artifact },
        }),
      );
      const partition = agent!.agent.partitions.find((p) => p.partitionId === doc.compute_partition_id)!;
      return { partition, file: join(partition.path, 'sources', `${artifact}.bin`) };
    };
    const status = async (owner: MasterClient, title: string) =>
      (await owner.call('listTreeStatus', { title })).result_list[0]?.instance_list.find((i) => i.title === title);

    // Alice's own instance gets her archive, as her partition's user, read-only.
    const mine = await deploy(alice, 'mine', a);
    await waitFor("the artifact in alice's partition", () => existsSync(mine.file));
    expect(readFileSync(mine.file).equals(aliceSource)).toBe(true);
    expect(statSync(mine.file).uid).toBe(mine.partition.uid);
    expect(statSync(mine.file).mode & 0o777).toBe(0o440);

    // The attack: bob's instance names alice's hash (its bytes are in the node's cache by now).
    const theirs = await deploy(bob, 'theirs', a);
    const refused = await waitFor("bob's instance reports the refusal", async () => {
      const i = await status(bob, 'theirs');
      return i?.access_status_message.startsWith('#error while') === true ? i : undefined;
    });
    expect(refused.access_status_message).toBe(
      `#error while instanciating: artifact ${a} is not available to this instance: only artifacts uploaded by ` +
        "the instance's owner (or the admin) can be used, and this one was not (or was deleted as unused)",
    );
    expect(existsSync(theirs.file)).toBe(false);
    expect(existsSync(join(theirs.partition.path, 'sources'))).toBe(false);

    // What the admin uploaded, anyone's instance may use.
    const shared = await deploy(bob, 'shared', c);
    await waitFor("the admin's artifact in bob's partition", () => existsSync(shared.file));
    expect(readFileSync(shared.file).equals(adminImage)).toBe(true);
    // Still refused on later convergences.
    expect((await status(bob, 'theirs'))?.access_status_message).toContain('is not available to this instance');
    expect(existsSync(theirs.file)).toBe(false);

    const { scans, hits } = watch.stop();
    console.log(`command lines scanned ${scans} times during uploads and deliveries`);
    expect(scans).toBeGreaterThan(50);
    expect(hits, 'command lines showing an artifact hash').toEqual([]);
  });
});
