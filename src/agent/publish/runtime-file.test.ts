/**
 * Reading `.hox/publish.json` as the (root) agent from a directory its tenant
 * controls: real files, links, FIFOs; as root, a real unprivileged owner.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_RUNTIME_PUBLISH_BYTES, ensureRuntimeDir, readRuntimePublication } from './runtime-file.js';

const isRoot = process.getuid?.() === 0;
/** An unprivileged uid/gid that owns nothing of ours (nobody), as root; else ourselves. */
const tenant = isRoot ? { uid: 65534, gid: 65534 } : { uid: undefined, gid: undefined };

describe('runtime publication file', () => {
  let root: string;
  let partition: { path: string; uid: number | undefined; gid: number | undefined };
  let hox: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hox-runtime-'));
    partition = { path: join(root, 'p0'), ...tenant };
    mkdirSync(partition.path, { mode: 0o750 });
    if (tenant.uid !== undefined) chownSync(partition.path, tenant.uid, tenant.gid);
    hox = join(partition.path, '.hox');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Writes a file as the tenant would (owned by the partition's user). */
  function tenantWrite(path: string, content: string | Buffer): void {
    writeFileSync(path, content);
    if (tenant.uid !== undefined) chownSync(path, tenant.uid, tenant.gid);
  }

  it('prepares .hox for the partition user, mode 0750, idempotently', async () => {
    await ensureRuntimeDir(partition);
    await ensureRuntimeDir(partition);
    const st = statSync(hox);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o750);
    if (tenant.uid !== undefined) expect([st.uid, st.gid]).toEqual([tenant.uid, tenant.gid]);
    expect(await readRuntimePublication(partition)).toEqual({ kind: 'none' });
  });

  it('never changes what a planted .hox link points to', async () => {
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, hox);
    await ensureRuntimeDir(partition);
    const st = statSync(elsewhere);
    expect(st.mode & 0o7777).toBe(0o700);
    expect(st.uid).toBe(process.getuid?.());
    expect(lstatSync(hox).isSymbolicLink()).toBe(true);
    // And nothing is read through it.
    writeFileSync(join(elsewhere, 'publish.json'), '{"leak":"yes"}');
    expect(await readRuntimePublication(partition)).toEqual({
      kind: 'invalid',
      message: 'runtime publication: .hox is a symbolic link: refused',
    });
  });

  it('reads a JSON object', async () => {
    await ensureRuntimeDir(partition);
    tenantWrite(join(hox, 'publish.json'), '{"role":"primary","lag":0}');
    expect(await readRuntimePublication(partition)).toEqual({ kind: 'object', value: { role: 'primary', lag: 0 } });
  });

  it('refuses a symbolic link, even to a valid file, and a FIFO, without blocking', async () => {
    await ensureRuntimeDir(partition);
    const secret = join(root, 'root-only.json');
    writeFileSync(secret, '{"leak":"yes"}', { mode: 0o600 });
    symlinkSync(secret, join(hox, 'publish.json'));
    expect(await readRuntimePublication(partition)).toEqual({
      kind: 'invalid',
      message: 'runtime publication: .hox/publish.json is a symbolic link: refused',
    });
    rmSync(join(hox, 'publish.json'));
    execFileSync('mkfifo', [join(hox, 'publish.json')]);
    expect(await readRuntimePublication(partition)).toEqual({
      kind: 'invalid',
      message: 'runtime publication: .hox/publish.json is not a regular file: refused',
    });
  });

  it.runIf(isRoot)("refuses a file the partition's user does not own (a hard link to root's file, say)", async () => {
    await ensureRuntimeDir(partition);
    writeFileSync(join(hox, 'publish.json'), '{"leak":"yes"}', { mode: 0o644 }); // owned by root
    expect(await readRuntimePublication(partition)).toEqual({
      kind: 'invalid',
      message: `runtime publication: .hox/publish.json belongs to uid 0, not the partition's user`,
    });
  });

  it('refuses files over 64 KiB, bad JSON, non-objects and empty files', async () => {
    await ensureRuntimeDir(partition);
    const file = join(hox, 'publish.json');
    tenantWrite(file, JSON.stringify({ blob: 'x'.repeat(MAX_RUNTIME_PUBLISH_BYTES) }));
    expect(await readRuntimePublication(partition)).toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/publish\.json is 65\d+ bytes, more than the 65536 allowed$/) as unknown,
    });
    tenantWrite(file, '{"role": prim');
    expect(await readRuntimePublication(partition)).toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/^runtime publication: \.hox\/publish\.json is not valid JSON \(/) as unknown,
    });
    for (const [content, what] of [
      ['[1,2]', 'an array'],
      ['null', 'null'],
      ['"primary"', 'string'],
    ] as const) {
      tenantWrite(file, content);
      expect(await readRuntimePublication(partition)).toEqual({
        kind: 'invalid',
        message: `runtime publication: .hox/publish.json must hold a JSON object, not ${what}`,
      });
    }
    tenantWrite(file, '');
    expect(await readRuntimePublication(partition)).toEqual({
      kind: 'invalid',
      message: 'runtime publication: .hox/publish.json is empty',
    });
  });
});
