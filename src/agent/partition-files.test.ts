import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writePartitionFiles } from './partition-files.js';

const isRoot = process.getuid?.() === 0;

function nobody(): { uid: number; gid: number } {
  const fields = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === 'nobody');
  if (fields === undefined) throw new Error('no nobody user');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

describe('writePartitionFiles', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function partitionDir(): string {
    const root = mkdtempSync(join(tmpdir(), 'hox-files-'));
    chmodSync(root, 0o711);
    dirs.push(root);
    const path = join(root, 'p0');
    return path;
  }

  it('writes files atomically with their mode, and refuses paths leaving the partition', async () => {
    const path = partitionDir();
    await writePartitionFiles(
      { path, uid: undefined, gid: undefined },
      [{ path: 'etc/app.conf', content: 'a=1\n', mode: 0o600 }],
      process.execPath,
    );
    expect(readFileSync(join(path, 'etc/app.conf'), 'utf8')).toBe('a=1\n');
    expect(statSync(join(path, 'etc/app.conf')).mode & 0o777).toBe(0o600);
    await expect(
      writePartitionFiles(
        { path, uid: undefined, gid: undefined },
        [{ path: '../escape', content: 'x' }],
        process.execPath,
      ),
    ).rejects.toThrow(/leaves the partition/);
  });

  it.skipIf(!isRoot)('writes as the partition user, so a planted symlink cannot redirect a root write', async () => {
    const { uid, gid } = nobody();
    const path = partitionDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path);
    chownSync(path, uid, gid);
    // A root-owned place the partition user must not be able to write into.
    const protectedDir = mkdtempSync(join(tmpdir(), 'hox-protected-'));
    dirs.push(protectedDir);
    chmodSync(protectedDir, 0o755);
    writeFileSync(join(protectedDir, 'target'), 'root data');
    symlinkSync(protectedDir, join(path, 'sub'));
    await expect(
      writePartitionFiles({ path, uid, gid }, [{ path: 'sub/target', content: 'owned!' }], process.execPath),
    ).rejects.toThrow(/failed/);
    expect(readFileSync(join(protectedDir, 'target'), 'utf8')).toBe('root data');
    // Ordinary files land owned by the partition user.
    await writePartitionFiles({ path, uid, gid }, [{ path: 'conf/ok.json', content: '{}' }], process.execPath);
    expect(statSync(join(path, 'conf/ok.json')).uid).toBe(uid);
    expect(existsSync(join(path, 'conf/ok.json.hox-tmp'))).toBe(false);
  });
});
