/**
 * The install step of built-in releases, with real processes: run once per
 * data dir (marker keyed by name and manifest version), in the release's
 * directory, with a clean environment; a failure carries the output's tail.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstallError, Installer } from './installer.js';

const ENTRY =
  'export default { softwareTypes: { default: { parameters: {}, connection: {}, profile: () => ({}) } } };\n';

describe('Installer: built-in releases with an install step', () => {
  let root: string;
  let builtinDir: string;
  let softwareDir: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hox-installer-'));
    builtinDir = join(root, 'releases');
    softwareDir = join(root, 'data', 'software');
    mkdirSync(builtinDir);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function builtin(name: string, version: string, install: string[]): string {
    const dir = join(builtinDir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'release.json'), JSON.stringify({ name, version, entry: 'release.mjs', install }));
    writeFileSync(join(dir, 'release.mjs'), ENTRY);
    return dir;
  }

  function hash16(text: string): string {
    return createHash('sha256').update(text).digest('hex').slice(0, 16);
  }

  it('runs once per data dir and version, in the release directory, with only PATH and LANG', async () => {
    const count = join(root, 'runs');
    const dir = builtin('okdb', '1.0.0', [
      'sh',
      '-c',
      `echo run >> ${count}; pwd; env | sort; echo checked postgresql-15`,
    ]);
    process.env.HOX_SHOULD_NOT_LEAK = 'agent-secret';
    try {
      const installer = new Installer({ softwareDir, builtinDir });
      expect(installer.isInstalled('okdb')).toBe(false);
      await installer.install('okdb');
      expect(installer.isInstalled('okdb')).toBe(true);
    } finally {
      delete process.env.HOX_SHOULD_NOT_LEAK;
    }
    const marker = join(softwareDir, `${hash16('okdb@1.0.0')}.hox-installed.json`);
    expect(JSON.parse(readFileSync(marker, 'utf8'))).toMatchObject({ url: 'okdb', path: dir, version: '1.0.0' });
    // The log is kept in the data dir, never in the release's (shipped, maybe read-only) directory.
    const log = readFileSync(join(softwareDir, `${hash16('okdb@1.0.0')}.hox-install.log`), 'utf8').split('\n');
    expect(existsSync(join(dir, '.hox-install.log'))).toBe(false);
    expect(log[0]).toBe(dir);
    const env = log.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.slice(0, line.indexOf('=')));
    expect(env.filter((name) => !['PATH', 'LANG', 'PWD', 'SHLVL', '_'].includes(name))).toEqual([]);
    expect(log).toContain('checked postgresql-15');

    // Another agent process on the same data dir: installed already, nothing runs again.
    const again = new Installer({ softwareDir, builtinDir });
    expect(again.isInstalled('okdb')).toBe(true);
    await again.install('okdb');
    expect(readFileSync(count, 'utf8')).toBe('run\n');

    // A new version of the built-in (hox upgraded): its install step runs again.
    builtin('okdb', '1.1.0', ['sh', '-c', `echo run >> ${count}`]);
    const upgraded = new Installer({ softwareDir, builtinDir });
    expect(upgraded.isInstalled('okdb')).toBe(false);
    await upgraded.install('okdb');
    expect(readFileSync(count, 'utf8')).toBe('run\nrun\n');
    expect((await upgraded.load('okdb')).manifest.version).toBe('1.1.0');
  });

  it('fails with the tail of the output and leaves no marker', async () => {
    builtin('baddb', '1.0.0', [
      'sh',
      '-c',
      'echo looking for PostgreSQL 15; echo "install the Debian package postgresql-15" >&2; exit 3',
    ]);
    const installer = new Installer({ softwareDir, builtinDir });
    const error = await installer.install('baddb').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InstallError);
    expect((error as InstallError).message).toMatch(/^installing 'baddb' failed: install step .* exited with 3$/);
    expect((error as InstallError).logTail.split('\n')).toEqual(
      expect.arrayContaining(['looking for PostgreSQL 15', 'install the Debian package postgresql-15']),
    );
    expect(installer.isInstalled('baddb')).toBe(false);
    await expect(installer.install('unknown')).rejects.toThrow(/no built-in release named 'unknown'/);
  });
});
