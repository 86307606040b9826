/** Bad input: a 4xx naming the field and the reason, no state changed, no secret logged. */
import { expect, it } from 'vitest';
import { addTestNode, type TestMaster } from '../src/testing/test-master.js';
import { describeEachStore } from './support/store-matrix.js';
import { RELEASE, expectError, request } from './support/helpers.js';

describeEachStore('bad input', (env) => {
  const logLines: string[] = [];
  let m: TestMaster;

  async function setup(): Promise<void> {
    logLines.length = 0;
    m = await env.startMaster({ logStream: { write: (line) => logLines.push(line) }, logLevel: 'debug' });
    await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
  }

  async function post(
    path: string,
    body: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${m.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${m.adminToken}`, 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** The state a bad request must not change. */
  async function snapshot(): Promise<string> {
    const trees = await m.admin.call('listTreeStatus', {});
    const nodes = await m.admin.call('listNodes', {});
    const partitions = await m.admin.call('listPartitionDocuments', { computer_guid: 'n1' });
    // Ages grow with the clock alone (reported_age_ms): they are not a change made by a request.
    return JSON.stringify([trees, nodes, partitions], (key, value: unknown) =>
      key === 'reported_age_ms' ? undefined : value,
    );
  }

  it('rejects malformed bodies with the field and reason, changing nothing', async () => {
    await setup();
    await request(m.admin, 'existing', { parameters: { a: 1 } });
    const before = await snapshot();
    const path = '/slapos.post.v0.software_instance';
    const cases: [string, RegExp, string | undefined][] = [
      ['{"title": "x",', /not valid JSON/, 'body'],
      ['[]', /body/, 'body'],
      ['{"software_release_uri": "r", "software_type": "t"}', /title/, 'title'],
      [JSON.stringify({ title: 42, software_release_uri: RELEASE, software_type: 't' }), /title.*string/, 'title'],
      [
        JSON.stringify({ title: 'x', software_release_uri: RELEASE, software_type: 't', colour: 'red' }),
        /colour: unknown field/,
        'colour',
      ],
      [
        JSON.stringify({ title: 'x'.repeat(201), software_release_uri: RELEASE, software_type: 't' }),
        /title.*200/,
        'title',
      ],
      [
        JSON.stringify({ title: 'x', software_release_uri: RELEASE, software_type: 't', state: 'exploded' }),
        /state/,
        'state',
      ],
      [
        JSON.stringify({ title: 'x', software_release_uri: RELEASE, software_type: 't', parameters: 'a=b' }),
        /parameters/,
        'parameters',
      ],
      [
        JSON.stringify({
          title: 'existing',
          software_release_uri: RELEASE,
          software_type: 'default',
          parameters: { a: 2 },
          sla_parameters: { bogus: '1' },
        }),
        /bogus/,
        'sla_parameters.bogus',
      ],
      [
        JSON.stringify({
          title: 'existing',
          software_release_uri: RELEASE,
          software_type: 'default',
          sla_parameters: { mode: 'everywhere' },
        }),
        /mode/,
        'sla_parameters.mode',
      ],
    ];
    for (const [body, message, field] of cases) {
      const { status, json } = await post(path, body);
      expect(status, body).toBe(400);
      expect(json.title, body).toMatch(message);
      expect(json.field, body).toBe(field);
    }
    expect(await snapshot()).toBe(before);
  });

  it('rejects unknown objects by name and oversized bodies, changing nothing', async () => {
    await setup();
    const before = await snapshot();
    await expectError(
      m.admin.call('getInstance', { instance_guid: 'SOFTINST-nope' }),
      'HOX_INSTANCE_NOT_FOUND',
      /'SOFTINST-nope'/,
    );
    await expectError(
      m.admin.call('supply', { computer_guid: 'ghost', software_release_uri: RELEASE }),
      'HOX_NODE_NOT_FOUND',
      /'ghost'/,
    );
    // A release nobody supplies is no bad input (the request waits for one: request-semantics 5), but a node
    // that is not registered is.
    await expectError(
      request(m.admin, 'x', { sla_parameters: { computer_guid: 'n-unknown' } }),
      'HOX_NODE_NOT_FOUND',
      /'n-unknown'/,
    );
    await expectError(
      m.admin.call('supply', { computer_guid: 'n1', software_release_uri: 'https://x/never', state: 'destroyed' }),
      'HOX_SOFTWARE_INSTALLATION_NOT_FOUND',
    );
    const big = JSON.stringify({
      title: 'big',
      software_release_uri: RELEASE,
      software_type: 't',
      parameters: { blob: 'x'.repeat(3 * 1024 * 1024) },
    });
    const { status, json } = await post('/slapos.post.v0.software_instance', big);
    expect(status).toBe(413);
    // SlapOS's routes answer SlapOS's way (src/protocol/slapos-errors.ts); the client reads both.
    expect(json.type).toBe('BODY-TOO-LARGE');
    const wrongType = await post('/slapos.post.v0.software_instance', 'title=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(wrongType.status).toBe(415 === wrongType.status ? 415 : 400);
    expect(wrongType.json.type).toBe('invalid-json-object-content');
    const unknownPath = await post('/slapos.post.v0.nothing', '{}');
    expect(unknownPath.status).toBe(404);
    expect(unknownPath.json.type).toBe('not-found');
    const unknownOwn = await post('/hox.get.v1.nothing', '{}');
    expect(unknownOwn.status).toBe(404);
    expect(unknownOwn.json.type).toBe('HOX_NOT_FOUND');
    expect(await snapshot()).toBe(before);
  });

  it('never logs a token or a secret', async () => {
    await setup();
    const { token: userToken } = await m.admin.call('createUser', { name: 'carol' });
    const carol = m.admin.withToken(userToken);
    await request(carol, 'app');
    await expectError(carol.call('supply', { computer_guid: 'n1', software_release_uri: 'x' }), 'HOX_FORBIDDEN');
    await post('/slapos.post.v0.software_instance', '{broken', { authorization: `Bearer ${m.adminToken}` });
    await post('/slapos.post.v0.software_instance', '{}', { authorization: 'Bearer hox_user_leaked-guess-123' });
    const logged = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [m.adminToken, userToken, 'hox_user_leaked-guess-123']) expect(logged).not.toContain(secret);
  });
});
