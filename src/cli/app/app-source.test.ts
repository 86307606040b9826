import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isGitSource, packSource } from './app-source.js';

const root = mkdtempSync(join(tmpdir(), 'hox-app-source-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function listArchive(archive: Buffer): string[] {
  const file = join(root, `list-${Math.random()}.tar.gz`);
  writeFileSync(file, archive);
  return execFileSync('tar', ['-tzf', file], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '' && l !== './')
    .map((l) => l.replace(/^\.\//, ''))
    .sort();
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

describe('app sources', () => {
  it('packs a directory without .git, node_modules, .venv or __pycache__, named by its SHA-256', async () => {
    const dir = join(root, 'dir-app');
    mkdirSync(join(dir, 'node_modules', 'x'), { recursive: true });
    mkdirSync(join(dir, 'lib', '__pycache__'), { recursive: true });
    writeFileSync(join(dir, 'server.js'), 'x');
    writeFileSync(join(dir, 'lib', 'a.js'), 'a');
    writeFileSync(join(dir, 'lib', '__pycache__', 'a.pyc'), 'c');
    writeFileSync(join(dir, 'node_modules', 'x', 'index.js'), 'y');
    const packed = await packSource(dir, undefined);
    try {
      expect(packed.dir).toBe(dir);
      expect(packed.sha256).toBe(createHash('sha256').update(packed.archive).digest('hex'));
      expect(listArchive(packed.archive)).toEqual(['lib/', 'lib/a.js', 'server.js']);
    } finally {
      await packed.cleanup();
    }
  });

  it('clones a git repository at a ref (a path with --ref, or a URL)', async () => {
    const repo = join(root, 'repo');
    mkdirSync(repo);
    git(repo, 'init', '--quiet', '-b', 'main');
    writeFileSync(join(repo, 'Procfile'), 'web: node v1.js\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'v1');
    git(repo, 'tag', 'v1');
    writeFileSync(join(repo, 'Procfile'), 'web: node v2.js\n');
    git(repo, 'commit', '--quiet', '-am', 'v2');
    const atTag = await packSource(repo, 'v1');
    try {
      expect(readFileSync(join(atTag.dir, 'Procfile'), 'utf8')).toBe('web: node v1.js\n');
      expect(listArchive(atTag.archive)).toEqual(['Procfile']);
      expect(atTag.description).toBe(`git ${repo}@v1`);
    } finally {
      await atTag.cleanup();
    }
    const head = await packSource(`file://${repo}`, undefined);
    try {
      expect(readFileSync(join(head.dir, 'Procfile'), 'utf8')).toBe('web: node v2.js\n');
    } finally {
      await head.cleanup();
    }
    await expect(packSource(repo, 'no-such-ref')).rejects.toThrow(/git checkout no-such-ref failed/);
  });

  it('unpacks a .tar.gz, descending into a single top-level directory', async () => {
    const src = join(root, 'tarball-src', 'app-1.0');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'index.html'), '<h1>hi</h1>');
    const tarball = join(root, 'app.tgz');
    execFileSync('tar', ['-czf', tarball, '-C', join(root, 'tarball-src'), 'app-1.0']);
    const packed = await packSource(tarball, undefined);
    try {
      expect(readFileSync(join(packed.dir, 'index.html'), 'utf8')).toBe('<h1>hi</h1>');
      expect(listArchive(packed.archive)).toEqual(['index.html']);
    } finally {
      await packed.cleanup();
    }
  });

  it('refuses what is none of these, naming it', async () => {
    await expect(packSource(join(root, 'missing'), undefined)).rejects.toThrow(
      /is not a directory, a git repository .* or a \.tar\.gz archive/,
    );
    expect(isGitSource('https://example.org/a.git', undefined)).toBe(true);
    expect(isGitSource('git@example.org:a/b', undefined)).toBe(true);
    expect(isGitSource('./app', undefined)).toBe(false);
    expect(isGitSource('./app', 'main')).toBe(true);
  });
});
