/** What the agent tells the master of each promise: bounded, credentials masked, sent only when news. */
import { describe, expect, it } from 'vitest';
import { PROMISE_REPORT_LIMITS } from '../../protocol/schemas.js';
import type { PromiseResult } from './check-promise.js';
import { promiseReportEntry, promisesChanged, safePromiseMessage } from './promise-reporter.js';

const NOW = 1_700_000_000_000;
const result = (name: string, ok: boolean, message = `tcp 127.0.1.1:80: ${ok ? 'connected' : 'connection refused'}`) =>
  ({ name, ok, message, checkedAtMs: NOW - 4_000, durationMs: 1_000 }) satisfies PromiseResult;

describe('safePromiseMessage', () => {
  it('masks a URL password and password-like pairs, and bounds the length', () => {
    expect(safePromiseMessage('http http://admin:hunter2@127.0.1.1/: status 500')).toBe(
      'http http://admin:••••••@127.0.1.1/: status 500',
    );
    expect(safePromiseMessage("command ['psql', '--password=s3cret', 'PGPASSWORD: x1']: exit 2: token=abc; ok")).toBe(
      "command ['psql', '--password=••••••', 'PGPASSWORD: ••••••']: exit 2: token=••••••; ok",
    );
    // Only keys that end like a credential: a count of passed checks or a token count is no secret.
    expect(safePromiseMessage('2 passed: 3 failed; tokens=5; api_key: k-1')).toBe(
      '2 passed: 3 failed; tokens=5; api_key: ••••••',
    );
    const long = safePromiseMessage('x'.repeat(5000));
    expect(long).toHaveLength(PROMISE_REPORT_LIMITS.messageChars);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('promiseReportEntry', () => {
  it('gives each promise its result, message and age, and says which never ran', () => {
    const entry = promiseReportEntry(
      'p0',
      'SOFTINST-1',
      [
        { name: 'port', result: result('port', true) },
        { name: 'http', result: result('http', false) },
        { name: 'new', result: undefined },
      ],
      NOW,
    );
    expect(entry).toEqual({
      compute_partition_id: 'p0',
      instance_guid: 'SOFTINST-1',
      promise_list: [
        { name: 'port', result: 'ok', message: 'tcp 127.0.1.1:80: connected', age_ms: 3_000 },
        { name: 'http', result: 'failed', message: 'tcp 127.0.1.1:80: connection refused', age_ms: 3_000 },
        { name: 'new', result: 'never_run', message: null, age_ms: null },
      ],
    });
  });

  it('over the bound, keeps the failing promises first, in the plan order', () => {
    const planned = Array.from({ length: PROMISE_REPORT_LIMITS.promisesPerInstance + 6 }, (_, i) => ({
      name: `p${i}`,
      result: result(`p${i}`, i < 60),
    }));
    const entry = promiseReportEntry('p0', 'SOFTINST-1', planned, NOW);
    expect(entry.promise_list).toHaveLength(PROMISE_REPORT_LIMITS.promisesPerInstance);
    // The 10 failing ones (p60…p69) are all there; the passing ones fill the rest.
    expect(entry.promise_list.filter((p) => p.result === 'failed')).toHaveLength(10);
    expect(entry.promise_list.map((p) => p.name).slice(0, 3)).toEqual(['p0', 'p1', 'p2']);
    expect(entry.promise_list.at(-1)?.name).toBe('p69');
  });
});

describe('promisesChanged', () => {
  const entry = (message: string, ageMs: number) =>
    promiseReportEntry(
      'p0',
      'SOFTINST-1',
      [{ name: 'port', result: { ...result('port', false, message), checkedAtMs: NOW - ageMs } }],
      NOW,
    );

  it('is news when a result or message changes, not when only the check time does', () => {
    expect(promisesChanged(undefined, entry('a', 0))).toBe(true);
    expect(promisesChanged(entry('a', 0), entry('a', 9_000))).toBe(false);
    expect(promisesChanged(entry('a', 0), entry('b', 0))).toBe(true);
    const passing = promiseReportEntry('p0', 'SOFTINST-1', [{ name: 'port', result: result('port', true) }], NOW);
    expect(promisesChanged(entry('a', 0), passing)).toBe(true);
  });
});
