/**
 * Unpacking a release's source archive never shows the archive's name on a
 * command line: the archive is named after its hash in this test (as replicas
 * used to name it) and is a FIFO, so tar stays blocked on it, half fed, while
 * every process's command line is scanned.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { watchCommandLines } from '../../../testing/command-line-watch.js';
import { buildRelease } from './app-build.js';

const roots: string[] = [];
afterEach(() => {
  while (roots.length > 0) rmSync(roots.pop()!, { recursive: true, force: true });
});

/** Pids of processes whose working directory is `dir`. */
function processesIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readlinkSync(`/proc/${e}/cwd`) === dir;
      } catch {
        return false;
      }
    })
    .map(Number);
}

it("unpacks the archive from standard input: its hash-named path is on no process's command line", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hox-unpack-'));
  roots.push(root);
  const app = join(root, 'app-source');
  mkdirSync(app);
  writeFileSync(join(app, 'index.html'), '<h1>hello</h1>\n');
  const archive = execFileSync('tar', ['-czf', '-', '-C', app, '.']);
  const sha256 = createHash('sha256').update(archive).digest('hex');
  mkdirSync(join(root, 'sources'));
  const fifo = join(root, 'sources', `${sha256}.tar.gz`);
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  const dir = join(root, 'releases', 'v1');

  const watch = watchCommandLines([sha256, sha256.slice(0, 16)]);
  const log: string[] = [];
  const built = buildRelease({
    dir,
    archive: fifo,
    label: 'v1',
    env: { PATH: '/usr/bin:/bin' },
    log: (l) => log.push(l),
    step: () => undefined,
  });
  // Opening the FIFO's write end waits for the unpacking to open its read end.
  const writer = await open(fifo, 'w');
  await writer.write(archive.subarray(0, archive.length >> 1));
  // tar is running, blocked on the rest of its input: let the scan see every command line a few times.
  for (let i = 0; i < 200 && processesIn(dir).length === 0; i++) await sleep(10);
  const unpacking = processesIn(dir);
  const scansBefore = watch.scans;
  while (watch.scans < scansBefore + 20) await sleep(5);
  await writer.write(archive.subarray(archive.length >> 1));
  await writer.close();
  const manifest = await built;
  const { hits } = watch.stop();

  expect(unpacking.length, 'tar was seen running on the half-fed archive').toBeGreaterThan(0);
  expect(hits, 'command lines naming the archive').toEqual([]);
  expect(manifest.runtime).toBe('static');
  expect(readFileSync(join(dir, 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n');
  expect(existsSync(join(dir, '.hox-built'))).toBe(true);
});
