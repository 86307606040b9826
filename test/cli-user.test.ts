/**
 * `hox user create|token|list` through the real program against a real master: the token printed works
 * for its user and only shows that user's trees; a name taken or malformed, or a non-admin caller, is
 * refused with the master's reason and the CLI's exit code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import type { CommandEnv } from '../src/cli/command-env.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { buildProgram } from '../src/cli/program.js';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';

describe('hox user', () => {
  let m: TestMaster;
  beforeAll(async () => (m = await startTestMaster()));
  afterAll(async () => m.stop());

  async function hox(args: string[], token = m.adminToken) {
    const out: string[] = [];
    const err: string[] = [];
    const env: CommandEnv = {
      adminToken: undefined,
      masterUrl: m.url,
      token,
      configPath: '/nonexistent/hox-config.json',
      print: (line) => out.push(line),
      printErr: (line) => err.push(line),
      onStop: () => {},
      stopped: new Promise<void>(() => {}),
    };
    let code = 0;
    try {
      await buildProgram(env).parseAsync(['node', 'hox', ...args]);
    } catch (error) {
      code = exitCodeFor(error);
      err.push(error instanceof Error ? error.message : String(error));
    }
    return { out, err, code };
  }

  it('creates a user whose printed token signs in as that user, and says how to hand it over', async () => {
    const created = await hox(['user', 'create', 'alice']);
    expect(created.code).toBe(0);
    expect(created.out).toHaveLength(1);
    const token = created.out[0]!;
    expect(await new MasterClient({ url: m.url, token }).call('whoami', {})).toMatchObject({ kind: 'user' });
    expect(created.err.join('\n')).toContain(`hox login --url ${m.url} --ca-pin <CA pin> --with-token -`);

    const again = await hox(['user', 'token', 'alice']);
    expect(again.code).toBe(0);
    expect(again.out[0]).not.toBe(token);
    expect(await new MasterClient({ url: m.url, token: again.out[0]! }).call('whoami', {})).toMatchObject({
      kind: 'user',
    });

    const listed = await hox(['--json', 'user', 'list']);
    const users = JSON.parse(listed.out[0]!) as { name: string; user_id: string }[];
    expect(users.map((u) => u.name)).toEqual(['alice']);
    const table = await hox(['user', 'list']);
    expect(table.out.join('\n')).toMatch(/^NAME +ID +CREATED\nalice +USER-\S+ +\d{4}-\d\d-\d\dT/m);
  });

  it('refuses a name taken, a malformed name, an unknown user, and a caller who is not the admin', async () => {
    await hox(['user', 'create', 'bob']);
    const taken = await hox(['user', 'create', 'bob']);
    expect(taken.code).toBe(1);
    expect(taken.err.join('\n')).toContain("user 'bob' already exists");
    const bad = await hox(['user', 'create', 'Bob Smith']);
    expect(bad.code).toBe(2);
    expect(bad.err.join('\n')).toMatch(/lowercase letters/);
    const unknown = await hox(['user', 'token', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.err.join('\n')).toContain("user 'nobody' not found");
    const bobToken = (await hox(['user', 'token', 'bob'])).out[0]!;
    const denied = await hox(['user', 'create', 'carol'], bobToken);
    expect(denied.code, denied.err.join('\n')).toBe(1);
    expect(denied.err.join('\n')).toMatch(/may not call/);
    expect((await hox(['--json', 'user', 'list'])).out[0]).not.toContain('carol');
  });
});
