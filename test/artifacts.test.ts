/** Artifacts (uploaded sources) through the HTTP API on every store: who may upload, who may read, what is checked. */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { addTestNode } from '../src/testing/test-master.js';
import { expectError } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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

  it('lets people upload; nodes, the admin and the uploader read; nobody else', async () => {
    const m = await env.startMaster();
    const node = await addTestNode(m.admin, 'n1', { partitions: 1, releases: [] });
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const content = Buffer.from("alice's app");
    const name = sha(content);
    await expectError(node.client.putArtifact(name, content), 'HOX_FORBIDDEN', /may not upload/);
    await alice.putArtifact(name, content);
    expect((await alice.getArtifact(name)).equals(content)).toBe(true);
    expect((await node.client.getArtifact(name)).equals(content)).toBe(true);
    expect((await m.admin.getArtifact(name)).equals(content)).toBe(true);
    await expectError(bob.getArtifact(name), 'HOX_NOT_FOUND');
    expect(await bob.hasArtifact(name)).toBe(false);
    await expectError(new MasterClient({ url: m.url }).getArtifact(name), 'HOX_UNAUTHENTICATED');
  });
});
