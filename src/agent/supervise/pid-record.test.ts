import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isProcessAlive,
  parsePidRecord,
  parseProcStat,
  pidRecordPath,
  readPidRecords,
  readProcStatSync,
  writePidRecord,
  type PidRecord,
} from './pid-record.js';

const record: PidRecord = {
  partitionId: 'p/0',
  name: 'web',
  pid: 4242,
  startTime: 123,
  specHash: 'abc',
  stopTimeoutMs: 100,
  startedAtMs: 1,
};

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hox-pid-record-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pid records', () => {
  it('round-trip through the state directory, atomically and under an escaped name', async () => {
    const file = await writePidRecord(dir, record);
    expect(file).toBe(pidRecordPath(dir, 'p/0', 'web'));
    expect(await readdir(dir)).toEqual(['p%2F0@web.json']); // no temporary file left
    expect(await readPidRecords(dir)).toEqual([{ ...record, file }]);
    expect(await readPidRecords(join(dir, 'missing'))).toEqual([]);
  });

  it('skips files that are not records, and never accepts a pid that would signal everything', async () => {
    await writeFile(join(dir, 'junk.json'), '{not json');
    for (const pid of [0, 1, -1, 2.5, '12']) {
      await writeFile(join(dir, `pid-${String(pid)}.json`), JSON.stringify({ ...record, pid }));
    }
    expect(await readPidRecords(dir)).toEqual([]);
    expect(parsePidRecord(JSON.stringify({ partitionId: 'p0', name: 'a', pid: 7, starttime: '99' }))).toMatchObject({
      pid: 7,
      startTime: 99,
      specHash: '',
    });
  });

  it('parses /proc/<pid>/stat even when the command name holds spaces and parentheses', () => {
    const rest = Array.from({ length: 50 }, (_, i) => String(i + 3));
    rest[0] = 'S';
    expect(parseProcStat(`77 (we ird) (x)) ${rest.join(' ')}`)).toEqual({ state: 'S', pgrp: 5, startTime: 22 });
    expect(parseProcStat('garbage')).toBeNull();
  });

  it('knows a live process only by its pid and start time together', async () => {
    const own = readProcStatSync(process.pid)!;
    expect(await isProcessAlive(process.pid, own.startTime)).toBe(true);
    expect(await isProcessAlive(process.pid, own.startTime + 1)).toBe(false);
    expect(await isProcessAlive(1, 0)).toBe(false);
    expect(readProcStatSync(2 ** 22 + 1)).toBeNull();
  });
});
