import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import { defaultLimits, resolveLimits } from './partition-limits.js';

describe('resolveLimits', () => {
  it("takes the plan's limits over the node's defaults, each one on its own", () => {
    const defaults = defaultLimits();
    const resolved = resolveLimits(defaults, { pids: 64, cpus: 0.5 });
    expect(resolved).toEqual({ ...defaults, pids: 64, cpus: 0.5 });
    expect(defaults.memoryBytes).toBe(2 * 1024 ** 3);
    expect(defaults.pids).toBe(1024);
  });

  it('refuses a limit that is not a number in range, or not a limit, naming the field', () => {
    const defaults = defaultLimits();
    const refused = (limits: Record<string, unknown>): string => {
      try {
        resolveLimits(defaults, limits);
      } catch (error) {
        expect(error).toBeInstanceOf(HoxError);
        return (error as HoxError).message;
      }
      throw new Error('accepted');
    };
    expect(refused({ pids: 2 })).toMatch(/^limits\.pids: 2 must be an integer of at least 8/);
    expect(refused({ memoryBytes: 1.5e9 + 0.5 })).toMatch(/^limits\.memoryBytes: /);
    expect(refused({ cpus: '2' })).toMatch(/^limits\.cpus: 2 must be a number/);
    expect(refused({ swapBytes: 1 })).toMatch(/^limits\.swapBytes: is not a limit/);
  });
});
