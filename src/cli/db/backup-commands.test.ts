/**
 * `hox db backup|restore` as parsed by the real program: their help, and the refusals made before any
 * master is contacted (the master URL below is never reachable, so reaching it would fail differently).
 */
import type { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { exitCodeFor } from '../exit-codes.js';
import { buildProgram } from '../program.js';

function run(args: string[]): Promise<{ out: string[]; err: string[]; error: unknown }> {
  const out: string[] = [];
  const err: string[] = [];
  const env: CommandEnv = {
    adminToken: undefined,
    masterUrl: 'http://127.0.0.1:9',
    token: 'test-token',
    configPath: '/nonexistent/hox-config.json',
    print: (line) => out.push(line),
    printErr: (line) => err.push(line),
    onStop: () => {},
    stopped: new Promise<void>(() => {}),
  };
  return buildProgram(env)
    .parseAsync(['node', 'hox', ...args])
    .then(
      () => ({ out, err, error: undefined }),
      (error: unknown) => ({ out, err, error }),
    );
}

describe('hox db backups|backup|restore', () => {
  it('are listed by hox db --help', async () => {
    const { out, error } = await run(['db', '--help']);
    expect((error as CommanderError).code).toBe('commander.helpDisplayed');
    const text = out.join('\n');
    expect(text).toMatch(/^ {2}backup \[options\] <name> +Take a verified base backup now/m);
    expect(text).toMatch(/^ {2}backups <name> +The cluster's base backups/m);
    expect(text).toMatch(/^ {2}restore \[options\] <new> +Restore another cluster's backups into a NEW cluster/m);
  });

  it('restore --help says the target must lie within the archived WAL and the restore stops just before it', async () => {
    const { out } = await run(['db', 'restore', '--help']);
    const text = out.join('\n').replace(/\s+/g, ' ');
    for (const flag of ['--from <source>', '--time <iso>', '--backup <id>', '--members <n>', '--wait', '--timeout'])
      expect(text).toContain(flag);
    expect(text).toContain("A target time must lie within the source's archived WAL");
    expect(text).toContain('Without --time (or with --time latest) the whole archived WAL is replayed');
    expect(text).toContain('before the last archived transaction');
    expect(text).toContain('Replay stops just before the target time');
  });

  it('refuses a bad or future --time with exit code 2, before contacting the master', async () => {
    for (const time of ['yesterday', '2999-01-01T00:00:00Z']) {
      const { error } = await run(['db', 'restore', 'copy', '--from', 'crm-db', '--time', time]);
      expect(error).toBeInstanceOf(HoxError);
      expect((error as HoxError).field).toBe('--time');
      expect(exitCodeFor(error)).toBe(2);
    }
    const same = await run(['db', 'restore', 'crm-db', '--from', 'crm-db', '--time', '2020-01-01T00:00:00Z']);
    expect((same.error as HoxError).message).toContain("other than its source 'crm-db'");
  });

  it('requires --from, not --time (latest), and still checks the names first', async () => {
    const { error, err } = await run(['db', 'restore', 'copy', '--time', '2020-01-01T00:00:00Z']);
    expect((error as CommanderError).code).toBe('commander.missingMandatoryOptionValue');
    expect(err.join('\n')).toContain("required option '--from <source>' not specified");
    const same = await run(['db', 'restore', 'crm-db', '--from', 'crm-db']);
    expect((same.error as HoxError).message).toContain("other than its source 'crm-db'");
    expect(exitCodeFor(same.error)).toBe(2);
  });
});
