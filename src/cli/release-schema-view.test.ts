/**
 * `hox releases show NAME` on the built-in releases as they ship: the software types and parameters come
 * from the releases' own schemas, internal types are marked, an unknown name lists the built-in ones.
 */
import { describe, expect, it } from 'vitest';
import { HoxError } from '../shared/errors.js';
import type { CommandEnv } from './command-env.js';
import { buildProgram } from './program.js';
import { builtinReleaseNames, describeBuiltinRelease, renderRelease } from './release-schema-view.js';

describe('hox releases show', () => {
  it('knows the built-in releases', () => {
    expect(builtinReleaseNames()).toEqual(expect.arrayContaining(['demo', 'hyper_db', 'hyper_edge']));
  });

  it("describes hyper_db from its schemas: the cluster's parameters with types, bounds and defaults; member is internal", async () => {
    const view = await describeBuiltinRelease('hyper_db');
    const cluster = view.softwareTypes.find((t) => t.name === 'cluster')!;
    expect(cluster.internal).toBe(false);
    expect(cluster.closed).toBe(true);
    expect(cluster.parameters.find((p) => p.name === 'members')).toEqual({
      name: 'members',
      type: 'integer 1–7',
      required: false,
      default: 3,
      description: 'How many PostgreSQL members',
    });
    expect(view.softwareTypes.find((t) => t.name === 'member')?.internal).toBe(true);
    const text = renderRelease(view).join('\n');
    expect(text).toMatch(
      /^software type cluster\n {2}parameters \(no others accepted\):\n {4}members +integer 1–7 \(default 3\) — How many PostgreSQL members$/m,
    );
    expect(text).toMatch(/^software type member \(internal: requested by the release itself\)$/m);
    // Internal types come last: what a user may request is read first.
    expect(text.indexOf('software type member')).toBeGreaterThan(text.indexOf('software type cluster'));
  });

  it('shows what a software type publishes', async () => {
    const text = renderRelease(await describeBuiltinRelease('demo')).join('\n');
    expect(text).toMatch(/^software type default\n(.*\n)*? {2}publishes:\n {4}url +string \(required\)$/m);
  });

  it('refuses a name that is not a built-in release, listing those that are (exit 1 through the CLI)', async () => {
    const error = await describeBuiltinRelease('dmeo').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HoxError);
    expect((error as HoxError).message).toContain(
      "'dmeo' is not a built-in release (built-in: demo, hyper_cdn, hyper_db, hyper_edge",
    );
    await expect(describeBuiltinRelease('../etc')).rejects.toThrow(/not a built-in release/);
  });

  it('prints JSON with the schemas themselves under --json, without contacting a master', async () => {
    const out: string[] = [];
    const env: CommandEnv = {
      adminToken: undefined,
      masterUrl: 'http://127.0.0.1:9',
      token: 'unused',
      configPath: '/nonexistent/hox-config.json',
      print: (line) => out.push(line),
      printErr: () => {},
      onStop: () => {},
      stopped: new Promise<void>(() => {}),
    };
    await buildProgram(env).parseAsync(['node', 'hox', '--json', 'releases', 'show', 'demo']);
    const view = JSON.parse(out.join('\n')) as Awaited<ReturnType<typeof describeBuiltinRelease>>;
    expect(view.name).toBe('demo');
    const def = view.softwareTypes.find((t) => t.name === 'default')!;
    expect(def.schemas.parameters).toMatchObject({ type: 'object', additionalProperties: false });
    expect(def.connection).toEqual([{ name: 'url', type: 'string', required: true }]);
  });
});
