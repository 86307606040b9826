/**
 * `hox completion bash|zsh`: the bash script is valid bash, and run by a real
 * bash with COMP_WORDS set as bash sets them on <Tab>, it completes commands,
 * subcommands, options and option choices of the real program.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHox } from './support/hox-cli.js';

describe('hox completion', () => {
  let dir: string;
  let script: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hox-completion-'));
    env = { PATH: process.env.PATH, HOME: dir, HOX_CONFIG: join(dir, 'config.json') };
    const run = await runHox(['completion', 'bash'], env);
    expect(run.code).toBe(0);
    script = join(dir, 'hox.bash');
    writeFileSync(script, run.stdout);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** What bash's completion function offers for `words` with the cursor on the last word. */
  function complete(words: string[]): string[] {
    const quoted = words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(' ');
    const out = execFileSync(
      'bash',
      [
        '--norc',
        '-c',
        `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _hox_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        script,
      ],
      { encoding: 'utf8' },
    );
    return out.split('\n').filter(Boolean);
  }

  it('prints a script bash accepts (bash -n)', () => {
    const check = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('completes commands, subcommands, options and choices', () => {
    expect(complete(['hox', 'd'])).toEqual(['destroy', 'db']);
    expect(complete(['hox', 'db', 'sw'])).toEqual(['switchover']);
    expect(complete(['hox', 'app', 'st'])).toEqual(['status']);
    // Options of the subcommand, after an argument and another option's value.
    expect(complete(['hox', 'db', 'create', 'crm-db', '--members', '3', '--sy'])).toEqual(['--sync-mode']);
    expect(complete(['hox', 'db', 'create', 'crm-db', '--sync-mode', ''])).toEqual(['quorum', 'strict', 'async']);
    expect(complete(['hox', '--json', 'app', 'config', ''])).toEqual(expect.arrayContaining(['set', 'unset', 'list']));
    // Hidden options (refused secrets in argv) are not offered.
    expect(complete(['hox', 'node', '--re'])).toEqual(['--register-token-file', '--retention-days']);
  });

  it('zsh gets the same through bashcompinit; an unknown shell is bad input', async () => {
    const zsh = await runHox(['completion', 'zsh'], env);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef hox\n/);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(zsh.stdout).toContain("'db create --sync-mode') echo 'quorum strict async' ;;");
    const fish = await runHox(['completion', 'fish'], env);
    expect(fish.code).toBe(2);
    expect(fish.stderr).toContain("no completion for shell 'fish': bash or zsh");
  });
});
