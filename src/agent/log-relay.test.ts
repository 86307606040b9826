import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerLogRequest, readServiceLog } from './log-relay.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hox-logrelay-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${i + from}`).join('\n') + '\n';

describe('readServiceLog', () => {
  it('gives the last lines, then follows from the offset, and restarts after a copy-truncate', async () => {
    const path = join(dir, 'http.log');
    writeFileSync(path, lines(10));
    const tail = await readServiceLog(path, { lines: 3, offset: null, budgetBytes: 64 * 1024 });
    expect(tail?.lines).toEqual(['line 8', 'line 9', 'line 10']);
    expect(tail?.truncated).toBe(false);
    appendFileSync(path, 'line 11\npartial');
    const next = await readServiceLog(path, { lines: 3, offset: tail!.offset, budgetBytes: 64 * 1024 });
    // Whole lines only: the partial one waits for its newline.
    expect(next?.lines).toEqual(['line 11']);
    appendFileSync(path, ' done\n');
    const after = await readServiceLog(path, { lines: 3, offset: next!.offset, budgetBytes: 64 * 1024 });
    expect(after?.lines).toEqual(['partial done']);
    truncateSync(path, 0);
    appendFileSync(path, 'fresh\n');
    const rotated = await readServiceLog(path, { lines: 3, offset: after!.offset, budgetBytes: 64 * 1024 });
    expect(rotated?.lines).toEqual(['fresh']);
  });

  it('keeps to its byte share, from the tail and when following', async () => {
    const path = join(dir, 'big.log');
    writeFileSync(path, lines(5000));
    const tail = await readServiceLog(path, { lines: 5000, offset: null, budgetBytes: 2048 });
    expect(tail!.lines.length).toBeGreaterThan(10);
    expect(tail!.lines.length).toBeLessThan(300);
    expect(tail!.lines.at(-1)).toBe('line 5000');
    expect(tail!.truncated).toBe(true);
    const follow = await readServiceLog(path, { lines: 5000, offset: 0, budgetBytes: 2048 });
    expect(follow!.lines[0]).toBe('line 1');
    expect(follow!.truncated).toBe(true);
    const more = await readServiceLog(path, { lines: 5000, offset: follow!.offset, budgetBytes: 2048 });
    expect(more!.lines[0]).toBe(`line ${follow!.lines.length + 1}`);
  });

  it('refuses a symbolic link and anything but a regular file', async () => {
    writeFileSync(join(dir, 'secret'), 'root only\n');
    symlinkSync(join(dir, 'secret'), join(dir, 'web.log'));
    expect(await readServiceLog(join(dir, 'web.log'), { lines: 5, offset: null, budgetBytes: 4096 })).toBeUndefined();
    mkdirSync(join(dir, 'sub.log'));
    expect(await readServiceLog(join(dir, 'sub.log'), { lines: 5, offset: null, budgetBytes: 4096 })).toBeUndefined();
  });
});

describe('answerLogRequest', () => {
  it('reads only partitions that run the instance named, and the service asked for', async () => {
    for (const p of ['p0', 'p1']) {
      mkdirSync(join(dir, p));
      writeFileSync(join(dir, p, 'http.log'), `${p} http\n`);
      writeFileSync(join(dir, p, 'other.log'), `${p} other\n`);
      writeFileSync(join(dir, p, 'http.log.1'), `${p} rotated\n`);
    }
    const answer = await answerLogRequest(
      {
        request_id: 'LOGREQ-1',
        instance_list: [
          { instance_guid: 'SOFTINST-a', compute_partition_id: 'p0' },
          { instance_guid: 'SOFTINST-b', compute_partition_id: 'p1' },
        ],
        service: 'http',
        lines: 10,
        max_bytes: 1024 * 1024,
        offset_list: null,
      },
      {
        logDir: (p) => join(dir, p),
        // p1 runs another instance now.
        instanceOn: (p) => Promise.resolve(p === 'p0' ? 'SOFTINST-a' : 'SOFTINST-z'),
      },
    );
    expect(answer.log_list.map((l) => [l.instance_guid, l.service, l.lines])).toEqual([
      ['SOFTINST-a', 'http', ['p0 http']],
    ]);
    expect(answer.error).toContain('SOFTINST-b');
  });
});
