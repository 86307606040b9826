import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs, DEFAULT_BACKOFF, validateBackoff } from './backoff.js';

describe('backoff', () => {
  it('doubles from initialMs up to maxMs', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelayMs(attempt, DEFAULT_BACKOFF));
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(backoffDelayMs(10_000, DEFAULT_BACKOFF)).toBe(30_000);
  });

  it('starts over after a run of resetAfterMs', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000, resetAfterMs: 5_000 });
    expect([10, 10, 10].map((ran) => backoff.next(ran))).toEqual([100, 200, 400]);
    expect(backoff.next(5_000)).toBe(100);
    expect(backoff.next(10)).toBe(200);
    backoff.reset();
    expect(backoff.next(10)).toBe(100);
  });

  it('rejects options that make no sense', () => {
    expect(() => validateBackoff({ initialMs: 2_000, maxMs: 1_000, resetAfterMs: 0 })).toThrow(RangeError);
    expect(() => validateBackoff({ initialMs: -1, maxMs: 1_000, resetAfterMs: 0 })).toThrow(RangeError);
  });
});
