import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rotateLogs } from './log-rotation.js';

describe('rotateLogs', () => {
  const dirs: string[] = [];
  afterEach(() => {
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  it("keeps the log's newest half of the cap in .1, and the service's descriptor writes on at the new start", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-logs-'));
    dirs.push(dir);
    const log = join(dir, 'main.log');
    // The service's side: the descriptor the agent opened at spawn, O_APPEND, kept open throughout.
    const fd = openSync(log, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    try {
      const lines = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(4, '0')} ${'x'.repeat(1018)}\n`);
      for (const line of lines) writeSync(fd, line);
      expect(await rotateLogs(dir, 256 * 1024)).toEqual(['main.log']);
      const rotated = readFileSync(`${log}.1`, 'utf8');
      expect(rotated.length).toBe(128 * 1024);
      expect(rotated.endsWith(lines[299]!)).toBe(true);
      expect(statSync(log).size).toBe(0);
      writeSync(fd, 'after\n');
      // No hole: the write landed at offset 0, not where the descriptor was.
      expect(readFileSync(log, 'utf8')).toBe('after\n');
      // Under the threshold: left alone.
      expect(await rotateLogs(dir, 256 * 1024)).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });

  it('is nothing to do for a partition without logs', async () => {
    expect(await rotateLogs(join(tmpdir(), 'hox-no-such-logs-dir'), 1024 * 1024)).toEqual([]);
  });
});
