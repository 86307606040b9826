import { describe, expect, it } from 'vitest';
import { formatLogLine, mergeLogLines, parseLineTime } from './log-lines.js';

describe('parseLineTime', () => {
  it('reads ISO 8601, PostgreSQL and bracketed times, and strips them', () => {
    expect(parseLineTime('2026-12-02T02:20:57.123Z [web v3] GET /')).toEqual({
      atMs: Date.parse('2026-12-02T02:20:57.123Z'),
      text: '[web v3] GET /',
    });
    expect(parseLineTime('2026-12-02 02:20:57.123456 UTC [42] LOG:  checkpoint')).toEqual({
      atMs: Date.parse('2026-12-02T02:20:57.123Z'),
      text: '[42] LOG:  checkpoint',
    });
    expect(parseLineTime('[2026-12-02 03:20:57+0100] hello')).toEqual({
      atMs: Date.parse('2026-12-02T02:20:57.000Z'),
      text: 'hello',
    });
  });

  it("reads JSON lines' ts (seconds) and time (milliseconds), keeping the line whole", () => {
    const caddy = '{"level":"info","ts":1796091657.5,"msg":"handled"}';
    expect(parseLineTime(caddy)).toEqual({ atMs: 1796091657500, text: caddy });
    const pino = '{"level":30,"time":1796091657123,"msg":"x"}';
    expect(parseLineTime(pino)).toEqual({ atMs: 1796091657123, text: pino });
  });

  it('finds no time in plain lines', () => {
    expect(parseLineTime('listening on 127.0.0.1:8080')).toBeUndefined();
    expect(parseLineTime('{not json')).toBeUndefined();
    expect(parseLineTime('2026-13-45 99:99:99 nonsense')).toBeUndefined();
  });
});

describe('mergeLogLines', () => {
  it('interleaves logs by time; untimed lines stay after the line they follow', () => {
    const merged = mergeLogLines([
      {
        instance: 'a',
        service: 'keeper',
        node: 'n1',
        modifiedAtMs: 0,
        lines: ['2026-01-01T00:00:01Z one', '  continued', '2026-01-01T00:00:03Z three'],
      },
      {
        instance: 'b',
        service: 'keeper',
        node: 'n2',
        modifiedAtMs: 0,
        lines: ['2026-01-01 00:00:02 UTC two', '2026-01-01 00:00:04 UTC four'],
      },
    ]);
    expect(merged.map((l) => `${l.instance}:${l.text}`)).toEqual([
      'a:one',
      'a:  continued',
      'b:two',
      'a:three',
      'b:four',
    ]);
    expect(formatLogLine(merged[0]!)).toBe('2026-01-01T00:00:01.000Z a/keeper | one');
    expect(formatLogLine(merged[1]!)).toBe(`${' '.repeat(24)} a/keeper |   continued`);
    expect(formatLogLine(merged[2]!)).toBe('2026-01-01T00:00:02.000Z b/keeper | two');
  });

  it("places a log without any time at its file's last change", () => {
    const merged = mergeLogLines([
      {
        instance: 'a',
        service: 'http',
        node: 'n1',
        modifiedAtMs: Date.parse('2026-01-01T00:00:05Z'),
        lines: ['x', 'y'],
      },
      { instance: 'b', service: 'runner', node: 'n1', modifiedAtMs: 0, lines: ['2026-01-01T00:00:04Z z'] },
    ]);
    expect(merged.map((l) => l.text)).toEqual(['z', 'x', 'y']);
    expect(merged[1]!.time).toBeNull();
    // No time column for a log that prints none (no run of blanks before each of its lines).
    expect(formatLogLine(merged[1]!)).toBe('a/http | x');
  });
});
