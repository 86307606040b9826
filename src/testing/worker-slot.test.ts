import { describe, expect, it } from 'vitest';
import { defaultIpPrefix } from '../agent/format/partition-layout.js';
import { testIpPrefix, testWorkerSlot } from './worker-slot.js';

describe('test worker slots', () => {
  it('reads the vitest pool id, 1 when absent or malformed', () => {
    expect(testWorkerSlot({ VITEST_POOL_ID: '2' })).toBe(2);
    expect(testWorkerSlot({})).toBe(1);
    expect(testWorkerSlot({ VITEST_POOL_ID: 'x' })).toBe(1);
    expect(testWorkerSlot({ VITEST_POOL_ID: '0' })).toBe(1);
  });

  it("leaves slot 1 on the agent's default; gives another slot distinct, stable ranges outside the default band", () => {
    expect(testIpPrefix('n1', 1)).toBeUndefined();
    const a = testIpPrefix('slot-test-a', 2);
    const b = testIpPrefix('slot-test-b', 2);
    expect(a).toMatch(/^127\.222\.\d+$/);
    expect(b).toMatch(/^127\.222\.\d+$/);
    expect(a).not.toBe(b);
    expect(testIpPrefix('slot-test-a', 2)).toBe(a);
    // The agent's default band is 127.20–219.x: never a slot's.
    for (const id of ['n1', 'db-node-1', 'slot-test-a'])
      expect(Number(defaultIpPrefix(id).split('.')[1])).toBeLessThan(220);
    expect(() => testIpPrefix('slot-test-c', 35)).toThrow(/at most 34 workers/);
  });
});
